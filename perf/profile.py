"""Where one tool's time goes: every store query timed, and a Python profile of the call.

    python -m perf.profile --store DSN get_sales '{"merchant_id": "…", "days": 365}'
        [--calls 20] [--cached] [--html perf/out/profile.html] [--no-profile]
        [--setting do_not_merge_across_partitions_select_final=1] [--json OUT.json]

Runs the tool through the in-memory MCP client (as perf.latency does), after
one warm-up call, `--calls` times. Prints the store queries grouped by SQL
with their count and total, median and maximum milliseconds, the share of the
call spent outside the store, and, when pyinstrument is installed, its
profile of the calls. chDB keeps no `system.query_log` (the embedded engine
has no such table), so queries are timed around `Store.query` instead.

With `--json`, the calls are timed unprofiled first, then run again under
cProfile in every thread they use (`perf.layers`), and the figures are
written as JSON for the benchmark report: per call, the store queries by SQL
and the share of each layer (engine, store client, MCP SDK, the client's
result validation, pydantic, our code).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from mcp.client import Client

from optima_bi_mcp.cache.base import NullCache
from optima_bi_mcp.cdc.notify import ChangeBus
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.logs import configure_logging
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store, open_store
from perf.latency import make_cache
from perf.layers import WAITING, ThreadProfiles, profiled
from perf.stats import percentile


def time_queries(store: Store, extra: dict[str, str]) -> dict[str, list[float]]:
    """Wrap this store's `query` so every call's milliseconds are kept by SQL, and every
    query runs with the `extra` settings (to try one before changing the code)."""
    timings: dict[str, list[float]] = defaultdict(list)
    original = store.query

    def timed(sql: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        kwargs["settings"] = {**(kwargs.get("settings") or {}), **extra}
        started = time.perf_counter()
        try:
            return original(sql, *args, **kwargs)
        finally:
            timings[" ".join(sql.split())].append((time.perf_counter() - started) * 1000)

    store.query = timed  # type: ignore[method-assign]
    return timings


async def run(ns: argparse.Namespace) -> None:
    store = open_store(ns.store)
    settings = Settings(store=ns.store, redis_url=None)
    bus = ChangeBus()
    cache = await make_cache(settings, bus) if ns.cached else NullCache()
    admin = fixed_principal(Principal.parse("admin"))
    server = build_server(settings, store, principal_resolver=admin, cache=cache, bus=bus)
    arguments = json.loads(ns.arguments)
    extra = dict(pair.split("=", 1) for pair in ns.setting)
    async with Client(server, cache=None) as client:
        timings = time_queries(store, extra)
        await client.call_tool(ns.tool, arguments)
        timings.clear()
        profiler = None if ns.no_profile or ns.json else _profiler()
        started = time.perf_counter()
        for _ in range(ns.calls):
            await client.call_tool(ns.tool, arguments)
        total_ms = (time.perf_counter() - started) * 1000
        _stop(profiler, ns.html)
        timings = {sql: list(v) for sql, v in timings.items()}  # the unprofiled calls
        if ns.json:
            asked = await asked_queries(client, store, ns.tool, arguments)
            phases = {sql: engine_phases(store, *call) for sql, call in asked.items()}
            profiles = ThreadProfiles()
            with profiled(profiles):
                for _ in range(ns.calls):
                    await client.call_tool(ns.tool, arguments)
    print_queries(timings, total_ms, ns.calls)
    if ns.json:
        figures = profile_figures(timings, total_ms, ns.calls, profiles.layers())
        for query in figures["queries"]:
            query["phases"] = phases.get(query["sql"], {})
        ns.json.write_text(json.dumps(figures, indent=1))
    store.close()


async def asked_queries(
    client: Client, store: Store, tool: str, arguments: dict[str, Any]
) -> dict[str, tuple[str, Any]]:
    """The store queries of one more call, with their parameters, by normalized SQL."""
    asked: dict[str, tuple[str, Any]] = {}
    timed = store.query

    def record(sql: str, parameters: Any = None, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked[" ".join(sql.split())] = (sql, parameters)
        return timed(sql, parameters, **kwargs)

    store.query = record  # type: ignore[method-assign]
    try:
        await client.call_tool(tool, arguments)
    finally:
        store.query = timed  # type: ignore[method-assign]
    return asked


def engine_phases(store: Store, sql: str, parameters: Any, rounds: int = 15) -> dict[str, float]:
    """Median milliseconds of the engine's phases for one query, as the client sees them:
    a round trip that does nothing (`SELECT 1`), parsing and analysis (`EXPLAIN QUERY
    TREE`), planning too (`EXPLAIN`), and the whole query; interleaved, `rounds` each."""
    steps = {
        "round trip": ("SELECT 1", None),
        "parse and analyse": (f"EXPLAIN QUERY TREE {sql}", parameters),
        "plan": (f"EXPLAIN {sql}", parameters),
        "run": (sql, parameters),
    }
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, (text, params) in steps.items():
            started = time.perf_counter()
            store.query(text, params)
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: percentile(values, 50) for name, values in samples.items()}


def profile_figures(
    timings: dict[str, list[float]], total_ms: float, calls: int, layers: dict[str, float]
) -> dict[str, Any]:
    """The unprofiled call's time and store queries, and each layer's share of the
    profiled calls (cProfile slows Python code, so shares, not times, carry over). The
    main thread's wait for a store query overlaps the worker's time and is left out."""
    layers = {name: s for name, s in layers.items() if name != WAITING}
    profiled_s = sum(layers.values()) or 1.0
    return {
        "calls": calls,
        "per_call_ms": total_ms / calls,
        "store_ms": sum(sum(v) for v in timings.values()) / calls,
        "queries": [
            {"sql": sql, "per_call": len(v) / calls, "median_ms": percentile(v, 50)}
            for sql, v in sorted(timings.items(), key=lambda kv: -sum(kv[1]))
        ],
        "layers": {
            layer: seconds / profiled_s
            for layer, seconds in sorted(layers.items(), key=lambda kv: -kv[1])
        },
    }


def print_queries(timings: dict[str, list[float]], total_ms: float, calls: int) -> None:
    in_store = sum(sum(v) for v in timings.values())
    print(f"{calls} calls, {total_ms / calls:.2f} ms per call, store {in_store / calls:.2f} ms")
    for sql, samples in sorted(timings.items(), key=lambda kv: -sum(kv[1])):
        print(
            f"  {len(samples):4d}× total {sum(samples):8.1f} ms"
            f"  median {percentile(samples, 50):7.2f}  max {max(samples):7.2f}  {sql[:140]}"
        )


def _profiler() -> Any:
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("(pyinstrument is not installed: no Python profile)")
        return None
    profiler = Profiler(async_mode="enabled")
    profiler.start()
    return profiler


def _stop(profiler: Any, html: Path | None) -> None:
    if profiler is None:
        return
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if html is not None:
        html.write_text(profiler.output_html())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.profile", description=__doc__)
    parser.add_argument("--store", required=True, help="store DSN (chdb:///path?database=…)")
    parser.add_argument("tool")
    parser.add_argument("arguments", nargs="?", default="{}", help="tool arguments as JSON")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--cached", action="store_true", help="through the L1 cache")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML here")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a ClickHouse setting for every store query (repeatable)",
    )
    parser.add_argument("--no-profile", action="store_true", help="time queries only")
    parser.add_argument("--json", type=Path, help="write the figures and layer shares here")
    configure_logging(level="WARNING")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
