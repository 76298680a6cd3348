"""Admin endpoints for the ops panel: uploads in progress, the job queue, retrying failed jobs.

Staff and admins only: no token is 401, any other user 403. Readiness is ``/health/ready``.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.common import page, page_params, require_user
from gateway.core import clock
from gateway.core import jobs as job_ops
from gateway.core import uploads as upload_ops
from gateway.core.auth import User
from gateway.core.errors import bad_request, field_error, forbidden
from gateway.keys import DOCUMENTS, JOBS, USERS

routes = web.RouteTableDef()


async def require_operator(request: web.Request) -> User:
    user = await require_user(request)
    if not (user.is_staff or user.is_admin):
        raise forbidden("staff or admins only")
    return user


def job_json(job: dict[str, Any]) -> dict[str, Any]:
    return {"id": job["id"], "kind": job["kind"], "subject": job["subject"], "status": job["status"],
            "attempts": job["attempts"], "error": job.get("error"), "run_after": clock.iso(job["run_after"]),
            "created_at": clock.iso(job["created_at"]), "updated_at": clock.iso(job["updated_at"])}


def upload_json(session: dict[str, Any], username: str | None) -> dict[str, Any]:
    return {"id": session["id"], "user": username, "user_id": session["user_id"], "filename": session["filename"],
            "offset": session["offset"], "total": session["total"], "expires": clock.iso(session["expires_at"])}


@routes.get("/api/admin/uploads")
async def list_uploads(request: web.Request) -> web.Response:
    await require_operator(request)
    limit, offset = page_params(request)
    users, user_id = request.app[USERS], None
    if name := request.query.get("user"):
        found = await request.app[DOCUMENTS].find("users", {"username": name}, limit=1)
        if not found:
            return web.json_response(page(request, 0, limit, offset, []))
        user_id = found[0]["id"]
    total, sessions = await upload_ops.in_progress(request.app[DOCUMENTS], user_id=user_id, limit=limit,
                                                   offset=offset)
    names: dict[int, str | None] = {}
    for uid in {s["user_id"] for s in sessions}:
        owner = await users.get(uid)
        names[uid] = owner.username if owner else None
    return web.json_response(page(request, total, limit, offset, [upload_json(s, names[s["user_id"]])
                                                                  for s in sessions]))


@routes.get("/api/admin/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    await require_operator(request)
    state = request.query.get("state") or None
    if state is not None and state not in job_ops.STATES:
        raise field_error("state", f"must be one of {', '.join(job_ops.STATES)}")
    limit, offset = page_params(request)
    total, found = await job_ops.list_jobs(request.app[JOBS], state, limit=limit, offset=offset)
    return web.json_response(page(request, total, limit, offset, [job_json(j) for j in found]))


@routes.get("/api/admin/queue")
async def queue_depth(request: web.Request) -> web.Response:
    """Jobs per state; ``queued`` is the queue depth (also the ``gateway_queue_depth`` metric)."""
    await require_operator(request)
    return web.json_response(await job_ops.count_by_state(request.app[JOBS]))


@routes.post("/api/admin/jobs/{id}/retry")
async def retry_job(request: web.Request) -> web.Response:
    await require_operator(request)
    job_id = request.match_info["id"]
    if len(job_id) > 200:  # longer than any job id the gateway makes
        raise bad_request("invalid_id", "a job id is at most 200 characters")
    return web.json_response(job_json(await job_ops.retry_failed(request.app[JOBS], job_id)))


# --- OpenAPI paths fragment (collected by gateway/openapi.py) ---------------------------------------------

def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page_of(ref: str) -> dict[str, Any]:
    return {"type": "object", "required": ["count", "next", "previous", "results"], "properties": {
        "count": {"type": "integer", "minimum": 0},
        "next": {"type": ["string", "null"]}, "previous": {"type": ["string", "null"]},
        "results": {"type": "array", "items": {"$ref": ref}}}}


_SECURITY = [{"bearerAuth": []}, {"tokenAuth": []}]
_OPERATOR_ERRORS = {"401": _error("no or an invalid token"), "403": _error("the user is not staff or an admin")}
_PAGING = [
    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0},
     "description": "page size (default 20, at most 100)"},
    {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
]
_BAD_QUERY = {"400": _error("a malformed query parameter")}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "AdminJob": {"type": "object", "required": ["id", "kind", "status", "attempts"], "properties": {
        "id": {"type": "string"}, "kind": {"type": "string"}, "subject": {},
        "status": {"type": "string", "enum": list(job_ops.STATES)}, "attempts": {"type": "integer"},
        "error": {"type": ["string", "null"]}, "run_after": {"type": "string", "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"}}},
    "AdminUpload": {"type": "object", "required": ["id", "user", "filename", "offset", "total", "expires"],
                    "properties": {
                        "id": {"type": "string"}, "user": {"type": ["string", "null"]}, "user_id": {"type": "integer"},
                        "filename": {"type": "string"}, "offset": {"type": "integer", "minimum": 0},
                        "total": {"type": "integer", "minimum": 0},
                        "expires": {"type": "string", "format": "date-time"}}},
    "QueueDepth": {"type": "object", "required": list(job_ops.STATES),
                   "properties": {state: {"type": "integer", "minimum": 0} for state in job_ops.STATES}},
}

OPENAPI: dict[str, Any] = {
    "/api/admin/uploads": {"get": {
        "operationId": "adminListUploads", "summary": "Uploads in progress (staff and admins)", "tags": ["admin"], "security": _SECURITY,
        "parameters": [{"name": "user", "in": "query", "required": False, "schema": {"type": "string"},
                        "description": "only this user's uploads"}, *_PAGING],
        "responses": {"200": _ok("a page of unfinished uploads", _page_of("#/components/schemas/AdminUpload")),
                      **_BAD_QUERY, **_OPERATOR_ERRORS}}},
    "/api/admin/jobs": {"get": {
        "operationId": "adminListJobs", "summary": "Jobs, optionally in one state (staff and admins)", "tags": ["admin"], "security": _SECURITY,
        "parameters": [{"name": "state", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": list(job_ops.STATES)}}, *_PAGING],
        "responses": {"200": _ok("a page of jobs, most recently changed first",
                                 _page_of("#/components/schemas/AdminJob")),
                      **_BAD_QUERY, **_OPERATOR_ERRORS}}},
    "/api/admin/queue": {"get": {
        "operationId": "adminQueueDepth",
        "summary": "Number of jobs per state; queued is the queue depth (staff and admins)", "tags": ["admin"],
        "security": _SECURITY,
        "responses": {"200": _ok("jobs per state", {"$ref": "#/components/schemas/QueueDepth"}),
                      **_OPERATOR_ERRORS}}},
    "/api/admin/jobs/{id}/retry": {"post": {
        "operationId": "adminRetryJob", "summary": "Put a failed job back in the queue (staff and admins)", "tags": ["admin"], "security": _SECURITY,
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": _ok("the job, queued again", {"$ref": "#/components/schemas/AdminJob"}),
                      "400": _error("an id longer than 200 characters"), **_OPERATOR_ERRORS,
                      "404": _error("no such job"),
                      "409": _error("the job is not failed (its status is in job_status)")}}},
}
