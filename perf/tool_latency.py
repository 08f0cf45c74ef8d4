"""Median latency of every merchant tool per merchant size and period, in-memory MCP client.

    .venv/bin/python -m perf.tool_latency --store DSN [--calls 9] [--tools get_sales,...]
        [--sizes large,median,small] [--setting name=value ...]

Picks the merchants as the benchmark does (the largest, the median and the one at
the 90th percentile by orders, from the store) and the periods of 7, 30, 90 and
365 days ending on the last day with orders. Each case runs once untimed, then
`--calls` rounds over all cases in a new shuffled order, with the NullCache, as
an administrator. Prints, per case: the median through the client, the server's
own median (`_meta.duration_ms`), the store queries per call and their median
milliseconds; writes `perf/out/tool_latency.{json,md}`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.logs import configure_logging
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store, open_store
from perf.plan import Merchants, build_cases
from perf.profile import time_queries
from perf.stats import percentile

OUT = Path(__file__).resolve().parent / "out"
_SIZES = "SELECT toString(merchant_id), count() AS n FROM orders FINAL GROUP BY merchant_id"
_LAST_DAY = "SELECT toDate(max(created_at)) FROM orders FINAL"


def pick(store: Store) -> Merchants:
    """The benchmark's merchant sizes, counted in the store instead of the source."""
    rows = sorted(((str(m), int(n)) for m, n in store.query(_SIZES)), key=lambda r: (-r[1], r[0]))
    sizes = {
        "large": rows[0],
        "median": rows[len(rows) // 2],
        "small": rows[min(len(rows) - 1, (len(rows) * 9) // 10)],
    }
    return Merchants(sizes, [m for m, _ in rows], sum(n for _, n in rows))


async def measure(
    server: Any, cases: list[dict[str, Any]], calls: int, spent: dict[str, list[float]]
) -> list[dict[str, Any]]:
    samples: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    async with Client(server) as client:
        for case in cases:
            await client.call_tool(case["tool"], case["arguments"])
        for _ in range(calls):
            order = list(range(len(cases)))
            random.shuffle(order)
            for i in order:
                spent.clear()
                started = time.perf_counter()
                result = await client.call_tool(cases[i]["tool"], cases[i]["arguments"])
                s = samples[i]
                s["client"].append((time.perf_counter() - started) * 1000)
                if result.is_error:
                    raise SystemExit(f"{cases[i]} failed: {result.content}")
                s["server"].append(float((result.meta or {}).get("duration_ms", "nan")))
                s["queries"].append(sum(len(v) for v in spent.values()))
                s["store"].append(sum(sum(v) for v in spent.values()))
    return [_row(case, samples[i]) for i, case in enumerate(cases)]


def _row(case: dict[str, Any], s: dict[str, list[float]]) -> dict[str, Any]:
    return {
        "tool": case["tool"],
        "size": case["size"],
        "period": case["period"],
        "median_ms": round(statistics.median(s["client"]), 2),
        "p99_ms": round(percentile(s["client"], 99), 2),
        "server_ms": round(statistics.median(s["server"]), 2),
        "store_ms": round(statistics.median(s["store"]), 2),
        "queries": max(s["queries"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None)
    parser.add_argument("--calls", type=int, default=9)
    parser.add_argument("--tools", default="")
    parser.add_argument("--sizes", default="large,median,small")
    parser.add_argument("--setting", action="append", default=[])
    ns = parser.parse_args()
    configure_logging("WARNING")
    settings = Settings()
    store = open_store(ns.store or settings.store, database=settings.database)
    merchants = pick(store)
    end: date = store.query(_LAST_DAY)[0][0]
    tools, sizes = set(filter(None, ns.tools.split(","))), set(ns.sizes.split(","))
    cases = [
        c
        for c in build_cases(merchants, end)
        if c["kind"] == "merchant" and c["size"] in sizes and (not tools or c["tool"] in tools)
    ]
    spent = time_queries(store, dict(pair.split("=", 1) for pair in ns.setting))
    server = build_server(
        settings, store, principal_resolver=fixed_principal(Principal.parse("admin"))
    )
    rows = anyio.run(measure, server, cases, ns.calls, spent)
    store.close()

    head = "| tool | size | period | median ms | p99 ms | in server | store ms | queries |"
    lines = [f"Merchant tools, in-memory MCP client, NullCache, {ns.calls} rounds", ""]
    lines += [head, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [
        f"| {r['tool']} | {r['size']} | {r['period']} | {r['median_ms']} | {r['p99_ms']} "
        f"| {r['server_ms']} | {r['store_ms']} | {r['queries']} |"
        for r in rows
    ]
    pooled = [r["median_ms"] for r in rows]
    lines += ["", f"median of case medians: {statistics.median(pooled):.1f} ms"]
    print("\n".join(lines))
    OUT.mkdir(exist_ok=True)
    report = {"at": datetime.now(UTC).isoformat(), "results": rows}
    (OUT / "tool_latency.json").write_text(json.dumps(report, indent=2))
    (OUT / "tool_latency.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
