"""``GET /dato/job-results/{id}``: a JSON 404 while the job runs, then 200 with its outcome.

Never 202 here: the client would poll that as a new job. A job waiting on a media
is done when the media owes none of the jobs whose results its payload carries
(md5 and probe, derived attributes); thumbnails may still follow.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.common import base_url, require_user
from gateway.api.dato import jsonapi
from gateway.api.dato.upload_json import upload_json
from gateway.core.job_results import Outcome
from gateway.core.processing import ATTRIBUTES, PROBE
from gateway.keys import JOB_RESULTS, MEDIA, PROCESSING

routes = web.RouteTableDef()
WAITS_FOR = frozenset({PROBE.name, ATTRIBUTES.name})


@routes.get("/dato/job-results/{id}")
async def job_result(request: web.Request) -> web.Response:
    user = await require_user(request)
    job_id = request.match_info["id"]

    async def resolve(job: dict[str, Any]) -> Outcome | None:
        media = await request.app[MEDIA].find(job["media_id"])
        if media is None:  # destroyed before its processing finished
            return Outcome(404, jsonapi.error_body(404, "NOT_FOUND", {"upload_id": str(job["media_id"])}))
        if WAITS_FOR.intersection(media.owed):
            await request.app[PROCESSING].resume(media, WAITS_FOR)  # its jobs, if a crash lost them
            return None
        return Outcome(job["status"], {"data": upload_json(base_url(request), media)})

    outcome = await request.app[JOB_RESULTS].outcome(user, job_id, resolve)
    if outcome is None:
        raise jsonapi.DatoError(404, "NOT_FOUND", {"job_id": job_id, "message": "the job has not finished yet"})
    return jsonapi.one(jsonapi.resource("job_result", job_id, {"status": outcome.status,
                                                               "payload": outcome.payload}))


_RESULT = {"type": "object", "required": ["data"], "properties": {"data": {
    "type": "object", "required": ["type", "id", "attributes"],
    "properties": {"type": {"const": "job_result"}, "id": {"type": "string"},
                   "attributes": {"type": "object", "required": ["status", "payload"],
                                  "properties": {"status": {"type": "integer"}, "payload": {}}}}}}}
OPENAPI = {"/dato/job-results/{id}": {
    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "get": {"operationId": "datoJobResult", "tags": ["dato"], "summary": "A job's outcome: 404 until it is done",
            "security": jsonapi.BEARER,
            "responses": {"200": jsonapi.doc_reply("Done: the status and body the request would have answered.",
                                                   _RESULT),
                          **jsonapi.doc_errors(401, 404, 429, 503)}}}}
