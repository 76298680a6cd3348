"""Typed settings: built-in defaults, then an optional TOML file, then GATEWAY_* env vars.

Each field's metadata names its environment variable; a value that does not parse
or validate raises ``SettingsError`` naming that variable, so start-up stops with a
message an operator can act on.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

MiB = 1024 * 1024
GiB = 1024 * MiB
S3_MIN_PART_SIZE = 5 * MiB


class SettingsError(ValueError):
    pass


def _setting(default: Any, env: str, help: str = "") -> Any:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _setting(Path("./var"), "GATEWAY_DATA_DIR", "local objects and the SQLite file")
    public_url: str = _setting("", "GATEWAY_PUBLIC_URL", "base of URLs handed to clients; empty = from the request")
    object_store: str = _setting("local", "GATEWAY_OBJECT_STORE", "local | s3")
    s3_endpoint: str = _setting("", "GATEWAY_S3_ENDPOINT")
    s3_bucket: str = _setting("media", "GATEWAY_S3_BUCKET")
    s3_region: str = _setting("us-east-1", "GATEWAY_S3_REGION")
    s3_access_key: str = _setting("", "GATEWAY_S3_ACCESS_KEY")
    s3_secret_key: str = _setting("", "GATEWAY_S3_SECRET_KEY")
    s3_part_size: int = _setting(8 * MiB, "GATEWAY_S3_PART_SIZE", "multipart part size, >= 5 MiB")
    s3_public_endpoint: str = _setting("", "GATEWAY_S3_PUBLIC_ENDPOINT",
                                       "the S3 endpoint as clients reach it; set, DatoCMS upload requests hand "
                                       "out presigned S3 PUT URLs (the bytes bypass the gateway); empty = the "
                                       "gateway receives the bytes itself")
    document_store: str = _setting("sqlite", "GATEWAY_DOCUMENT_STORE", "sqlite | mongodb")
    mongodb_uri: str = _setting("mongodb://127.0.0.1:27017/gateway", "GATEWAY_MONGODB_URI")
    mongodb_database: str = _setting("gateway", "GATEWAY_MONGODB_DATABASE", "used when the URI names none")
    upload_expiry: int = _setting(86400, "GATEWAY_UPLOAD_EXPIRY", "seconds an unfinished upload lives")
    upload_request_expiry: int = _setting(3600, "GATEWAY_UPLOAD_REQUEST_EXPIRY",
                                          "seconds a DatoCMS upload request's URL accepts the file, and its file "
                                          "waits to be taken by POST /dato/uploads before it is swept")
    token_cache: float = _setting(5.0, "GATEWAY_TOKEN_CACHE",
                                  "seconds an authenticated token is remembered; revocation takes this long; 0 = off")
    upload_lease: float = _setting(5.0, "GATEWAY_UPLOAD_LEASE",
                                   "seconds a chunk owns its upload without sending a byte; renewed while bytes flow")
    max_upload_size: int = _setting(5 * GiB, "GATEWAY_MAX_UPLOAD_SIZE", "bytes")
    sweep_interval: float = _setting(60.0, "GATEWAY_SWEEP_INTERVAL", "seconds between expired-upload sweeps")
    ready_timeout: float = _setting(2.0, "GATEWAY_READY_TIMEOUT", "seconds each store gets to answer /health/ready")
    backend_timeout: float = _setting(30.0, "GATEWAY_BACKEND_TIMEOUT", "seconds before a store call is given up")
    log_level: str = _setting("INFO", "GATEWAY_LOG_LEVEL")
    # serving: limits against slow, idle and too many clients; waiting for backends at start
    header_timeout: float = _setting(15.0, "GATEWAY_HEADER_TIMEOUT",
                                     "seconds a request's headers may take from connect or the previous "
                                     "response (also the idle keep-alive limit)")
    body_idle_timeout: float = _setting(30.0, "GATEWAY_BODY_IDLE_TIMEOUT",
                                        "seconds a request body may send nothing before it is cut off")
    max_connections: int = _setting(0, "GATEWAY_MAX_CONNECTIONS",
                                    "open client connections; 0 = from the open-files limit (less 1024, at most 10000)")
    startup_wait: float = _setting(60.0, "GATEWAY_STARTUP_WAIT",
                                   "seconds serve waits for MongoDB and S3 to answer before giving up")
    log_repeat_limit: int = _setting(20, "GATEWAY_LOG_REPEAT_LIMIT",
                                     "same warning/error line per window before repeats are suppressed")
    log_repeat_window: float = _setting(60.0, "GATEWAY_LOG_REPEAT_WINDOW", "seconds")
    # DatoCMS's CMA documents 60 requests per 3 seconds per API token; its client waits out a 429
    dato_rate_limit: int = _setting(60, "GATEWAY_DATO_RATE_LIMIT",
                                    "requests per window per API token (or per address without one) under /dato; "
                                    "counted per instance")
    dato_rate_window: float = _setting(3.0, "GATEWAY_DATO_RATE_WINDOW", "seconds of a /dato rate-limit window")
    dato_rate_keys: int = _setting(10_000, "GATEWAY_DATO_RATE_KEYS",
                                   "tokens and addresses whose /dato budgets are tracked at once; the oldest "
                                   "are forgotten past it (bounds memory)")
    workers: int = _setting(os.cpu_count() or 1, "GATEWAY_WORKERS",
                            "concurrent background jobs in this process; 0 = run none here")
    job_attempts: int = _setting(5, "GATEWAY_JOB_ATTEMPTS", "tries before a job is marked failed")
    job_lease: float = _setting(30.0, "GATEWAY_JOB_LEASE", "seconds a claimed job stays owned without renewal")
    job_backoff: float = _setting(2.0, "GATEWAY_JOB_BACKOFF", "first retry delay in seconds; doubles each try")
    job_result_expiry: int = _setting(86400, "GATEWAY_JOB_RESULT_EXPIRY",
                                      "seconds a DatoCMS job result (/dato/job-results/ID) stays readable")
    thumbnail_sizes: str = _setting("64,128,512,1080", "GATEWAY_THUMBNAIL_SIZES", "bounding squares in px")
    max_image_pixels: int = _setting(50_000_000, "GATEWAY_MAX_IMAGE_PIXELS", "larger images are not decoded")
    decode_memory: int = _setting(512 * MiB, "GATEWAY_DECODE_MEMORY",
                                  "bytes all concurrent image decodes of this process may hold (estimated from "
                                  "headers); an image needing more runs alone")
    fetch_allow: str = _setting("", "GATEWAY_FETCH_ALLOW",
                                "host:port pairs server-side fetches may reach even if private (tests)")
    fetch_timeout: float = _setting(5.0, "GATEWAY_FETCH_TIMEOUT", "seconds a link preview may take before replying")
    fetch_max_page: int = _setting(5 * MiB, "GATEWAY_FETCH_MAX_PAGE", "bytes of a fetched page")
    fetch_max_image: int = _setting(20 * MiB, "GATEWAY_FETCH_MAX_IMAGE", "bytes of a fetched image")
    vimeo_oembed_url: str = _setting("https://vimeo.com/api/oembed.json", "GATEWAY_VIMEO_OEMBED_URL",
                                     "oEmbed endpoint asked about Vimeo links")

    @property
    def fetch_allow_pairs(self) -> frozenset[tuple[str, int]]:
        return parse_allow(self.fetch_allow)

    @property
    def thumbnail_size_list(self) -> tuple[int, ...]:
        return tuple(sorted({int(part) for part in self.thumbnail_sizes.split(",") if part.strip()}))

    def __post_init__(self) -> None:
        checks = {
            "object_store": self.object_store in ("local", "s3") or "must be 'local' or 's3'",
            "document_store": self.document_store in ("sqlite", "mongodb") or "must be 'sqlite' or 'mongodb'",
            "s3_part_size": self.s3_part_size >= S3_MIN_PART_SIZE or f"must be at least {S3_MIN_PART_SIZE} (5 MiB)",
            "upload_expiry": self.upload_expiry > 0 or "must be positive",
            "upload_request_expiry": 0 < self.upload_request_expiry <= 7 * 86400
            or "must be 1 s to 7 days (the longest an S3 presigned URL lives)",
            "upload_lease": self.upload_lease > 0 or "must be positive",
            "token_cache": 0 <= self.token_cache <= 300 or "must be 0-300 seconds",
            "max_upload_size": self.max_upload_size > 0 or "must be positive",
            "sweep_interval": self.sweep_interval > 0 or "must be positive",
            "ready_timeout": self.ready_timeout > 0 or "must be positive",
            "backend_timeout": self.backend_timeout > 0 or "must be positive",
            "header_timeout": self.header_timeout > 0 or "must be positive",
            "body_idle_timeout": self.body_idle_timeout > 0 or "must be positive",
            "max_connections": self.max_connections >= 0 or "must be 0 (from the open-files limit) or more",
            "startup_wait": self.startup_wait >= 0 or "must not be negative",
            "log_repeat_limit": self.log_repeat_limit >= 1 or "must be at least 1",
            "log_repeat_window": self.log_repeat_window > 0 or "must be positive",
            "dato_rate_limit": self.dato_rate_limit >= 1 or "must be at least 1",
            "dato_rate_window": self.dato_rate_window > 0 or "must be positive",
            "dato_rate_keys": self.dato_rate_keys >= 1 or "must be at least 1",
            "workers": self.workers >= 0 or "must be 0 or more",
            "job_attempts": self.job_attempts >= 1 or "must be at least 1",
            "job_lease": self.job_lease > 0 or "must be positive",
            "job_backoff": self.job_backoff >= 0 or "must not be negative",
            "job_result_expiry": self.job_result_expiry > 0 or "must be positive",
            "thumbnail_sizes": _sizes_ok(self.thumbnail_sizes) or "must be comma-separated pixel sizes, 1-4096",
            "max_image_pixels": self.max_image_pixels > 0 or "must be positive",
            "decode_memory": self.decode_memory > 0 or "must be positive",
            "fetch_allow": _allow_ok(self.fetch_allow) or "must be comma-separated host:port pairs",
            "fetch_timeout": self.fetch_timeout > 0 or "must be positive",
            "fetch_max_page": self.fetch_max_page > 0 or "must be positive",
            "fetch_max_image": self.fetch_max_image > 0 or "must be positive",
            "vimeo_oembed_url": self.vimeo_oembed_url.startswith(("http://", "https://"))
            or "must start with http:// or https://",
            "public_url": (not self.public_url or self.public_url.startswith(("http://", "https://")))
            or "must start with http:// or https://",
            "s3_public_endpoint": (not self.s3_public_endpoint
                                   or self.s3_public_endpoint.startswith(("http://", "https://")))
            or "must start with http:// or https://",
            "s3_endpoint": (self.object_store != "s3" or not self.s3_endpoint
                            or self.s3_endpoint.startswith(("http://", "https://")))
            or "must start with http:// or https://",
        }
        for name, ok in checks.items():
            if ok is not True:
                raise SettingsError(f"{env_name(name)}: {ok} (got {getattr(self, name)!r})")


def parse_allow(text: str) -> frozenset[tuple[str, int]]:
    """``host:port,host:port`` -> pairs server-side fetches may reach even when private."""
    pairs = set()
    for entry in filter(None, (e.strip() for e in text.split(","))):
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"entry {entry!r} is not host:port")
        pairs.add((host.strip("[]").lower(), int(port)))
    return frozenset(pairs)


def _allow_ok(text: str) -> bool:
    try:
        parse_allow(text)
    except ValueError:
        return False
    return True


def _sizes_ok(text: str) -> bool:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    return bool(parts) and all(part.isdigit() and 1 <= int(part) <= 4096 for part in parts)


def env_name(field_name: str) -> str:
    return {f.name: f.metadata["env"] for f in dataclasses.fields(Settings)}[field_name]


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_setting(kind: type, raw: Any, env: str) -> Any:
    """``raw`` (an environment string, or a TOML value) as a setting of type ``kind``."""
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in (*TRUE, *FALSE):
                return raw.strip().lower() in TRUE
            raise ValueError("not a boolean")
        if kind in (int, float) and isinstance(raw, bool):
            raise ValueError("a boolean is not a number")  # bool is an int to Python, never to an operator
        if kind is int and isinstance(raw, str):
            return int(raw.replace("_", ""))
        if kind is int and not isinstance(raw, int):
            raise ValueError("not an integer")
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{env}: cannot read {raw!r} as {kind.__name__}") from exc


def _convert(f: dataclasses.Field, raw: Any) -> Any:
    # Annotations are strings (``from __future__ import annotations``): resolve them once, whatever the type.
    return parse_setting(typing.get_type_hints(Settings)[f.name], raw, f.metadata["env"])


def load_settings(config_file: str | Path | None = None, environ: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Defaults < TOML file (keys are field names, e.g. ``s3_bucket``) < environment < overrides."""
    environ = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    if config_file:
        try:
            table = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"--config {config_file}: {exc}") from exc
        table = table.get("gateway", table)
        for key, raw in table.items():
            if key not in fields:
                raise SettingsError(f"--config {config_file}: unknown setting {key!r}")
            values[key] = _convert(fields[key], raw)
    for name, f in fields.items():
        if f.metadata["env"] in environ:
            values[name] = _convert(f, environ[f.metadata["env"]])
    values.update(overrides)
    return Settings(**values)
