"""Median and p99 latency of every tool through the in-memory MCP client.

    .venv/bin/python perf/tool_latency.py [--store DSN] [--calls 30]

Runs each tool `--calls` times (after one warm-up call) as an administrator
naming the busiest merchant, with the NullCache, so every call reaches the
store. Prints a table and writes `perf/out/tool_latency.{json,md}`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.logs import configure_logging
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import open_store

OUT = Path(__file__).resolve().parent / "out"
BUSIEST = (
    "SELECT merchant_id FROM merchant_daily FINAL WHERE day >= today() - 30"
    " GROUP BY merchant_id ORDER BY sum(gmv) DESC, toString(merchant_id) LIMIT 1"
)


def cases(merchant_id: str) -> list[tuple[str, dict[str, Any]]]:
    m = {"merchant_id": merchant_id}
    return [
        ("get_sales", {**m, "days": 7}),
        ("get_sales", {**m, "days": 90, "bucket": "day"}),
        ("top_products", {**m, "days": 30}),
        ("customer_summary", {**m, "days": 30}),
        ("churned_customers", m),
        ("inventory_status", m),
        ("platform_overview", {}),
        ("platform_merchants", {}),
        ("platform_mrr", {}),
        ("platform_revenue", {"days": 30, "breakdown": True}),
        ("whoami", {}),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def measure(server: Any, merchant_id: str, calls: int) -> list[dict[str, Any]]:
    rows = []
    async with Client(server) as client:
        for tool, arguments in cases(merchant_id):
            await client.call_tool(tool, arguments)
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                result = await client.call_tool(tool, arguments)
                samples.append((time.perf_counter() - started) * 1000)
                if result.is_error:
                    raise SystemExit(f"{tool} failed: {result.structured_content}")
            label = tool if tool != "get_sales" else f"get_sales days={arguments['days']}"
            rows.append(
                {
                    "tool": label,
                    "calls": calls,
                    "median_ms": round(statistics.median(samples), 2),
                    "p99_ms": round(percentile(samples, 0.99), 2),
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None)
    parser.add_argument("--calls", type=int, default=30)
    ns = parser.parse_args()
    configure_logging("WARNING")
    settings = Settings()
    store = open_store(ns.store or settings.store, database=settings.database)
    merchant_id = str(store.query(BUSIEST)[0][0])
    orders = store.query("SELECT count() FROM orders FINAL")[0][0]
    server = build_server(
        settings, store, principal_resolver=fixed_principal(Principal.parse("admin"))
    )
    rows = anyio.run(measure, server, merchant_id, ns.calls)
    store.close()

    report = {"at": datetime.now(UTC).isoformat(), "orders": orders, "results": rows}
    lines = [f"Tool latency, in-memory MCP client, NullCache, {orders} orders", ""]
    lines += ["| tool | calls | median ms | p99 ms |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['tool']} | {r['calls']} | {r['median_ms']} | {r['p99_ms']} |" for r in rows]
    print("\n".join(lines))
    OUT.mkdir(exist_ok=True)
    (OUT / "tool_latency.json").write_text(json.dumps(report, indent=2))
    (OUT / "tool_latency.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
