"""Observing units: status counters, Prometheus metrics, plots and the monitor view."""
