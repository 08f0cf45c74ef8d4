"""Tool latency through the in-memory MCP client, and the same questions on PostgreSQL.

Run as `python -m perf.latency PLAN.json OUT.json` in its own process, since it
opens the embedded store. For every case of the plan (a tool with arguments,
for one merchant size and one period) it measures:

- uncached: the full MCP path (client, server, arguments, metric, store,
  rendering) with `NullCache`, over several rounds in shuffled order so that
  no case runs twice in a row;
- cached: the same server wiring with the real L1 cache, after one call fills
  it (the layer that answered is checked in `_meta`);
- PostgreSQL: the oracle function of the same tool (tests/oracle), which
  answers the question with plain SQL on the source.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger
from mcp.client import Client

from optima_bi_mcp.cache.base import NullCache
from optima_bi_mcp.cdc.notify import ChangeBus
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.logs import configure_logging
from optima_bi_mcp.mcp.server import build_server, fixed_principal, services_of
from optima_bi_mcp.mcp.tools import TOOLS_BY_NAME
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import open_store

log = logger.bind(module=__name__)

ORACLE_MODULES = {"merchant": "tests.oracle.merchant", "platform": "tests.oracle.platform"}
# Oracle functions named differently from their tool.
ORACLE_NAMES = {"get_sales": "sales"}


@dataclass
class Case:
    """One question: a tool, its arguments, and what it stands for in the report."""

    tool: str
    kind: str  # merchant, platform or identity
    size: str  # large, median, small, or "platform"
    period: str  # 7d, 30d, 90d, 365d, a month, a segment
    arguments: dict[str, Any]
    uncached_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    store_ms: list[float] = field(default_factory=list)
    store_queries: int = 0
    cached_ms: list[float] = field(default_factory=list)
    cached_server_ms: list[float] = field(default_factory=list)
    cached_layers: dict[str, int] = field(default_factory=dict)
    pg_ms: list[float] = field(default_factory=list)
    pg_sql_ms: list[float] = field(default_factory=list)
    agree: bool | None = None
    error: str | None = None


async def call(client: Client, case: Case) -> tuple[float, Any]:
    """One tool call; returns (milliseconds, result); an error result marks the case."""
    started = time.perf_counter()
    result = await client.call_tool(case.tool, case.arguments)
    elapsed = (time.perf_counter() - started) * 1000
    if result.is_error:
        text = result.content[0].text if result.content else "error"  # type: ignore[union-attr]
        case.error = case.error or f"tool error: {text[:200]}"
    return elapsed, result


def server_ms(result: Any) -> float:
    """The server's own duration of the call (`_meta.duration_ms`): no transport, no client."""
    return float((result.meta or {}).get("duration_ms", "nan"))


async def warm_up(client: Client, cases: list[Case], store: Any) -> dict[int, Any]:
    """Call every case once (not timed) and keep its answer for the agreement check."""
    answers = {}
    for index, case in enumerate(cases):
        before = store.queries
        _, result = await call(client, case)
        case.store_queries = store.queries - before
        answers[index] = result.structured_content
    return answers


async def uncached_rounds(
    client: Client, cases: list[Case], rounds: int, seed: int, store: Any
) -> None:
    """Every case `rounds` times, each round in a new shuffled order.

    Besides the caller's and the server's time, each call's time in store
    queries is kept: the three split a call between the MCP client, the
    server's Python (arguments, models, rendering, MCP) and the engine.
    """
    order = [c for c in cases if c.error is None]
    shuffle = random.Random(seed)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for case in order:
            before = store.query_seconds
            elapsed, result = await call(client, case)
            case.uncached_ms.append(elapsed)
            case.server_ms.append(server_ms(result))
            case.store_ms.append((store.query_seconds - before) * 1000)


def store_floor(store: Any, calls: int = 50) -> dict[str, float]:
    """Median milliseconds of the cheapest statements, through the same client: what any
    store query costs before it reads anything (parse, plan, pipeline, result)."""
    probes = {
        "SELECT 1": ("SELECT 1", None),
        "one merchant row (FINAL)": (
            "SELECT name FROM merchants FINAL WHERE id = {m:UUID}",
            {"m": "00000000-0000-0000-0000-000000000000"},
        ),
    }
    floor = {}
    for name, (sql, parameters) in probes.items():
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            store.query(sql, parameters)
            samples.append((time.perf_counter() - started) * 1000)
        floor[name] = round(sorted(samples)[len(samples) // 2], 3)
    return floor


async def cached_calls(client: Client, cases: list[Case], calls: int) -> None:
    """Fill the cache with one call per case, then time `calls` repeats of each."""
    for case in cases:
        if case.error is not None:
            continue
        await call(client, case)
        for _ in range(calls):
            elapsed, result = await call(client, case)
            layer = str((result.meta or {}).get("cache", "?"))
            case.cached_layers[layer] = case.cached_layers.get(layer, 0) + 1
            case.cached_ms.append(elapsed)
            case.cached_server_ms.append(server_ms(result))


async def make_cache(settings: Settings, bus: ChangeBus) -> Any:
    """The server's real cache (L1 in-process; no Redis is configured here)."""
    module = importlib.import_module("optima_bi_mcp.cache")
    if not hasattr(module, "create_cache"):
        module = importlib.import_module("optima_bi_mcp.cache.tiered")
    cache = module.create_cache(settings, bus)
    return await cache if inspect.isawaitable(cache) else cache


# ---------------------------------------------------------------- PostgreSQL


def oracle_function(case: Case) -> Any:
    module = importlib.import_module(ORACLE_MODULES[case.kind])
    return getattr(module, ORACLE_NAMES.get(case.tool, case.tool))


def oracle_call(conn: psycopg.Connection[Any], case: Case, now: datetime) -> dict[str, Any]:
    """Call the oracle of the case's tool, its parameters filled by name."""
    function = oracle_function(case)
    # The tool's own argument model gives the typed values and every default.
    arguments = TOOLS_BY_NAME[case.tool].arguments.model_validate(case.arguments)
    values = {**arguments.model_dump(), "conn": conn, "now": now}
    kwargs = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name in values:
            kwargs[name] = values[name]
        elif parameter.default is inspect.Parameter.empty:
            raise TypeError(f"oracle {case.tool} needs {name!r}, which no case argument gives")
    return function(**kwargs)  # type: ignore[no-any-return]


class TimedConnection:
    """A psycopg connection that adds up the time spent in SQL: `execute` and fetching.

    The oracles finish some answers in Python with exact fractions, which an
    application on PostgreSQL would not do the same way; the time in SQL alone is
    the fair (and smaller) figure to compare with.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self.sql_s = 0.0

    def execute(self, *args: Any, **kwargs: Any) -> TimedCursor:
        started = time.perf_counter()
        cursor = self._conn.execute(*args, **kwargs)
        self.sql_s += time.perf_counter() - started
        return TimedCursor(cursor, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class TimedCursor:
    """A cursor whose fetches count towards its connection's SQL time."""

    def __init__(self, cursor: Any, owner: TimedConnection) -> None:
        self._cursor = cursor
        self._owner = owner

    def _timed(self, method: str, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return getattr(self._cursor, method)(*args)
        finally:
            self._owner.sql_s += time.perf_counter() - started

    def fetchone(self) -> Any:
        return self._timed("fetchone")

    def fetchall(self) -> Any:
        return self._timed("fetchall")

    def fetchmany(self, size: int = 0) -> Any:
        return self._timed("fetchmany", size)

    def __iter__(self) -> Any:
        return iter(self.fetchall())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def pg_rounds(dsn: str, cases: list[Case], rounds: int, budget_s: float, seed: int) -> None:
    """Every case's oracle `rounds` times after one warm-up, within `budget_s` per case."""
    spent: dict[int, float] = {}
    order = [(i, c) for i, c in enumerate(cases) if c.kind != "identity"]
    shuffle = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as raw:
        conn = TimedConnection(raw)
        for _, case in order:
            _timed_oracle(conn, case)  # warm-up: PostgreSQL's buffers, plans
        for _ in range(rounds):
            shuffle.shuffle(order)
            for index, case in order:
                if case.error or (len(case.pg_ms) >= 2 and spent.get(index, 0.0) > budget_s):
                    continue
                elapsed, in_sql = _timed_oracle(conn, case)
                spent[index] = spent.get(index, 0.0) + elapsed / 1000
                case.pg_ms.append(elapsed)
                case.pg_sql_ms.append(in_sql)


def _timed_oracle(conn: TimedConnection, case: Case) -> tuple[float, float]:
    """(total, in SQL) milliseconds of one oracle call."""
    conn.sql_s = 0.0
    started = time.perf_counter()
    try:
        oracle_call(conn, case, datetime.now(UTC))  # type: ignore[arg-type]
    except Exception as exc:  # reported with the case; the other cases still run
        case.error = case.error or f"oracle error: {type(exc).__name__}: {str(exc)[:200]}"
    return (time.perf_counter() - started) * 1000, conn.sql_s * 1000


def agreement(dsn: str, cases: list[Case], answers: dict[int, Any]) -> None:
    """Whether the tool's headline figures equal the oracle's (a guard against timing
    a wrong answer); lists are compared on the page the tool returned."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for index, case in enumerate(cases):
            answer = answers.get(index)
            if case.kind == "identity" or case.error or not isinstance(answer, dict):
                continue
            try:
                expected = oracle_call(conn, case, answered_at(case, answer))
            except Exception as exc:
                case.error = f"oracle error: {type(exc).__name__}: {str(exc)[:200]}"
                continue
            case.agree = same_headline(answer, expected)


# Tools whose windows end at the instant they read the clock, which their answer
# gives as `as_of`: minutes later the same data gives other figures, so the oracle
# is asked as of that instant (churned_customers' `as_of` comes from its arguments).
AS_OF_IS_NOW = ("platform_merchants", "inventory_status")


def answered_at(case: Case, answer: dict[str, Any]) -> datetime:
    """The instant the oracle must answer as of: the tool's own `now` where it gave it."""
    as_of = answer.get("as_of")
    if case.tool in AS_OF_IS_NOW and isinstance(as_of, str):
        return datetime.fromisoformat(as_of)
    return datetime.now(UTC)


# Keys that differ by when each side read the clock, not by the data.
UNCOMPARED = ("next_cursor", "as_of")


def same_headline(answer: dict[str, Any], expected: dict[str, Any]) -> bool:
    for key, value in expected.items():
        if key not in answer or key in UNCOMPARED:
            continue
        if isinstance(value, list):
            if answer[key] != value[: len(answer[key])]:
                return False
        elif not isinstance(value, dict) and answer[key] != value:
            return False
    return True


# ---------------------------------------------------------------- the run


async def measure(plan: dict[str, Any]) -> dict[str, Any]:
    cases = [Case(**c) for c in plan["cases"]]
    store = open_store(plan["store"])
    settings = Settings(store=plan["store"], redis_url=None)
    admin = fixed_principal(Principal.parse("admin"))
    bus = ChangeBus()
    uncached = build_server(settings, store, principal_resolver=admin, cache=NullCache())
    cached = build_server(
        settings, store, principal_resolver=admin, cache=await make_cache(settings, bus), bus=bus
    )

    async with Client(uncached, cache=None) as client:
        answers = await warm_up(client, cases, store)
        await uncached_rounds(client, cases, plan["rounds"], plan["seed"], store)
    async with Client(cached, cache=None) as client:
        await cached_calls(client, cases, plan["cached_calls"])
    await services_of(cached).cache.aclose()

    agreement(plan["source"], cases, answers)
    pg_rounds(plan["source"], cases, plan["pg_rounds"], plan["pg_budget_s"], plan["seed"])
    version = store.query("SELECT version()")[0][0]
    floor = store_floor(store)
    store.close()
    return {
        "clickhouse": str(version),
        "store_floor_ms": floor,
        "cases": [asdict(c) for c in cases],
    }


def main(argv: list[str]) -> int:
    plan_path, out_path = (Path(a) for a in argv)
    plan = json.loads(plan_path.read_text())
    # One INFO line per tool call, as a deployed server logs (to stderr, a file here).
    configure_logging(level="INFO")
    result = asyncio.run(measure(plan))
    out_path.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
