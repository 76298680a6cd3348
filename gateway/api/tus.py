"""tus 1.0 resumable uploads at ``/files/`` (tus-js-client, Uppy, tuspy).

Headers in, headers out: the handlers only translate between the protocol and
``core.tus``. Status codes follow the protocol where reference servers bend it:
412 (with ``Tus-Version``) for a missing or other ``Tus-Resumable``, 415 for a PATCH
that is not ``application/offset+octet-stream``, 409 for a wrong ``Upload-Offset``,
413 past ``Tus-Max-Size`` or the upload's length, 460 for a checksum mismatch.
Every reply under ``/files`` carries ``Tus-Resumable`` and CORS headers (errors
too, so a browser client can read them). A finished upload's replies name its
media in ``Media-Id``.
"""
from __future__ import annotations

import asyncio
import email.utils
import re

from aiohttp import web

from gateway.api.common import base_url, media_type, require_user
from gateway.api.content import send_object
from gateway.core import streams
from gateway.core import tus as core
from gateway.core.errors import GatewayError, bad_request
from gateway.keys import MEDIA, OBJECTS, SETTINGS, TUS
from gateway.openapi import PUBLIC, errors, ref, reply
from storage.errors import ObjectNotFound

PREFIX = "/files"
OFFSET_TYPE = "application/offset+octet-stream"
NUMBER = re.compile(r"^[0-9]{1,19}$")
PIECE = 256 * 1024
TUS_HEADERS = ("Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm",
               "Upload-Offset", "Upload-Length", "Upload-Defer-Length", "Upload-Metadata", "Upload-Concat",
               "Upload-Expires", "Upload-Checksum", "Location", "Media-Id")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-HTTP-Method-Override", "X-Requested-With", "Tus-Resumable",
                   "Upload-Offset", "Upload-Length", "Upload-Defer-Length", "Upload-Metadata", "Upload-Concat",
                   "Upload-Checksum")
# What the core's errors mean in this protocol.
STATUS = {"invalid_offset": 409, "offset_mismatch": 409, "chunk_in_progress": 409}

routes = web.RouteTableDef()


def tus_error(status: int, code: str, message: str) -> GatewayError:
    return GatewayError(status, code, message)


def _number(request: web.Request, header: str, *, required: bool = False) -> int | None:
    raw = request.headers.get(header)
    if raw is None:
        if required:
            raise bad_request("missing_header", f"{header} is required")
        return None
    if not NUMBER.match(raw.strip()):
        raise bad_request("invalid_header", f"{header} must be a non-negative integer")
    return int(raw)


def _expires(session: dict) -> dict[str, str]:
    if session["status"] != "uploading":
        return {}
    return {"Upload-Expires": email.utils.formatdate(session["expires_at"], usegmt=True)}


def _location(request: web.Request, session: dict) -> str:
    return f"{base_url(request)}{PREFIX}/{session['id']}"


def _finished(session: dict) -> dict[str, str]:
    # media_id is reserved on the session before the media exists: only a complete one names it
    done = session["status"] == "complete" and session.get("media_id")
    return {"Media-Id": str(session["media_id"])} if done else {}


def _check_version(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != core.VERSION:
        raise GatewayError(412, "unsupported_version", f"send Tus-Resumable: {core.VERSION}",
                           headers={"Tus-Version": core.VERSION})


def _translated(exc: GatewayError) -> GatewayError:
    status = STATUS.get(exc.code)
    if status is None or status == exc.status:
        return exc
    return GatewayError(status, exc.code, exc.message, headers=exc.headers, **exc.extra)


async def _run(request: web.Request, handler) -> web.StreamResponse:
    """Version check, auth, then the handler; core errors get this protocol's statuses."""
    _check_version(request)
    user = await require_user(request)
    try:
        return await handler(request, user)
    except GatewayError as exc:
        raise _translated(exc) from None
    except streams.ChecksumMismatch:
        raise GatewayError(460, "checksum_mismatch", "the body does not match Upload-Checksum") from None
    except streams.BodyEnded:
        raise GatewayError(499, "client_aborted", "the body ended early; what arrived was kept") from None


@routes.options(PREFIX + "/")
@routes.options(PREFIX + "/{upload_id}")
async def options(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.Response(status=204, headers={
        "Tus-Version": core.VERSION, "Tus-Extension": ",".join(core.EXTENSIONS),
        "Tus-Max-Size": str(settings.max_upload_size), "Tus-Checksum-Algorithm": ",".join(streams.CHECKSUMS)})


@routes.post(PREFIX + "/")
async def create(request: web.Request) -> web.Response:
    return await _run(request, _create)


async def _create(request: web.Request, user) -> web.Response:
    tus = request.app[TUS]
    metadata = request.headers.get("Upload-Metadata")
    concat = request.headers.get("Upload-Concat", "").strip()
    if concat.startswith("final;"):
        ids = [url.rstrip("/").rsplit("/", 1)[-1] for url in concat[len("final;"):].split()]
        session = await tus.create_final(user, ids, metadata)
        return web.Response(status=201, headers={"Location": _location(request, session)})
    if concat not in ("", "partial"):
        raise bad_request("invalid_concat", "Upload-Concat is 'partial' or 'final;<urls>'")
    length = _number(request, "Upload-Length")
    deferred = request.headers.get("Upload-Defer-Length")
    if deferred is not None and (deferred != "1" or length is not None):
        raise bad_request("invalid_header", "Upload-Defer-Length must be 1, and only without Upload-Length")
    if length is None and deferred is None:
        raise bad_request("missing_header", "Upload-Length or Upload-Defer-Length: 1 is required")
    if length is not None and length > request.app[SETTINGS].max_upload_size:
        raise GatewayError(413, "upload_too_large", "Upload-Length is past Tus-Max-Size")
    session = await tus.create(user, length=length, metadata=metadata, partial=concat == "partial")
    headers = {"Location": _location(request, session)}
    if media_type(request) == OFFSET_TYPE:  # creation-with-upload
        session, media = await tus.patch(user, session["id"], 0, request.content.iter_chunked(PIECE), length=None,
                                         checksum=request.headers.get("Upload-Checksum"))
        headers["Upload-Offset"] = str(session["offset"])
        if media:
            headers["Media-Id"] = str(media.id)
    return web.Response(status=201, headers={**headers, **_expires(session)})


@routes.head(PREFIX + "/{upload_id}")
async def head(request: web.Request) -> web.Response:
    return await _run(request, _head)


async def _head(request: web.Request, user) -> web.Response:
    session = await request.app[TUS].get(user, request.match_info["upload_id"])
    info = session["tus"]
    headers = {"Cache-Control": "no-store", **_expires(session), **_finished(session)}
    if info["concat"] != "final" or session["status"] == "complete":
        headers["Upload-Offset"] = str(session["offset"])  # a final upload has none until it is assembled
    if session["total"] is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(session["total"])
    if info["metadata"]:
        headers["Upload-Metadata"] = info["metadata"]
    if info["concat"] == "partial":
        headers["Upload-Concat"] = "partial"
    elif info["concat"] == "final":
        headers["Upload-Concat"] = "final;" + " ".join(f"{PREFIX}/{i}" for i in info["partials"])
    return web.Response(status=200, headers=headers)


@routes.patch(PREFIX + "/{upload_id}")
async def patch(request: web.Request) -> web.Response:
    return await _run(request, _patch)


async def _patch(request: web.Request, user) -> web.Response:
    if media_type(request) != OFFSET_TYPE:
        raise GatewayError(415, "unsupported_media_type", f"PATCH bodies are {OFFSET_TYPE}")
    offset = _number(request, "Upload-Offset", required=True)
    length = _number(request, "Upload-Length")
    storing = request.app[TUS].patch(user, request.match_info["upload_id"], offset,
                                     request.content.iter_chunked(PIECE), length=length,
                                     checksum=request.headers.get("Upload-Checksum"),
                                     body_length=request.content_length)
    session, media = await _kept(storing)
    headers = {"Upload-Offset": str(session["offset"]), **_expires(session)}
    if media:
        headers["Media-Id"] = str(media.id)
    return web.Response(status=204, headers=headers)


async def _kept(storing):
    """Run a PATCH's storing to its end even if the handler is cancelled (a server that
    cancels handlers when the client goes away): what arrived must still be committed."""
    task = asyncio.ensure_future(storing)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no warning
    return await asyncio.shield(task)


@routes.delete(PREFIX + "/{upload_id}")
async def delete(request: web.Request) -> web.Response:
    return await _run(request, _delete)


async def _delete(request: web.Request, user) -> web.Response:
    await request.app[TUS].terminate(user, request.match_info["upload_id"])
    return web.Response(status=204)


@routes.get(PREFIX + "/{upload_id}", allow_head=False)
async def download(request: web.Request) -> web.StreamResponse:
    """The bytes of a finished upload, as tusd serves them."""
    user = await require_user(request)
    session = await request.app[TUS].get(user, request.match_info["upload_id"])
    if session["status"] != "complete":
        raise GatewayError(409, "upload_unfinished", "the upload is not finished", offset=session["offset"])
    content_type = "application/octet-stream"
    if session.get("media_id"):
        media = await request.app[MEDIA].get(user, session["media_id"])
        content_type = media.mime_type or content_type
    try:
        info = await request.app[OBJECTS].stat(session["target"]["key"])
    except ObjectNotFound:
        raise GatewayError(404, "not_found", "the upload's bytes are gone") from None
    return await send_object(request, key=info.key, size=info.size, etag=info.etag, content_type=content_type,
                             filename=session["filename"])


@routes.post(PREFIX + "/{upload_id}")
async def method_override(request: web.Request) -> web.StreamResponse:
    """``X-HTTP-Method-Override`` for clients behind proxies that only pass GET and POST."""
    handler = {"PATCH": _patch, "DELETE": _delete, "HEAD": _head}.get(
        request.headers.get("X-HTTP-Method-Override", "").upper())
    if handler is None:
        raise web.HTTPMethodNotAllowed("POST", ["OPTIONS", "HEAD", "PATCH", "DELETE", "GET"])
    return await _run(request, handler)


async def cors_and_version(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: protocol and CORS headers on every reply under /files, errors included."""
    if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
        return
    headers = response.headers
    headers["Tus-Resumable"] = core.VERSION
    headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
    headers["Access-Control-Expose-Headers"] = ", ".join(TUS_HEADERS)
    headers.setdefault("Vary", "Origin")
    if request.method == "OPTIONS":
        headers["Access-Control-Allow-Methods"] = "POST, GET, HEAD, PATCH, DELETE, OPTIONS"
        headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
        headers["Access-Control-Max-Age"] = "86400"


def _header(name: str, description: str, *, required: bool = False, schema: dict | None = None) -> dict:
    return {"name": name, "in": "header", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def _out(*names: str) -> dict:
    return {name: {"description": f"`{name}`", "schema": {"type": "string"}} for name in names}


# Required by the protocol, but a missing one is 412 there (not the 400 OpenAPI tools expect of a
# required header), so it is documented as optional with its 412.
_VERSION = _header("Tus-Resumable", f"Must be `{core.VERSION}`; missing or anything else is 412.",
                   schema={"type": "string", "const": core.VERSION})
_ID = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
_OCTETS = {"required": True, "content": {OFFSET_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
_TUS_ERRORS = {"412": reply("Missing or unsupported `Tus-Resumable`.", ref("Error"), headers=_out("Tus-Version")),
               **errors(400, 401, 404, 410, 503)}
OPENAPI = {
    PREFIX + "/": {
        "options": {"operationId": "tusOptions", "tags": ["tus"], "summary": "What this tus server supports",
                    "security": PUBLIC, "responses": {"204": {"description": "Capabilities.", "headers": _out(
                        "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm")}}},
        "post": {"operationId": "tusCreate", "tags": ["tus"], "summary": "Create an upload (creation, "
                 "creation-with-upload, creation-defer-length, concatenation)",
                 "parameters": [_VERSION, _header("Upload-Length", "Bytes of the whole upload."),
                                _header("Upload-Defer-Length", "`1`: the length comes with a later PATCH."),
                                _header("Upload-Metadata", "`key base64value` pairs; `filename` is the title."),
                                _header("Upload-Concat", "`partial`, or `final;/files/a /files/b`."),
                                _header("Upload-Checksum", "`sha1|md5|sha256 <base64>` of a body sent along.")],
                 "requestBody": {**_OCTETS, "required": False},
                 "responses": {"201": {"description": "Created; `Location` is the upload URL.",
                                       "headers": _out("Location", "Upload-Offset", "Upload-Expires", "Media-Id")},
                               **_TUS_ERRORS, **errors(413),
                               "460": reply("The body does not match `Upload-Checksum`.", ref("Error"))}},
    },
    PREFIX + "/{upload_id}": {
        "options": {"operationId": "tusOptionsUpload", "tags": ["tus"], "summary": "CORS preflight",
                    "security": PUBLIC, "parameters": [_ID],
                    "responses": {"204": {"description": "Capabilities.", "headers": _out("Tus-Version")}}},
        "head": {"operationId": "tusHead", "tags": ["tus"], "summary": "Where an upload stands",
                 "parameters": [_ID, _VERSION],
                 "responses": {"200": {"description": "The upload's offset, length and metadata; `Media-Id` once "
                                                      "it is a media.",
                                       "headers": _out("Upload-Offset", "Upload-Length", "Upload-Defer-Length",
                                                       "Upload-Metadata", "Upload-Concat", "Upload-Expires",
                                                       "Media-Id", "Cache-Control")}, **_TUS_ERRORS}},
        "patch": {"operationId": "tusPatch", "tags": ["tus"], "summary": "Append bytes at `Upload-Offset`",
                  "parameters": [_ID, _VERSION, _header("Upload-Offset", "Where this body starts.", required=True),
                                 _header("Upload-Length", "Sets a deferred length."),
                                 _header("Upload-Checksum", "`sha1|md5|sha256 <base64>` of this body.")],
                  "requestBody": _OCTETS,
                  "responses": {"204": {"description": "Stored; `Media-Id` when this finished the upload.",
                                        "headers": _out("Upload-Offset", "Upload-Expires", "Media-Id")},
                                **_TUS_ERRORS, **errors(403, 409, 413),
                                "415": reply("The body is not `application/offset+octet-stream`.", ref("Error")),
                                "460": reply("The body does not match `Upload-Checksum`; nothing was kept.",
                                             ref("Error"))}},
        "delete": {"operationId": "tusTerminate", "tags": ["tus"], "summary": "Terminate an upload",
                   "parameters": [_ID, _VERSION],
                   "responses": {"204": {"description": "Terminated; its bytes are removed."}, **_TUS_ERRORS}},
        "get": {"operationId": "tusDownload", "tags": ["tus"], "summary": "The bytes of a finished upload",
                "parameters": [_ID],
                "responses": {"200": {"description": "The bytes.", "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                    "206": {"description": "The bytes of a `Range`."}, **errors(401, 404, 409, 410, 416, 503)}},
        "post": {"operationId": "tusMethodOverride", "tags": ["tus"],
                 "summary": "PATCH, DELETE or HEAD through `X-HTTP-Method-Override`",
                 "parameters": [_ID, _VERSION, _header("X-HTTP-Method-Override", "`PATCH`, `DELETE` or `HEAD`; "
                                                       "without one a POST here is 405.",
                                                       schema={"enum": ["PATCH", "DELETE", "HEAD"]}),
                                _header("Upload-Offset", "With PATCH: where the body starts.")],
                 "requestBody": {**_OCTETS, "required": False},
                 "responses": {"200": {"description": "HEAD's answer."}, "204": {"description": "PATCH or DELETE "
                               "done."}, **_TUS_ERRORS, **errors(403, 409, 413),
                               "405": reply("No or another method override.", ref("Error")),
                               "415": reply("The body is not `application/offset+octet-stream`.", ref("Error")),
                               "460": reply("Checksum mismatch.", ref("Error"))}},
    },
}
