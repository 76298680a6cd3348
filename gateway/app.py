"""The app factory: wires settings, stores, core services, routes and background tasks."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from config.settings import Settings
from gateway import backends, openapi
from gateway.api import admin, catalog, chunks, console, content, files, media, ops, statuses, tus, upload_state
from gateway.core import catalog as catalog_kinds
from gateway.core.auth import Users
from gateway.core.catalog import Catalog
from gateway.core.job_results import JobResults
from gateway.core.jobs import JobQueue
from gateway.core.library import Library
from gateway.core.link_media import LinkMedia
from gateway.core.media import MediaService
from gateway.core.media_store import MediaStore
from gateway.core.processing import Processing
from gateway.core.statuses import Statuses
from gateway.core.tus import TusUploads
from gateway.core.upload_requests import UploadRequests
from gateway.core.uploads import Uploads
from gateway.keys import (CATEGORIES, DOCUMENTS, FETCHER, JOB_RESULTS, JOBS, LIBRARY, LINKS, MEDIA, METRICS, OBJECTS,
                          PROCESSING, SETTINGS, STATUSES, TAGS, TUS, UPLOAD_REQUESTS, UPLOADS, USERS)
from gateway.metrics import Metrics, watch_loop_lag
from gateway.api.dato import jsonapi as dato_jsonapi
from gateway.api.dato import job_results as dato_job_results
from gateway.api.dato import rate_limit as dato_rate_limit
from gateway.api.dato import upload_requests as dato_upload_requests
from gateway.api.dato import upload_tags as dato_upload_tags
from gateway.api.dato import uploads as dato_uploads
from gateway.middlewares import ERROR_SHAPES, add_request_id, errors, observe
from gateway.trailing_slash import accept_either_slash
from gateway.outbound import Fetcher
from storage.documents.port import DocumentStore
from storage.objects.port import ObjectStore
from workers.link_jobs import LinkJobs
from workers.media_jobs import MediaJobs
from workers.tus_jobs import TusJobs
from workers.runner import WorkerPool

log = logging.getLogger("gateway.app")


async def _stores(app: web.Application):
    await app[DOCUMENTS].open()
    try:
        await app[OBJECTS].open()
        try:
            yield
        finally:
            await app[OBJECTS].close()
    finally:
        await app[DOCUMENTS].close()


async def _sweeper(app: web.Application):
    async def sweep_forever():
        while True:
            await asyncio.sleep(app[SETTINGS].sweep_interval)
            for name, sweep in (("uploads", app[UPLOADS].sweep), ("upload requests", app[UPLOAD_REQUESTS].sweep),
                                ("job results", app[JOB_RESULTS].sweep)):
                try:
                    swept = await sweep()
                    if name == "uploads":
                        app[METRICS].uploads_expired.inc(swept)
                except Exception:
                    log.exception("sweep failed", extra={"sweep": name})  # an outage must not end the sweeper

    task = asyncio.create_task(sweep_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _workers(app: web.Application):
    """Background work: the job pool (if this instance runs any) and the loop-lag probe."""
    settings, metrics = app[SETTINGS], app[METRICS]
    lag = asyncio.create_task(watch_loop_lag(metrics))
    pool, executor = None, None
    if settings.workers:
        # Pillow releases the GIL while decoding and resizing, so threads use every core.
        executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="gateway-cpu")
        media_jobs = MediaJobs(app[PROCESSING], app[OBJECTS], executor, thumbnail_sizes=settings.thumbnail_size_list,
                               max_pixels=settings.max_image_pixels, decode_memory=settings.decode_memory)
        link_jobs = LinkJobs(app[LINKS], app[PROCESSING], max_attempts=settings.job_attempts)
        handlers = {**media_jobs.handlers, **link_jobs.handlers, **TusJobs(app[TUS], app[USERS]).handlers}
        pool = WorkerPool(app[JOBS], handlers, concurrency=settings.workers, metrics=metrics)
        pool.start()
    yield
    if pool is not None:
        await pool.stop()
    await app[FETCHER].close()
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)
    lag.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await lag


def create_app(settings: Settings, *, documents: DocumentStore | None = None,
               objects: ObjectStore | None = None) -> web.Application:
    app = web.Application(middlewares=[observe, errors, dato_rate_limit.rate_limit], client_max_size=1024 * 1024)
    app.middlewares.insert(0, accept_either_slash)  # outermost: it re-runs the others for the other path
    app[SETTINGS] = settings
    app[ERROR_SHAPES] = {dato_jsonapi.PREFIX: dato_jsonapi.render_error}
    app[dato_rate_limit.LIMITER] = dato_rate_limit.RateLimiter.from_settings(settings)
    app[DOCUMENTS] = documents or backends.document_store(settings)
    app[OBJECTS] = objects or backends.object_store(settings, staging=app[DOCUMENTS])
    app[METRICS] = Metrics()
    app[METRICS].count_backend_requests(app[DOCUMENTS], app[OBJECTS])
    app[USERS] = Users(app[DOCUMENTS], cache_seconds=settings.token_cache)
    app[UPLOADS] = Uploads(app[DOCUMENTS], app[OBJECTS], expiry=settings.upload_expiry,
                           max_size=settings.max_upload_size, lease=settings.upload_lease)
    app[JOBS] = JobQueue(app[DOCUMENTS], lease_seconds=settings.job_lease, max_attempts=settings.job_attempts,
                         backoff_seconds=settings.job_backoff)
    media_store = MediaStore(app[DOCUMENTS])
    app[PROCESSING] = Processing(media_store, app[JOBS], thumbnails=bool(settings.thumbnail_size_list))
    app[CATEGORIES] = Catalog(app[DOCUMENTS], catalog_kinds.CATEGORIES)
    app[TAGS] = Catalog(app[DOCUMENTS], catalog_kinds.TAGS)
    app[STATUSES] = Statuses(app[DOCUMENTS], media_store, app[CATEGORIES], app[TAGS],
                             user_url=lambda name: f"/users/{name}/")
    app[MEDIA] = MediaService(media_store, app[OBJECTS], app[UPLOADS], app[PROCESSING], references=app[STATUSES])
    app[FETCHER] = Fetcher(allow=settings.fetch_allow_pairs, timeout=settings.fetch_timeout)
    app[LINKS] = LinkMedia(media_store, app[OBJECTS], app[FETCHER], app[PROCESSING],
                           vimeo_oembed_url=settings.vimeo_oembed_url, budget=settings.fetch_timeout,
                           max_page=settings.fetch_max_page, max_image=settings.fetch_max_image,
                           max_pixels=settings.max_image_pixels)
    app[TUS] = TusUploads(app[UPLOADS], app[MEDIA], app[JOBS])
    app[UPLOAD_REQUESTS] = UploadRequests(app[DOCUMENTS], app[OBJECTS], expiry=settings.upload_request_expiry,
                                          max_size=settings.max_upload_size, lease=settings.upload_lease)
    app[LIBRARY] = Library(app[MEDIA], media_store, app[PROCESSING], app[OBJECTS], app[DOCUMENTS])
    app[JOB_RESULTS] = JobResults(app[DOCUMENTS], expiry=settings.job_result_expiry)
    app.on_response_prepare.extend([add_request_id, tus.cors_and_version, dato_rate_limit.add_headers])
    app.cleanup_ctx.extend([_stores, _sweeper, _workers])
    for module in (chunks, upload_state, media, files, catalog, statuses, content, ops, tus, admin, console,
                   dato_upload_requests, dato_uploads, dato_job_results, dato_upload_tags):
        app.add_routes(module.routes)
    app.add_routes(openapi.routes)  # GET /openapi.json, built from the routes above
    return app
