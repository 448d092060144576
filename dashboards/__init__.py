"""Grafana dashboards built with grafanalib from the metric-name schema (collectors.metrics).

Every query is written with :meth:`collectors.metrics.Measurement.series`, so a renamed metric
fails the dashboard tests instead of leaving a panel silently empty.
"""
