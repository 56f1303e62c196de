"""The HTTP side of a worker: probes, Prometheus metrics, the dashboard and its JSON API."""
