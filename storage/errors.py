"""Errors raised by storage adapters.

Adapters translate driver exceptions (botocore, pymongo, sqlite3, OSError) into
these, so nothing above ``storage/`` ever sees a driver type::

    StorageError
    ├── BackendUnavailable   the backend did not answer: the caller may retry later (HTTP 503)
    ├── ObjectNotFound       no object under that key (or no document with that id)
    └── DuplicateKey         an insert collided with an existing id or unique field
"""


class StorageError(Exception):
    """Base class for every error an adapter raises."""


class BackendUnavailable(StorageError):
    def __init__(self, backend: str, detail: str = "") -> None:
        super().__init__(f"{backend} unavailable" + (f": {detail}" if detail else ""))
        self.backend = backend


class ObjectNotFound(StorageError):
    pass


class DuplicateKey(StorageError):
    pass
