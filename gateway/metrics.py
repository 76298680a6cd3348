"""Prometheus metrics, one registry per app (no module-level globals, so tests and
several apps in one process never share counters)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gateway_requests_total", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("gateway_request_duration_seconds", "HTTP request latency by route",
                                 ["route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.bytes_received = Counter("gateway_upload_bytes_received_total",
                                      "Upload bytes acknowledged to clients", registry=self.registry)
        self.uploads_completed = Counter("gateway_uploads_completed_total", "Uploads turned into media",
                                         registry=self.registry)
        self.uploads_expired = Counter("gateway_uploads_expired_total", "Unfinished uploads swept after expiry",
                                       registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
