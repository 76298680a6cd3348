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


# OpenAPI (see gateway/openapi.py)
from gateway.openapi import PUBLIC  # noqa: E402

_READY = {"type": "object", "required": ["status", "checks"], "properties": {
    "status": {"type": "string", "enum": ["ok", "unavailable"]},
    "checks": {"type": "object", "additionalProperties": {"type": "string"},
               "description": "`document_store:NAME` and `object_store:NAME`: `ok`, `timeout` or `error: ...`."},
    "failing": {"type": "array", "items": {"type": "string"}}}}

OPENAPI = {
    "/health/live": {"get": {
        "operationId": "live", "tags": ["ops"], "summary": "The process answers", "security": PUBLIC,
        "responses": {"200": {"description": "Alive.", "content": {"application/json": {"schema": {
            "type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}}}}}}},
    "/health/ready": {"get": {
        "operationId": "ready", "tags": ["ops"], "summary": "Both stores answer in time", "security": PUBLIC,
        "responses": {
            "200": {"description": "Ready.", "content": {"application/json": {"schema": _READY}}},
            "503": {"description": "A store is failing: take this instance out of rotation.",
                    "headers": {"Retry-After": {"description": "Seconds before asking again.",
                                                "schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": _READY}}}}}},
    "/metrics": {"get": {
        "operationId": "metrics", "tags": ["ops"], "summary": "Prometheus metrics", "security": PUBLIC,
        "responses": {"200": {"description": "The Prometheus text exposition format.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
}
