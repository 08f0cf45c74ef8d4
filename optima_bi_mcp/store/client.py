"""The one client factory over clickhouse-connect, for chDB and ClickHouse servers.

Nothing outside this module knows which engine answers: metrics, cache and tools
call `Store.query` and `Store.insert` the same way for both.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import anyio
import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError
from loguru import logger

from optima_bi_mcp.errors import InvalidArgumentError, StoreError, StoreLockedError

log = logger.bind(module=__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
OWNER_FILE = "optima-bi.owner.json"


@dataclass(frozen=True)
class StoreLocation:
    """A parsed store DSN: the engine's address and the database inside it."""

    dsn: str
    database: str
    embedded: bool
    path: Path | None

    @classmethod
    def parse(cls, dsn: str, default_database: str = "optima") -> StoreLocation:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        database = query.pop("database", [default_database])[-1]
        if not _IDENTIFIER.match(database):
            raise InvalidArgumentError(
                f"database name {database!r} must be letters, digits and underscores",
                argument="store",
            )
        rest = urlencode({k: v[-1] for k, v in query.items()})
        bare = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
        if parts.scheme == "chdb":
            path = Path(parts.netloc + parts.path).expanduser()
            return cls(dsn=bare, database=database, embedded=True, path=path)
        if parts.scheme in ("http", "https", "clickhouse", "clickhouses"):
            return cls(dsn=bare, database=database, embedded=False, path=None)
        raise InvalidArgumentError(
            f"store DSN must start with chdb://, http:// or https://, got {parts.scheme!r}",
            argument="store",
        )

    def describe(self) -> str:
        """The location without credentials, safe to log and show."""
        if self.embedded:
            return f"chdb://{self.path} database={self.database}"
        parts = urlsplit(self.dsn)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port} database={self.database}"


class FairLock:
    """A reentrant lock that grants waiting threads in the order they asked.

    `threading.RLock` lets whichever thread wakes first take a freed lock, so
    under load a query can lose the race again and again: with tens of tool
    calls waiting for the embedded engine, some waited seconds while later ones
    went through. Here `release` hands the lock to the oldest waiter.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def __enter__(self) -> FairLock:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me or self._owner is None:
                self._owner, self._depth = me, self._depth + 1
                return self
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append((me, turn))
        turn.acquire()  # released by the thread that hands the lock over
        return self

    def __exit__(self, *exc: object) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth:
                return
            if self._waiters:
                self._owner, turn = self._waiters.popleft()
                self._depth = 1
                turn.release()
            else:
                self._owner = None


class Store:
    """A connection to the store, safe to share between threads.

    chDB runs one query at a time per process, so calls on an embedded store are
    serialized by a lock that serves them in arrival order; a ClickHouse server
    gets one client per thread and answers them concurrently.
    """

    def __init__(self, location: StoreLocation, query_timeout_s: float = 30.0) -> None:
        self.location = location
        self.query_timeout_s = query_timeout_s
        self._lock = FairLock()
        self._count_lock = threading.Lock()
        self._local = threading.local()
        self._embedded_client: Any = None
        self.queries = 0
        # Seconds spent in `query` (waiting for the engine included): profiles split a
        # tool call's time between the store and the Python around it.
        self.query_seconds = 0.0
        self._admin = self._connect(database=None)

    @property
    def embedded(self) -> bool:
        return self.location.embedded

    @property
    def database(self) -> str:
        return self.location.database

    def _connect(self, database: str | None) -> Any:
        settings = {"session_timezone": "UTC"}
        try:
            if self.location.embedded:
                assert self.location.path is not None
                self.location.path.mkdir(parents=True, exist_ok=True)
                return clickhouse_connect.get_client(
                    dsn=f"chdb://{self.location.path}", database=database, settings=settings
                )
            return clickhouse_connect.get_client(
                dsn=self.location.dsn, database=database or "default", settings=settings
            )
        except Exception as exc:
            raise _translate_open_error(exc, self.location) from exc

    def _engine(self) -> contextlib.AbstractContextManager[Any]:
        """Hold this while talking to the engine: the lock for chDB, nothing for a server."""
        return self._lock if self.location.embedded else contextlib.nullcontext()

    def _client(self) -> Any:
        if self.location.embedded:
            if self._embedded_client is None:
                self.ensure_database()
                self._embedded_client = self._connect(self.database)
            return self._embedded_client
        client = getattr(self._local, "client", None)
        if client is None:
            self.ensure_database()
            client = self._connect(self.database)
            self._local.client = client
        return client

    def ensure_database(self) -> None:
        """Create the store's database if it does not exist yet."""
        with self._lock:
            self._admin.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}` ENGINE = Atomic")

    def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run a read-only query with `{name:Type}` parameters and return its rows."""
        merged = {"max_execution_time": int(self.query_timeout_s), "readonly": 2}
        merged.update(settings or {})
        started = time.perf_counter()
        try:
            with self._engine():
                with self._count_lock:
                    self.queries += 1
                result = self._client().query(sql, parameters=parameters, settings=merged)
                rows = result.result_rows
        except ClickHouseError as exc:
            raise StoreError(f"store query failed: {_first_line(exc)}") from exc
        finally:
            elapsed = time.perf_counter() - started
            with self._count_lock:
                self.query_seconds += elapsed
        log.debug("store query rows={} duration_ms={:.1f}", len(rows), elapsed * 1000)
        return rows

    async def aquery(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """`query` from a worker thread, so the event loop never waits on the store."""
        return await anyio.to_thread.run_sync(
            lambda: self.query(sql, parameters, settings=settings)
        )

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run a statement that changes the store (DDL, DELETE, INSERT … SELECT)."""
        try:
            with self._engine():
                return self._client().command(sql, parameters=parameters)
        except ClickHouseError as exc:
            raise StoreError(f"store command failed: {_first_line(exc)}") from exc

    def stream(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        fmt: str = "TabSeparated",
        chunk_bytes: int = 1 << 20,
    ) -> Iterator[bytes]:
        """Yield a query's result in a text `fmt` as chunks of bytes, so memory stays flat.

        The store is busy until the iterator is exhausted or closed.
        """
        try:
            with self._engine():
                source = self._client().raw_stream(sql, parameters=parameters, fmt=fmt)
                try:
                    while chunk := source.read(chunk_bytes):
                        yield chunk
                finally:
                    source.close()
        except ClickHouseError as exc:
            raise StoreError(f"store stream failed: {_first_line(exc)}") from exc

    def insert_text(
        self, table: str, data: bytes, columns: Sequence[str], *, fmt: str = "TabSeparated"
    ) -> None:
        """Insert rows already encoded in a text format (one bulk load, no Python objects)."""
        if not data:
            return
        try:
            with self._engine():
                self._client().raw_insert(
                    table, column_names=list(columns), insert_block=data, fmt=fmt
                )
        except ClickHouseError as exc:
            raise StoreError(f"insert into {table} failed: {_first_line(exc)}") from exc

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Insert rows (a list of tuples in `columns` order) into a table."""
        if not rows:
            return
        try:
            with self._engine():
                self._client().insert(table, rows, column_names=list(columns))
        except ClickHouseError as exc:
            raise StoreError(f"insert into {table} failed: {_first_line(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            for client in (self._embedded_client, getattr(self._local, "client", None)):
                if client is not None:
                    client.close()
            self._admin.close()
            self._embedded_client = None
            self._local = threading.local()
        release_owner(self.location)


def open_store(
    dsn: str, *, database: str = "optima", query_timeout_s: float = 30.0, migrate: bool = True
) -> Store:
    """Open the store at `dsn` and, unless told otherwise, apply pending migrations.

    For an embedded store this also records this process as its owner, so that
    another process that finds the store locked can say who holds it.
    """
    from optima_bi_mcp.store.migrations import migrate as apply_migrations

    location = StoreLocation.parse(dsn, database)
    store = Store(location, query_timeout_s=query_timeout_s)
    claim_owner(location)
    log.info("store opened at {}", location.describe())
    if migrate:
        apply_migrations(store)
    return store


def claim_owner(location: StoreLocation, url: str | None = None) -> None:
    """Record this process as the holder of an embedded store (owner-only file)."""
    if not location.embedded or location.path is None:
        return
    owner = {
        "pid": os.getpid(),
        "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:2]),
        "started_at": datetime.now(UTC).isoformat(),
        "url": url,
    }
    target = location.path / OWNER_FILE
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(owner, fh)


def read_owner(location: StoreLocation) -> dict[str, Any] | None:
    """The process recorded as holding an embedded store, if it is still alive."""
    if location.path is None:
        return None
    try:
        owner = json.loads((location.path / OWNER_FILE).read_text())
        os.kill(int(owner["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return owner if isinstance(owner, dict) else None


def release_owner(location: StoreLocation) -> None:
    owner = read_owner(location)
    if owner and owner.get("pid") == os.getpid() and location.path is not None:
        (location.path / OWNER_FILE).unlink(missing_ok=True)


def _translate_open_error(exc: Exception, location: StoreLocation) -> StoreError:
    text = str(exc)
    if location.embedded and ("lock" in text.lower() or _status_locked(location.path)):
        owner = read_owner(location) or {}
        holder = (
            f"process {owner.get('pid')} ({owner.get('command')}, since {owner.get('started_at')})"
            if owner
            else "another process"
        )
        hint = (
            f"it serves MCP at {owner['url']}; point clients there"
            if owner.get("url")
            else "stop it, or run `optima-bi serve --http` there and go through it"
        )
        return StoreLockedError(
            f"the embedded store at {location.path} is held by {holder}: {hint}",
            holder=owner or None,
            url=owner.get("url"),
        )
    return StoreError(f"cannot open the store at {location.describe()}: {_first_line(exc)}")


def _status_locked(path: Path | None) -> bool:
    """Whether another process holds the engine's `status` file lock (ClickHouse's flock).

    chDB does not always say "lock" when it cannot open a held path.
    """
    try:
        import fcntl  # POSIX only; elsewhere the engine's own message has to do
    except ImportError:
        return False
    if path is None:
        return False
    try:
        fd = os.open(path / "status", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
