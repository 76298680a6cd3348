"""Server-side fetches: the address guard and the one fetcher that applies it."""
from gateway.outbound.fetcher import FetchResult, Fetcher
from gateway.outbound.guard import FetchError, is_blocked

__all__ = ["FetchError", "FetchResult", "Fetcher", "is_blocked"]
