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
from collections.abc import Callable, Iterator, Mapping, Sequence
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
# Statements that may change a table's columns, after which cached column types are stale.
_SCHEMA_CHANGE = re.compile(r"\s*(ALTER|CREATE|DROP|RENAME|EXCHANGE|ATTACH|DETACH)\b", re.I)
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


class ConnectionPool:
    """Up to `size` engine clients, handed out in the order threads asked for one.

    chDB answers statements of different connections at the same time (measured
    with chDB 4.4 on 2 cores: two threads, each with its own connection, ran a
    merchant query 1.7 times as often as one), while one connection runs one
    statement at a time. So the embedded store keeps one connection per core.
    A freed client goes to the oldest waiter, never to whichever thread wakes
    first: under tens of HTTP sessions, a free-for-all let some tool calls wait
    seconds behind later ones. A thread that already holds a client and asks
    again gets the same one back, so it never waits for itself (with one
    connection it would wait forever).
    """

    def __init__(self, size: int, connect: Callable[[], Any]) -> None:
        self._size = max(1, size)
        self._connect = connect
        self._mutex = threading.Lock()
        self._idle: list[Any] = []
        self._opened: list[Any] = []
        self._opening = 0
        self._waiters: deque[_Turn] = deque()
        self._held = threading.local()

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """A client for this thread's statements, for as long as the block runs."""
        held = getattr(self._held, "client", None)
        if held is not None:
            yield held
            return
        client = self._acquire()
        self._held.client = client
        try:
            yield client
        finally:
            self._held.client = None
            self._release(client)

    def _acquire(self) -> Any:
        with self._mutex:
            if self._idle:
                return self._idle.pop()
            turn = None
            if len(self._opened) + self._opening < self._size:
                self._opening += 1
            else:
                turn = _Turn()
                self._waiters.append(turn)
        if turn is None:
            return self._open()
        turn.ready.acquire()  # released by the thread that hands its client over
        return self._open() if turn.client is _OPEN_ONE else turn.client

    def _open(self) -> Any:
        """Open a connection (its place is already counted in `_opening`)."""
        try:
            client = self._connect()
        except BaseException:
            with self._mutex:
                self._opening -= 1
                self._pass_opening_on()
            raise
        with self._mutex:
            self._opening -= 1
            self._opened.append(client)
        return client

    def _pass_opening_on(self) -> None:
        """A connection failed to open: the oldest waiter may try to open one instead."""
        if self._waiters:
            turn = self._waiters.popleft()
            turn.client = _OPEN_ONE
            self._opening += 1
            turn.ready.release()

    def _release(self, client: Any) -> None:
        with self._mutex:
            if self._waiters:
                turn = self._waiters.popleft()
                turn.client = client
                turn.ready.release()
            else:
                self._idle.append(client)

    def close(self) -> None:
        """Close every client opened (none may be in use)."""
        with self._mutex:
            opened, self._opened, self._idle = self._opened, [], []
        for client in opened:
            client.close()


_OPEN_ONE = object()


class _Turn:
    """A waiting thread's place in line: `ready` is held until a client is handed to it
    (or _OPEN_ONE, when it may open a connection itself)."""

    def __init__(self) -> None:
        self.ready = threading.Lock()
        self.ready.acquire()
        self.client: Any = None


class Store:
    """A connection to the store, safe to share between threads.

    An embedded store hands its statements to a pool of `connections` chDB
    connections (one per core by default), in arrival order; a ClickHouse server
    gets one client per thread and answers them concurrently.
    """

    def __init__(
        self,
        location: StoreLocation,
        query_timeout_s: float = 30.0,
        connections: int | None = None,
    ) -> None:
        self.location = location
        self.query_timeout_s = query_timeout_s
        self._admin_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._local = threading.local()
        self._pool = ConnectionPool(connections or os.cpu_count() or 1, self._open_client)
        # Column types per (table, columns) inserted into: without them the driver asks
        # the engine to DESCRIBE the table before every insert.
        self._insert_types: dict[tuple[str, tuple[str, ...]], Sequence[Any]] = {}
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

    def _open_client(self) -> Any:
        self.ensure_database()
        return self._connect(self.database)

    def _client(self) -> contextlib.AbstractContextManager[Any]:
        """The client to talk to the engine with: a pooled one for chDB, this thread's for
        a server."""
        if self.location.embedded:
            return self._pool.client()
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._open_client()
        return contextlib.nullcontext(client)

    def ensure_database(self) -> None:
        """Create the store's database if it does not exist yet."""
        with self._admin_lock:
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
            with self._count_lock:
                self.queries += 1
            with self._client() as client:
                rows = client.query(sql, parameters=parameters, settings=merged).result_rows
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
        if _SCHEMA_CHANGE.match(sql):
            self._insert_types.clear()
        try:
            with self._client() as client:
                return client.command(sql, parameters=parameters)
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

        One of the store's connections stays taken until the iterator is exhausted or
        closed.
        """
        try:
            with self._client() as client:
                source = client.raw_stream(sql, parameters=parameters, fmt=fmt)
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
            with self._client() as client:
                client.raw_insert(table, column_names=list(columns), insert_block=data, fmt=fmt)
        except ClickHouseError as exc:
            raise StoreError(f"insert into {table} failed: {_first_line(exc)}") from exc

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Insert rows (a list of tuples in `columns` order) into a table."""
        if not rows:
            return
        key = (table, tuple(columns))
        try:
            with self._client() as client:
                types = self._insert_types.get(key)
                if types is None:
                    context = client.create_insert_context(table, list(columns))
                    types = self._insert_types[key] = context.column_types
                client.insert(table, rows, column_names=list(columns), column_types=types)
        except Exception as exc:
            # The table may have changed under us: the retry describes it again.
            self._insert_types.pop(key, None)
            if isinstance(exc, ClickHouseError):
                raise StoreError(f"insert into {table} failed: {_first_line(exc)}") from exc
            raise

    def close(self) -> None:
        self._pool.close()
        with self._admin_lock:
            client = getattr(self._local, "client", None)
            if client is not None:
                client.close()
            self._admin.close()
            self._local = threading.local()
        release_owner(self.location)


def open_store(
    dsn: str,
    *,
    database: str = "optima",
    query_timeout_s: float = 30.0,
    migrate: bool = True,
    connections: int | None = None,
) -> Store:
    """Open the store at `dsn` and, unless told otherwise, apply pending migrations.

    `connections` bounds how many statements an embedded store runs at once (default:
    one per core).

    For an embedded store this also records this process as its owner, so that
    another process that finds the store locked can say who holds it.
    """
    from optima_bi_mcp.store.migrations import migrate as apply_migrations

    location = StoreLocation.parse(dsn, database)
    store = Store(location, query_timeout_s=query_timeout_s, connections=connections)
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
