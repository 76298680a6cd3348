"""The one place that chooses backends from settings (tusd's composer)."""
from __future__ import annotations

from config.settings import Settings
from storage.documents.port import BlobStaging, DocumentStore
from storage.objects.port import ObjectStore


def document_store(settings: Settings) -> DocumentStore:
    if settings.document_store == "mongodb":
        from storage.documents.mongo import MongoDocumentStore

        return MongoDocumentStore(settings.mongodb_uri, settings.mongodb_database, timeout=settings.backend_timeout)
    from storage.documents.sqlite import SqliteDocumentStore

    return SqliteDocumentStore(settings.data_dir / "gateway.sqlite3", timeout=settings.backend_timeout)


def object_store(settings: Settings, staging: BlobStaging | None) -> ObjectStore:
    """``staging`` is the document store when it can stage S3 chunks (every adapter can)."""
    if settings.object_store == "s3":
        from storage.objects.s3 import S3ObjectStore

        return S3ObjectStore(endpoint=settings.s3_endpoint, bucket=settings.s3_bucket, region=settings.s3_region,
                             access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                             part_size=settings.s3_part_size, staging=staging, timeout=settings.backend_timeout,
                             public_endpoint=settings.s3_public_endpoint)
    from storage.objects.local import LocalObjectStore

    return LocalObjectStore(settings.data_dir)
