"""Prometheus metrics, one registry per app (no module-level globals, so tests and
several apps in one process never share counters)."""
from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily


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
        self.jobs = Counter("gateway_jobs_total", "Background job attempts by kind and outcome",
                            ["kind", "outcome"], registry=self.registry)
        self.job_duration = Histogram("gateway_job_duration_seconds", "Background job attempt duration", ["kind"],
                                      registry=self.registry, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.queue_depth = Gauge("gateway_job_queue_depth", "Jobs waiting to run (all instances)",
                                 registry=self.registry)
        self.loop_lag = Gauge("gateway_event_loop_lag_seconds",
                              "How late the event loop ran a timer, last sample", registry=self.registry)

    def count_backend_requests(self, *stores) -> None:
        self.registry.register(_BackendRequests(stores))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _BackendRequests:
    """``gateway_backend_requests_total{backend,operation}``: read at scrape time from the
    plain counters the store adapters keep (S3 counts HTTP attempts, which is what it bills)."""

    def __init__(self, stores) -> None:
        self.stores = stores

    def collect(self):
        family = CounterMetricFamily("gateway_backend_requests", "Requests sent to storage backends",
                                     labels=["backend", "operation"])
        for store in self.stores:
            for operation, count in sorted(getattr(store, "requests", {}).items()):
                family.add_metric([store.name, operation], count)
        yield family


async def watch_loop_lag(metrics: Metrics, interval: float = 0.5) -> None:
    """Sample how late a timer fires: a blocked event loop shows up here first."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        metrics.loop_lag.set(max(0.0, loop.time() - started - interval))
