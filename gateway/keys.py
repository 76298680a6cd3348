"""Typed application keys (aiohttp ``web.AppKey``): the app's only shared state."""
from __future__ import annotations

from aiohttp import web

from config.settings import Settings
from gateway.core.auth import Users
from gateway.core.catalog import Catalog
from gateway.core.job_results import JobResults
from gateway.core.jobs import JobQueue
from gateway.core.library import Library
from gateway.core.link_media import LinkMedia
from gateway.core.media import MediaService
from gateway.core.processing import Processing
from gateway.core.statuses import Statuses
from gateway.core.tus import TusUploads
from gateway.core.upload_requests import UploadRequests
from gateway.core.uploads import Uploads
from gateway.metrics import Metrics
from gateway.outbound import Fetcher
from storage.documents.port import DocumentStore
from storage.objects.port import ObjectStore

SETTINGS = web.AppKey("settings", Settings)
DOCUMENTS = web.AppKey("documents", DocumentStore)
OBJECTS = web.AppKey("objects", ObjectStore)
USERS = web.AppKey("users", Users)
UPLOADS = web.AppKey("uploads", Uploads)
MEDIA = web.AppKey("media", MediaService)
METRICS = web.AppKey("metrics", Metrics)
JOBS = web.AppKey("jobs", JobQueue)
PROCESSING = web.AppKey("processing", Processing)
CATEGORIES = web.AppKey("categories", Catalog)
TAGS = web.AppKey("tags", Catalog)
STATUSES = web.AppKey("statuses", Statuses)
LINKS = web.AppKey("links", LinkMedia)
FETCHER = web.AppKey("fetcher", Fetcher)
TUS = web.AppKey("tus", TusUploads)
LIBRARY = web.AppKey("library", Library)
JOB_RESULTS = web.AppKey("job_results", JobResults)
UPLOAD_REQUESTS = web.AppKey("upload_requests", UploadRequests)
