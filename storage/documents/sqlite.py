"""SQLite document store: the embedded default, one file in GATEWAY_DATA_DIR.

Each collection is a table ``(id PRIMARY KEY, doc JSON)``. Filters compile to
``json_extract`` expressions with bound parameters; field names are checked against
a strict pattern because they are spliced into SQL paths. Compare-and-set is a
single ``UPDATE ... WHERE id = ? AND <expect>`` statement, which SQLite runs
atomically, so offsets advance safely even with several gateway processes on one
file (WAL mode, ``synchronous=FULL`` so an acknowledged commit survives power loss).

Writes commit in groups: every write that arrives while a transaction is being
committed waits for the next one, which takes them all (one fsync for many
concurrent chunks instead of one each; a lone writer waits for nothing). Each write
still answers only after its transaction is durable, and fails alone on a duplicate
key. A batch of staged-blob writes and deletes alone commits without its own fsync: a
blob is only reachable through the session commit that follows it in the same WAL,
and that commit's fsync makes the blob durable with it, before the chunk is
acknowledged; a deleted blob is one nothing points at any more.
"""
from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import aiosqlite

from storage.documents.port import COLLECTIONS, INDEXES, Document, Filter, blobs_in_order
from storage.counting import counted
from storage.errors import BackendUnavailable, DuplicateKey, StorageError

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_OPERATORS = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}


def _path(field: str) -> str:
    if not _FIELD.match(field):
        raise StorageError(f"invalid field name {field!r}")
    return "$." + field


def _value(value: Any) -> Any:
    # json_extract returns SQL values: bools become 0/1, objects become JSON text.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


def _compile(where: Filter | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for field, cond in (where or {}).items():
        column = f"json_extract(doc, '{_path(field)}')"
        if not isinstance(cond, dict):
            cond = {"$eq": cond}
        for op, operand in cond.items():
            if op == "$eq":
                clauses.append(f"{column} IS ?")
                params.append(_value(operand))
            elif op == "$ne":
                clauses.append(f"{column} IS NOT ?")
                params.append(_value(operand))
            elif op == "$has":
                clauses.append(f"EXISTS (SELECT 1 FROM json_each(doc, '{_path(field)}') WHERE value IS ?)")
                params.append(_value(operand))
            elif op == "$contains":
                clauses.append(f"instr({column}, ?) > 0")
                params.append(str(operand))
            elif op == "$in":
                items = list(operand)
                if not items:
                    clauses.append("0")
                    continue
                clauses.append(f"{column} IN ({', '.join('?' * len(items))})")
                params.extend(_value(v) for v in items)
            elif op in _OPERATORS:
                clauses.append(f"{column} {_OPERATORS[op]} ?")
                params.append(_value(operand))
            else:
                raise StorageError(f"unsupported operator {op!r}")
    return (" AND ".join(clauses) or "1"), params


# Writes per transaction at most: bounds how long one commit holds the write lock.
MAX_BATCH = 64
# Pages of a new database file. A staged 200 KiB chunk is a chain of overflow pages that
# SQLite writes to the WAL (two writes a page), copies at checkpoint and walks again to
# delete: at 4 KiB that was about 300 pwrite and 140 pread calls a chunk, and a third of
# the gateway's CPU for small chunks in the kernel. 16 KiB pages cut the calls fourfold
# (gateway sys CPU 5.4-6.9 -> 3.8-5.6 s/GiB, one client); 64 KiB cut a little more but
# make every small document write 64 KiB to the WAL.
PAGE_SIZE = 16384
# Debian's SQLite is built with secure_delete on: deleting a part's 40 staged chunks wrote
# 8 MiB of zeros over their freed pages into the WAL (and again at checkpoint), about 20 ms
# in the chunk that filled the part. FAST still zeroes deleted cells in the b-tree pages a
# delete rewrites anyway (where documents live); only freed overflow pages, the staged
# chunks' bytes that the object store keeps too, stay on disk until reused.
SECURE_DELETE = "FAST"


@dataclass
class _Write:
    sql: str
    params: tuple
    answer: str  # "row" (first row), "rowcount" or "none"
    durable: bool  # False: made durable by the commit that makes it reachable (staged blobs)
    future: asyncio.Future = field(repr=False)


def _commit(db: sqlite3.Connection, writes: list[_Write]) -> list[tuple[bool, Any]]:
    """Run ``writes`` in one transaction (on aiosqlite's thread); per write (ok, answer or
    IntegrityError). A duplicate key undoes only its own statement; any other error
    rolls the whole batch back and is raised."""
    durable, alone = any(write.durable for write in writes), len(writes) == 1
    if not durable:
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: commits without fsync, stays ordered
    try:
        if not alone:  # a single statement commits by itself (autocommit), two fewer steps
            db.execute("BEGIN IMMEDIATE")
        outcomes = []
        for write in writes:
            try:
                cursor = db.execute(write.sql, write.params)
            except sqlite3.IntegrityError as exc:
                outcomes.append((False, exc))
                continue
            rows = cursor.fetchall()  # steps to the end, so COMMIT finds no statement running
            outcomes.append((True, (rows[0] if rows else None) if write.answer == "row"
                             else cursor.rowcount if write.answer == "rowcount" else None))
            cursor.close()
        if not alone:
            db.execute("COMMIT")
        return outcomes
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        if not durable:
            db.execute("PRAGMA synchronous=FULL")


def _table(collection: str) -> str:
    if collection not in COLLECTIONS:
        raise StorageError(f"unknown collection {collection!r}")
    return f'"{collection}"'


class SqliteDocumentStore:
    name = "sqlite"

    def __init__(self, path: Path | str, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        # How long a statement waits for another process's write lock before it is
        # "database is locked" (BackendUnavailable, 503): GATEWAY_BACKEND_TIMEOUT.
        self.timeout = timeout
        self._db: aiosqlite.Connection | None = None
        self.requests: Counter[str] = Counter()
        self._pending: list[_Write] = []
        self._committing: asyncio.Task | None = None

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path, timeout=self.timeout, isolation_level=None)
            # Only takes effect when the file is new (then WAL mode fixes it for good).
            await self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=FULL")
            await self._db.execute(f"PRAGMA secure_delete={SECURE_DELETE}")
            await self._db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            for collection in COLLECTIONS:
                table = _table(collection)
                await self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id PRIMARY KEY, doc TEXT NOT NULL)")
                for spec in INDEXES.get(collection, ()):
                    unique, field = spec.startswith("!"), spec.lstrip("!")
                    name = f'"ix_{collection}_{field.replace(".", "_")}"'
                    expression = f"json_extract(doc, '{_path(field)}')"
                    # Partial unique index: several documents may lack the field.
                    await self._db.execute(
                        f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {name} ON {table} ({expression})"
                        + (f" WHERE {expression} IS NOT NULL" if unique else "")
                    )
            await self._db.execute("CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER)")
            await self._db.execute("CREATE TABLE IF NOT EXISTS staged_blobs (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable("sqlite", str(exc)) from exc

    async def close(self) -> None:
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _run(self, sql: str, params: Iterable[Any] = ()) -> list:
        """All rows of one read, in one trip to aiosqlite's thread (``execute`` then
        ``fetchone`` took two) and with the statement run to its end."""
        if self._db is None:
            raise BackendUnavailable("sqlite", "not open")
        try:
            return list(await self._db.execute_fetchall(sql, tuple(params)))
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(str(exc)) from exc
        except (sqlite3.OperationalError, sqlite3.DatabaseError, ValueError) as exc:
            # "database is locked" past busy_timeout, disk I/O errors, closed connection.
            raise BackendUnavailable("sqlite", str(exc)) from exc

    async def _write(self, sql: str, params: Iterable[Any] = (), *, answer: str = "none",
                     durable: bool = True) -> Any:
        """Queue one write for the next group commit and wait until it is committed."""
        if self._db is None:
            raise BackendUnavailable("sqlite", "not open")
        write = _Write(sql, tuple(params), answer, durable, asyncio.get_running_loop().create_future())
        self._pending.append(write)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_pending())
        # A caller cancelled meanwhile drops only its answer: its write still lands, as a
        # statement already handed to aiosqlite's thread always did.
        ok, value = await write.future
        if not ok:
            raise DuplicateKey(str(value))
        return value

    async def _commit_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                if self._db is None:
                    raise ValueError("not open")
                # aiosqlite has no public way to run a function on its thread; _execute is
                # how its own methods do it.
                outcomes = await self._db._execute(_commit, self._db._conn, batch)
            except (sqlite3.Error, ValueError) as exc:
                # "database is locked" past busy_timeout, disk I/O errors, closed connection.
                outcomes = None
                error = BackendUnavailable("sqlite", str(exc))
            except BaseException:  # cancelled (shutdown): nobody may wait forever
                for write in batch + self._pending:
                    if not write.future.done():
                        write.future.set_exception(BackendUnavailable("sqlite", "store closing"))
                self._pending = []
                raise
            for index, write in enumerate(batch):
                if write.future.done():
                    continue
                if outcomes is None:
                    write.future.set_exception(error)
                else:
                    write.future.set_result(outcomes[index])

    async def ping(self) -> None:
        await self._run("SELECT 1")

    @counted
    async def insert(self, collection: str, doc: Document) -> None:
        await self._write(f"INSERT INTO {_table(collection)} (id, doc) VALUES (?, ?)", (doc["id"], json.dumps(doc)))

    @counted
    async def get(self, collection: str, id: Any) -> Document | None:
        rows = await self._run(f"SELECT doc FROM {_table(collection)} WHERE id = ?", (id,))
        return json.loads(rows[0][0]) if rows else None

    @counted
    async def find(self, collection: str, where: Filter | None = None, *, sort: Iterable[tuple[str, int]] = (),
                   limit: int | None = None, skip: int = 0) -> list[Document]:
        condition, params = _compile(where)
        order = ", ".join(
            f"json_extract(doc, '{_path(field)}') {'DESC' if direction < 0 else 'ASC'}" for field, direction in sort
        )
        sql = f"SELECT doc FROM {_table(collection)} WHERE {condition}"
        if order:
            sql += f" ORDER BY {order}"
        sql += " LIMIT ? OFFSET ?"
        rows = await self._run(sql, [*params, -1 if limit is None else limit, skip])
        return [json.loads(row[0]) for row in rows]

    @counted
    async def count(self, collection: str, where: Filter | None = None) -> int:
        condition, params = _compile(where)
        rows = await self._run(f"SELECT COUNT(*) FROM {_table(collection)} WHERE {condition}", params)
        return rows[0][0]

    @counted
    async def update(self, collection: str, id: Any, changes: Document, *,
                     expect: Filter | None = None) -> Document | None:
        if not changes:
            found = await self.find(collection, {**(expect or {}), "id": id}, limit=1)
            return found[0] if found else None
        condition, params = _compile(expect)
        # json_patch merges objects recursively; the port sets top-level fields, so
        # nested values are wrapped with json_set instead, one path per field.
        setters = ", ".join(f"'{_path(field)}', json(?)" for field in changes)
        sql = (f"UPDATE {_table(collection)} SET doc = json_set(doc, {setters}) WHERE id = ? AND {condition} "
               "RETURNING doc")
        values = [json.dumps(v) for v in changes.values()]
        row = await self._write(sql, [*values, id, *params], answer="row")
        return json.loads(row[0]) if row else None

    @counted
    async def delete(self, collection: str, id: Any, *, expect: Filter | None = None) -> bool:
        condition, params = _compile(expect)
        deleted = await self._write(f"DELETE FROM {_table(collection)} WHERE id = ? AND {condition}", [id, *params],
                                    answer="rowcount")
        return deleted > 0

    @counted
    async def next_id(self, sequence: str) -> int:
        row = await self._write(
            "INSERT INTO sequences (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            (sequence,), answer="row",
        )
        return row[0]

    # BlobStaging: staged chunks as BLOB rows (no base64; durable with the session commit after them)

    @counted
    async def put_blob(self, key: str, data: bytes) -> None:
        await self._write("INSERT OR REPLACE INTO staged_blobs (key, data) VALUES (?, ?)", (key, data), durable=False)

    @counted
    async def get_blobs(self, keys: list[str]) -> list[bytes]:
        marks = ", ".join("?" * len(keys))
        rows = await self._run(f"SELECT key, data FROM staged_blobs WHERE key IN ({marks})", keys)
        found = {key: bytes(data) for key, data in rows}
        return blobs_in_order(found, keys)

    # Deletes of staged blobs need no fsync of their own: nothing points at the pieces any
    # more, the next durable commit syncs them with it, and only a power cut in between
    # could bring them back (as unreferenced rows, never as bytes of an upload).

    @counted
    async def delete_blobs(self, keys: list[str]) -> None:
        if keys:
            await self._write(f"DELETE FROM staged_blobs WHERE key IN ({', '.join('?' * len(keys))})", keys,
                              durable=False)

    @counted
    async def delete_blob_prefix(self, prefix: str) -> None:
        await self._write("DELETE FROM staged_blobs WHERE key >= ? AND key < ?", (prefix, prefix + "\U0010ffff"),
                          durable=False)
