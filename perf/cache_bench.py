"""Cache benchmark: hit ratio under a realistic mix with a change stream, and L1 latency.

    python -m perf.cache_bench                  # L1 + L2 (starts infra/redis/up)
    python -m perf.cache_bench --no-redis       # L1 only, as the embedded default

Replays tool calls through the in-memory MCP client of the real server, over a
synthetic store (seeded once under .data/cache_bench/): merchants and tools
drawn from Zipf distributions, arguments from a few common periods, by several
concurrent clients, while a change stream publishes ~20 change notices per
second on the server's ChangeBus (as the CDC sink would, each touching one
Zipf-drawn merchant and the platform; the store's rows do not change, only the
cache is told they did). Then measures, with no change stream, the median
latency of an L1 hit next to an uncached call of the same question. Figures
are printed and written to perf/out/cache_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer

from optima_bi_mcp.cache.tiered import TieredCache, create_cache
from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from optima_bi_mcp.data.seed import seed_store, store_is_empty
from optima_bi_mcp.data.synth import SeedSpec
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.logs import configure_logging
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
STORE_DIR = ROOT / ".data" / "cache_bench"
OUT_DIR = ROOT / "perf" / "out"

# Popularity order of the tools an assistant calls (Zipf over this order).
TOOLS = (
    "get_sales",
    "top_products",
    "customer_summary",
    "inventory_status",
    "platform_overview",
    "churned_customers",
    "platform_merchants",
    "platform_revenue",
    "platform_mrr",
)
PERIODS = ((7, 0.6), (30, 0.3), (90, 0.1))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m perf.cache_bench", description=__doc__)
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the replay")
    parser.add_argument("--rate", type=float, default=50.0, help="tool calls per second")
    parser.add_argument("--clients", type=int, default=8, help="MCP client sessions")
    parser.add_argument("--in-flight", type=int, default=8, help="most calls at once")
    parser.add_argument(
        "--changes",
        default="20,0",
        help="row changes per second, one replay per comma-separated rate",
    )
    parser.add_argument("--batch-ms", type=float, default=200.0, help="sink batch (one notice)")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-redis", action="store_true", help="L1 only")
    return parser.parse_args(argv)


def zipf_weights(n: int, s: float) -> list[float]:
    return [1 / (rank**s) for rank in range(1, n + 1)]


@dataclass
class Mix:
    """Draws (tool, arguments) like a population of assistants asking an admin server."""

    merchants: list[str]
    zipf: float
    rng: random.Random
    _merchant_w: list[float] = field(init=False)
    _tool_w: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.rng.shuffle(self.merchants)
        self._merchant_w = zipf_weights(len(self.merchants), self.zipf)
        self._tool_w = zipf_weights(len(TOOLS), self.zipf)

    def merchant(self) -> str:
        return self.rng.choices(self.merchants, self._merchant_w)[0]

    def request(self) -> tuple[str, dict[str, Any]]:
        tool = self.rng.choices(TOOLS, self._tool_w)[0]
        days = self.rng.choices([d for d, _ in PERIODS], [w for _, w in PERIODS])[0]
        if tool.startswith("platform_"):
            return tool, {"days": days} if tool == "platform_revenue" else {}
        args: dict[str, Any] = {"merchant_id": self.merchant()}
        if tool in {"get_sales", "top_products", "customer_summary"}:
            args["days"] = days
        return tool, args


def open_seeded(merchants: int, orders: int) -> Store:
    """The benchmark's store, seeded on first use."""
    STORE_DIR.mkdir(parents=True, exist_ok=True)
    store = open_store(f"chdb://{STORE_DIR / f'store_{merchants}_{orders}'}")
    if store_is_empty(store):
        print(f"seeding {merchants} merchants, {orders} orders …", flush=True)
        seed_store(store, SeedSpec(seed=42, merchants=merchants, orders=orders))
    return store


def redis_up() -> str:
    out = subprocess.run(
        [str(ROOT / "infra" / "redis" / "up")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def make_server(store: Store, cache: Any, bus: ChangeBus) -> MCPServer:
    resolver = fixed_principal(Principal.parse("admin"))
    return build_server(Settings(), store, principal_resolver=resolver, cache=cache, bus=bus)


async def change_stream(
    bus: ChangeBus, mix: Mix, rate: float, batch_s: float, stop: asyncio.Event
) -> int:
    """`rate` row changes per second until `stop`, published as the sink does: one notice
    per batch of `batch_s`, naming the merchants the batch touched (and the platform).
    Returns how many row changes were published."""
    changes, started, batches = 0, time.perf_counter(), 0
    while not stop.is_set() and rate > 0:
        batches += 1
        due = started + batches * batch_s
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        count = int(batches * batch_s * rate) - changes  # paced against the start
        if count <= 0:
            continue
        touched = frozenset(uuid.UUID(mix.merchant()) for _ in range(count))
        bus.publish(ChangeNotice(touched, platform=True, freshness=datetime.now(UTC)))
        changes += count
    return changes


async def ask(
    client: Client, tool: str, args: dict[str, Any], seen: dict[str, list[float]], errors: list[str]
) -> None:
    """One replayed call; records the server's own duration under the layer that answered."""
    result = await client.call_tool(tool, args)
    if result.is_error:
        errors.append(f"{tool}: {result.content[0].text[:120]}")  # type: ignore[union-attr]
        return
    meta = result.meta or {}
    seen.setdefault(str(meta.get("cache")), []).append(float(meta.get("duration_ms", 0.0)))


async def replay(
    args: argparse.Namespace,
    rate: float,
    store: Store,
    mix: Mix,
    cache: TieredCache,
    bus: ChangeBus,
) -> dict[str, Any]:
    """Open-loop arrivals at `--rate` (Poisson) over `--clients` sessions, with changes."""
    server = make_server(store, cache, bus)
    seen: dict[str, list[float]] = {}
    errors: list[str] = []
    ideal: list[tuple[Any, ...]] = []
    stop, slots = asyncio.Event(), asyncio.Semaphore(args.in_flight)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(server)) for _ in range(args.clients)]
        changes = asyncio.create_task(change_stream(bus, mix, rate, args.batch_ms / 1000, stop))
        started = time.perf_counter()
        pending: set[asyncio.Task[None]] = set()
        due, sent = started, 0
        while time.perf_counter() < started + args.seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await slots.acquire()  # saturated: arrivals wait, the achieved rate drops
            due = max(due, time.perf_counter())
            tool, arguments = mix.request()
            ideal.append(identity(cache, tool, arguments))
            task = asyncio.create_task(
                ask(clients[sent % len(clients)], tool, arguments, seen, errors)
            )
            task.add_done_callback(lambda t: (slots.release(), pending.discard(t)))
            pending.add(task)
            sent += 1
            due += mix.rng.expovariate(args.rate)
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - started
        stop.set()
        notices = await changes

    calls = sum(len(v) for v in seen.values())
    hits = len(seen.get("L1", [])) + len(seen.get("L2", []))
    return {
        "calls": calls,
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": round(elapsed, 1),
        "calls_per_s": round(calls / elapsed, 1),
        "changes": notices,
        "changes_per_s": round(notices / elapsed, 1),
        "layers": {k: len(v) for k, v in sorted(seen.items())},
        "server_ms_median": {k: round(statistics.median(v), 2) for k, v in sorted(seen.items())},
        "hit_ratio": round(hits / calls, 4) if calls else None,
        "ideal_hit_ratio": round(1 - len(set(ideal)) / len(ideal), 4) if ideal else None,
        "cache_stats": cache.stats(),
    }


def simulated_ideal(
    merchants: list[str],
    args: argparse.Namespace,
    request_rate: float,
    change_rate: float,
    uniform_changes: bool = False,
) -> float:
    """The ideal hit ratio of the same mix at any request rate, in virtual time.

    Replays `--seconds` (at least 60) of Poisson requests and sink batches of
    changes against the invalidation rule of the cache (leading bump, then at
    most one trailing bump per interval and scope); counts the requests that
    repeat an earlier request's key at the same data version. Changes touch
    merchants with the requests' Zipf weights, or uniformly.
    """
    mix = Mix(list(merchants), args.zipf, random.Random(args.seed))
    interval, batch_s, horizon = 0.5, args.batch_ms / 1000, max(args.seconds, 60.0)
    versions: dict[str, list[Any]] = {}  # scope -> [version, window_end, pending]

    def advance(scope: str, now: float) -> list[Any]:
        state = versions.setdefault(scope, [0, -1.0, False])
        while state[2] and state[1] <= now:
            state[0], state[1], state[2] = state[0] + 1, state[1] + interval, False
        return state

    def change(scope: str, now: float) -> None:
        state = advance(scope, now)
        if now >= state[1]:
            state[0], state[1] = state[0] + 1, now + interval
        else:
            state[2] = True

    seen: set[tuple[Any, ...]] = set()
    hits = requests = 0
    now, next_batch, changes = 0.0, batch_s, 0
    while now < horizon:
        now += mix.rng.expovariate(request_rate)
        while next_batch <= now:
            count = int(next_batch * change_rate) - changes
            changes += max(count, 0)
            drawn = (
                mix.rng.choice(merchants) if uniform_changes else mix.merchant()
                for _ in range(count)
            )
            for merchant in set(drawn):
                change(f"merchant:{merchant}", next_batch)
            if count > 0:
                change("platform", next_batch)
            next_batch += batch_s
        tool, arguments = mix.request()
        scope = f"merchant:{arguments['merchant_id']}" if "merchant_id" in arguments else "platform"
        key = (tool, json.dumps(arguments, sort_keys=True), advance(scope, now)[0])
        hits, requests = hits + (key in seen), requests + 1
        seen.add(key)
    return round(hits / requests, 4)


def identity(cache: TieredCache, tool: str, args: dict[str, Any]) -> tuple[Any, ...]:
    """What an ideal cache (unbounded, no TTL) keys a request on, data version included."""
    scope = f"merchant:{args['merchant_id']}" if "merchant_id" in args else "platform"
    return tool, json.dumps(args, sort_keys=True), cache.version(scope)


async def timed_calls(
    server: MCPServer, tool: str, args: dict[str, Any], n: int
) -> tuple[list[float], list[float], dict[str, int]]:
    """Round trips through the client, and the server's own durations, of n calls."""
    round_trips: list[float] = []
    in_server: list[float] = []
    layers: dict[str, int] = {}
    async with Client(server) as client:
        for _ in range(n):
            started = time.perf_counter()
            result = await client.call_tool(tool, args)
            round_trips.append((time.perf_counter() - started) * 1000)
            meta = result.meta or {}
            in_server.append(float(meta.get("duration_ms", 0.0)))
            layers[str(meta.get("cache"))] = layers.get(str(meta.get("cache")), 0) + 1
    return round_trips, in_server, layers


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "p95": round(statistics.quantiles(values, n=20)[-1], 3),
    }


async def latency(store: Store, mix: Mix, cache: TieredCache) -> dict[str, Any]:
    """Median of an L1 hit and of an uncached call of one question, through MCP."""
    bus = ChangeBus()
    bus.publish(ChangeNotice(freshness=datetime.now(UTC)))
    tool, args = "get_sales", {"merchant_id": mix.merchants[0], "days": 7}
    cached = make_server(store, cache, bus)
    await timed_calls(cached, tool, args, 1)
    hit_rt, hit_server, hit_layers = await timed_calls(cached, tool, args, 500)
    cold_rt, cold_server, _ = await timed_calls(make_server(store, None, bus), tool, args, 50)

    async def never() -> dict[str, Any]:
        raise AssertionError("an L1 hit must not compute")

    normalized = {"k": 1}
    await cache.get_or_compute("bench", normalized, "admin", ("platform",), mix_result)
    direct: list[float] = []
    for _ in range(2000):
        started = time.perf_counter()
        await cache.get_or_compute("bench", normalized, "admin", ("platform",), never)
        direct.append((time.perf_counter() - started) * 1000)
    return {
        "question": {"tool": tool, "arguments": args},
        "l1_hit_layers": hit_layers,
        "l1_hit_round_trip_ms": summary(hit_rt),
        "l1_hit_in_server_ms": summary(hit_server),
        "uncached_round_trip_ms": summary(cold_rt),
        "uncached_in_server_ms": summary(cold_server),
        "get_or_compute_l1_hit_us": {k: round(v * 1000, 1) for k, v in summary(direct).items()},
    }


async def mix_result() -> dict[str, Any]:
    return {"revenue": 1.0, "series": [{"bucket_start": "2026-01-01", "revenue": 1.0}] * 30}


def write_report(figures: dict[str, Any]) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "cache_bench.json").write_text(json.dumps(figures, indent=2, default=str))
    lat, p = figures["latency"], figures["parameters"]
    layers = ", ".join(figures["replays"][0]["cache_stats"]["layers"])
    lines = [
        "# Cache benchmark",
        "",
        f"Run {figures['at']} with `python -m perf.cache_bench {' '.join(figures['argv'])}`.",
        f"Store: {p['merchants']} merchants, {p['orders']} orders (embedded chDB); "
        f"layers: {layers}; tool calls offered at {p['rate']}/s (Poisson) by "
        f"{p['clients']} MCP clients, at most {p['in_flight']} at once; Zipf exponent "
        f"{p['zipf']} over merchants and tools; one change notice per {p['batch_ms']:.0f} ms.",
        "",
        "| row changes/s | calls (calls/s) | hit ratio | ideal hit ratio | layers | "
        "server ms median per layer | errors |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['changes_per_s']} | {r['calls']} ({r['calls_per_s']}) | {r['hit_ratio']:.1%} "
        f"| {r['ideal_hit_ratio']:.1%} | {r['layers']} | {r['server_ms_median']} "
        f"| {r['errors']} |"
        for r in figures["replays"]
    ]
    lines += [
        "",
        "Hit ratio: answers from L1 or L2 over all calls (target > 70 %). Ideal: the share",
        "of calls that repeat an earlier call's key at the same data version, i.e. what an",
        "unbounded cache with no TTL could at best serve under the same stream.",
        "",
        "Ideal hit ratio of the same mix at other request rates (virtual time, no server):",
        "",
        "| requests/s | 20 changes/s, Zipf merchants | 20 changes/s, uniform | no changes |",
        "| --- | --- | --- | --- |",
        *(
            f"| {rate} | {ratios['zipf']:.1%} | {ratios['uniform']:.1%} | {ratios['none']:.1%} |"
            for rate, ratios in figures["simulated_ideal_hit_ratio"].items()
        ),
        "",
        f"Latency of one question ({lat['question']['tool']}, 7 days), 500 L1 hits and 50",
        "uncached calls, no change stream:",
        "",
        "| | median ms | p95 ms |",
        "| --- | --- | --- |",
    ]
    for label, key in (
        ("L1 hit, in the server (`_meta.duration_ms`)", "l1_hit_in_server_ms"),
        ("L1 hit, MCP client round trip", "l1_hit_round_trip_ms"),
        ("uncached, in the server", "uncached_in_server_ms"),
        ("uncached, MCP client round trip", "uncached_round_trip_ms"),
    ):
        lines.append(f"| {label} | {lat[key]['median']} | {lat[key]['p95']} |")
    direct = lat["get_or_compute_l1_hit_us"]
    lines += [
        f"| L1 hit in `get_or_compute` alone | {direct['median'] / 1000:.3f} "
        f"| {direct['p95'] / 1000:.3f} |",
        "",
        f"Machine: {figures['cpus']} CPUs, load average {figures['load_before']} before and "
        f"{figures['load_after']} after (other work was running).",
        "The client round trip includes the MCP SDK client's validation of each result",
        "against the tool's output schema (jsonschema), which dominates it for a series.",
        "",
    ]
    path = OUT_DIR / "cache_bench.md"
    path.write_text("\n".join(lines))
    return path


async def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    store = open_seeded(args.merchants, args.orders)
    load_before = [round(x, 1) for x in os.getloadavg()]
    merchants = [str(row[0]) for row in store.query("SELECT id FROM merchants ORDER BY id")]
    redis_url = None if args.no_redis else redis_up()
    replays = []
    try:
        for rate in [float(r) for r in args.changes.split(",")]:
            # The same requests for every rate: only the change stream differs.
            mix = Mix(list(merchants), args.zipf, random.Random(args.seed))
            cache, bus = await fresh_cache(redis_url)
            try:
                replays.append(
                    {"change_rate": rate, **await replay(args, rate, store, mix, cache, bus)}
                )
            finally:
                await cache.aclose()
        cache, _ = await fresh_cache(redis_url)
        try:
            measured = await latency(store, mix, cache)
            simulated = {
                f"{r:g}/s": {
                    "zipf": simulated_ideal(merchants, args, r, 20.0),
                    "uniform": simulated_ideal(merchants, args, r, 20.0, uniform_changes=True),
                    "none": simulated_ideal(merchants, args, r, 0.0),
                }
                for r in (5.0, 50.0, 200.0, 1000.0)
            }
        finally:
            await cache.aclose()
    finally:
        store.close()
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": [round(x, 1) for x in os.getloadavg()],
        "argv": argv,
        "parameters": vars(args),
        "replays": replays,
        "latency": measured,
        "simulated_ideal_hit_ratio": simulated,
    }


async def fresh_cache(redis_url: str | None) -> tuple[TieredCache, ChangeBus]:
    """A cache of its own Redis namespace, following a bus of its own."""
    bus = ChangeBus()
    namespace = f"optima-bi-bench:{uuid.uuid4().hex[:8]}"
    return await create_cache(Settings(redis_url=redis_url), bus, namespace=namespace), bus


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    configure_logging(level="WARNING")
    figures = asyncio.run(run(args, argv))
    path = write_report(figures)
    print(path.read_text())
    print(f"written: {path.relative_to(ROOT)} and cache_bench.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
