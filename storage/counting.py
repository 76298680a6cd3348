"""Requests per backend operation, for ``gateway_backend_requests_total``.

Adapters keep a plain ``collections.Counter`` (no Prometheus in storage/); the
metrics module reads it when scraped. ``counted`` wraps a port method so every call
counts once, whatever the adapter does inside.
"""
from __future__ import annotations

import functools


def counted(method):
    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        self.requests[method.__name__] += 1
        return await method(self, *args, **kwargs)

    return wrapper
