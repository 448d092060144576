"""Grafana dashboards built with grafanalib from the metric-name schema (collectors.metrics).

Empty until the dashboards issue lands.
"""
