"""Bandwidth: the allocation algebra, router shaping configs and drivers, the reconciler and the watchdog."""
