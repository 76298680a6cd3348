"""Ops endpoints: liveness, readiness (both stores answer in time), Prometheus metrics."""
from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.keys import DOCUMENTS, JOBS, METRICS, OBJECTS, SETTINGS

routes = web.RouteTableDef()


@routes.get("/health/live")
async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check(store, timeout: float) -> str:
    try:
        await asyncio.wait_for(store.ping(), timeout)
        return "ok"
    except asyncio.TimeoutError:
        return "timeout"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"error: {exc}"[:200]


@routes.get("/health/ready")
async def ready(request: web.Request) -> web.Response:
    timeout = request.app[SETTINGS].ready_timeout
    documents, objects = request.app[DOCUMENTS], request.app[OBJECTS]
    doc_state, obj_state = await asyncio.gather(_check(documents, timeout), _check(objects, timeout))
    checks = {f"document_store:{documents.name}": doc_state, f"object_store:{objects.name}": obj_state}
    failing = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "ok" if not failing else "unavailable", "checks": checks}
    if failing:
        body["failing"] = failing
        return web.json_response(body, status=503, headers={"Retry-After": "5"})
    return web.json_response(body)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    with contextlib.suppress(Exception):  # a store outage must not hide the other metrics
        request.app[METRICS].queue_depth.set(await request.app[JOBS].depth())
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
