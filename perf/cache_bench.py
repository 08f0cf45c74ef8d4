"""Cache benchmark: hit ratio under a realistic mix with a change stream, and L1 latency.

    python -m perf.cache_bench                  # L1 + L2 (starts infra/redis/up)
    python -m perf.cache_bench --no-redis       # L1 only, as the embedded default
    python -m perf.cache_bench --warmup 60 --seconds 60 --changes 20   # a server running
    python -m perf.cache_bench --changes 20 --coarse   # notices without detail, to compare
    python -m perf.cache_bench --refresh-min-asks 0    # no refresh-ahead, to compare

Replays tool calls through the in-memory MCP client of the real server, over a
synthetic store (seeded once under .data/cache_bench/), by several concurrent
clients, while a change stream publishes change notices on the server's
ChangeBus as the CDC sink would. Then measures, with no change stream, the
median latency of an L1 hit next to an uncached call, of a few common questions
one by one and of questions drawn from the mix, with the server's part and the
SDK client's schema check of each answer apart.
Figures are printed and written to perf/out/cache_bench.{json,md}.

The workload (every figure below is a parameter or a constant of this file):
- Questions arrive as a Poisson stream at `--rate` per second. The tool is
  drawn from a Zipf distribution (`--zipf`) over TOOLS in that order of
  popularity; a merchant tool's merchant from a Zipf distribution over the
  store's merchants (shuffled once, so rank is not id order); the period from
  PERIODS: rolling windows up to now (last 7/30/90 days) and calendar periods
  that have ended (yesterday, last ISO week, last month), as assistants
  phrase them. Month tools ask about the current or the last month.
- A change is one row change of the source, as Debezium delivers it. The
  stream replays `--changes` row changes per second, in sink batches of
  `--batch-ms`, each batch one notice built by the sink's own code
  (`cdc.notify.Touched`) from the rows' before and after images. Which rows
  change follows an order's life (ROW_CHANGES, source transactions per order
  placed): the order is inserted pending (70 %) or paid, in one transaction
  with its ITEMS_PER_ORDER items and a stock decrement per item, so all of
  them reach one sink batch; most pending orders are paid within 30 minutes
  and a few cancelled, paid orders are shipped, delivered and completed over
  the next two weeks, a few are refunded weeks later; besides, customers sign
  up, products are restocked or repriced, transfers are created and paid,
  plans change. The merchant of each transaction is drawn from the same Zipf
  distribution as the questions' (busy shops both sell and ask more). The
  store's rows do not change; only the cache is told they did.
- Hit ratio, as a client sees it: calls whose `_meta.cache` is L1 or L2 (a call
  that joined an identical computation in flight waited for the store: a
  miss). The ideal reference counts the same way: a call is an ideal hit when
  an earlier call of the same question, at the same data versions (this
  cache's own, taken when the call starts), had already been answered, as an
  unbounded cache without TTL holding every answer its callers computed would
  serve it.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from mcp import Client
from mcp.server.mcpserver import MCPServer

from optima_bi_mcp.cache.scopes import data_scopes
from optima_bi_mcp.cache.tiered import TieredCache, create_cache
from optima_bi_mcp.cdc.apply import PLATFORM_TABLES
from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice, Touched
from optima_bi_mcp.data.seed import seed_store, store_is_empty
from optima_bi_mcp.data.synth import SeedSpec
from optima_bi_mcp.data.tables import BY_NAME
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.logs import configure_logging
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store, open_store
from perf.stats import zipf_weights

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
# The periods questions ask about, and how often.
PERIODS = (
    ("last 7 days", 0.35),
    ("last 30 days", 0.20),
    ("last 90 days", 0.10),
    ("yesterday", 0.10),
    ("last week", 0.10),
    ("last month", 0.15),
)
DAYS = {"last 7 days": 7, "last 30 days": 30, "last 90 days": 90}
PERIOD_TOOLS = {"get_sales", "top_products", "customer_summary", "platform_revenue"}
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)

# Changes per order placed, by kind: the life of an order, and what goes on beside it. Each
# is one source transaction of one merchant; all but a placement are one row change.
ROW_CHANGES = (
    ("order placed pending", 0.70),  # the order, its items and a stock decrement per item
    ("order placed paid", 0.30),
    ("pending order paid", 0.65),  # within 30 minutes
    ("pending order cancelled", 0.05),  # within 2 hours
    ("order fulfilled", 2.85),  # paid → shipped → delivered → completed, 1-14 days on
    ("order refunded", 0.03),  # 3-60 days on
    ("customer signed up", 0.30),
    ("product restocked", 0.10),
    ("product repriced", 0.05),
    ("transfer created", 0.01),
    ("transfer paid", 0.01),  # 1-7 days on
    ("plan changed", 0.004),
)
FULFILMENT = {"paid": "shipped", "shipped": "delivered", "delivered": "completed"}
# Items of an order placed (each with its products row's stock decrement).
ITEMS_PER_ORDER = 2


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m perf.cache_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the replay")
    parser.add_argument(
        "--warmup", type=float, default=0.0, help="seconds replayed before counting (cache fills)"
    )
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
    parser.add_argument(
        "--latency-calls", type=int, default=500, help="L1 hits timed per latency question"
    )
    parser.add_argument(
        "--refresh-min-asks",
        type=int,
        default=Settings().refresh_min_asks,
        help="refresh-ahead: recompute answers asked this often after a change (0: off)",
    )
    parser.add_argument(
        "--coarse",
        action="store_true",
        help="notices without detail (every scope of the merchants and the platform), as before",
    )
    return parser.parse_args(argv)


@dataclass
class Mix:
    """Draws questions, and row changes, like a population of shops and their assistants."""

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

    def request(self, now: datetime) -> tuple[str, dict[str, Any]]:
        tool = self.rng.choices(TOOLS, self._tool_w)[0]
        kind = self.rng.choices([k for k, _ in PERIODS], [w for _, w in PERIODS])[0]
        args = period_arguments(tool, kind, now.date())
        if not tool.startswith("platform_"):
            args["merchant_id"] = self.merchant()
        return tool, args

    def notice(self, rows: int, now: datetime) -> tuple[ChangeNotice, int]:
        """A sink batch of at least `rows` row changes at `now`, as the sink would announce it,
        and its row count (transactions are whole, so a batch may hold a few more)."""
        touched, merchants, platform, count = Touched(), set(), False, 0
        while count < rows:
            kind = self.rng.choices([k for k, _ in ROW_CHANGES], [w for _, w in ROW_CHANGES])[0]
            merchant = uuid.UUID(self.merchant())
            for table, op, before, after in transaction(kind, merchant, now, self.rng):
                column = BY_NAME[table].merchant_column or "id"
                touched.add(table, column, op, before, after)
                platform = platform or table in PLATFORM_TABLES
                count += 1
            merchants.add(merchant)
        return ChangeNotice(frozenset(merchants), platform, now, touched.earliest), count


def period_arguments(tool: str, kind: str, today: date) -> dict[str, Any]:
    """A tool's arguments for a period kind of PERIODS, asked on `today` (UTC)."""
    last_month_end = today.replace(day=1) - DAY
    if tool in {"platform_overview", "platform_mrr"}:
        return {"month": last_month_end.strftime("%Y-%m")} if kind == "last month" else {}
    if tool == "churned_customers":
        return {"as_of": last_month_end.isoformat()} if kind == "last month" else {}
    if tool not in PERIOD_TOOLS:
        return {}
    if kind in DAYS:
        return {"days": DAYS[kind]}
    if kind == "yesterday":
        start = end = today - DAY
    elif kind == "last week":
        end = today - timedelta(days=today.weekday() + 1)
        start = end - timedelta(days=6)
    else:
        start, end = last_month_end.replace(day=1), last_month_end
    return {"start": start.isoformat(), "end": end.isoformat()}


RowChange = tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]


def transaction(
    kind: str, merchant: uuid.UUID, now: datetime, rng: random.Random
) -> list[RowChange]:
    """The row changes (table, op, before, after) of one source transaction of `kind`.

    Placing an order writes the order, its items and each item's stock decrement
    together, as a shop does, so they reach the sink (and its notice) together.
    """
    if not kind.startswith("order placed"):
        return [row_change(kind, merchant, now, rng)]
    placed = order(merchant, now, kind.rsplit(" ", 1)[1])
    changes: list[RowChange] = [("orders", "c", None, placed)]
    for _ in range(ITEMS_PER_ORDER):
        item = row("order_items", merchant, now, order_id=placed["id"], quantity=1)
        changes.append(("order_items", "c", None, item))
        stock = row("products", merchant, now - 90 * DAY, stock_quantity=40, price=Decimal("9.9"))
        changes.append(("products", "u", stock, {**stock, "stock_quantity": 39}))
    return changes


def row_change(kind: str, merchant: uuid.UUID, now: datetime, rng: random.Random) -> RowChange:
    """(table, op, before, after) of one row change of `kind` at `now`."""
    if kind.startswith("pending order"):
        old = order(merchant, now - rng.uniform(0, 30) * MINUTE, "pending")
        return "orders", "u", old, {**old, "status": kind.rsplit(" ", 1)[1]}
    if kind == "order fulfilled":
        old = order(merchant, now - rng.uniform(1, 14) * DAY, rng.choice(list(FULFILMENT)))
        return "orders", "u", old, {**old, "status": FULFILMENT[old["status"]]}
    if kind == "order refunded":
        old = order(merchant, now - rng.uniform(3, 60) * DAY, "completed")
        return "orders", "u", old, {**old, "status": "refunded"}
    if kind == "customer signed up":
        return "customers", "c", None, row("customers", merchant, now)
    if kind.startswith(("stock", "product")):
        old = row("products", merchant, now - 90 * DAY, stock_quantity=40, price=Decimal("9.90"))
        column, value = {
            "product restocked": ("stock_quantity", 140),
            "product repriced": ("price", Decimal("10.90")),
        }[kind]
        return "products", "u", old, {**old, column: value}
    if kind == "transfer created":
        return "transfers", "c", None, row("transfers", merchant, now, status="pending")
    if kind == "transfer paid":
        old = row("transfers", merchant, now - rng.uniform(1, 7) * DAY, status="pending")
        return "transfers", "u", old, {**old, "status": "paid"}
    old = row("subscriptions", merchant, now - 200 * DAY, plan="pro", canceled_at=None)
    return "subscriptions", "u", old, {**old, "canceled_at": now}


def order(merchant: uuid.UUID, created: datetime, status: str) -> dict[str, Any]:
    return row(
        "orders",
        merchant,
        created,
        status=status,
        customer_email="someone@example.com",
        amount_total=Decimal("42.00"),
        platform_fee=Decimal("1.26"),
    )


def row(table: str, merchant: uuid.UUID, created: datetime, **values: Any) -> dict[str, Any]:
    """A full row image of `table` (columns no rule reads are None)."""
    image: dict[str, Any] = dict.fromkeys(BY_NAME[table].columns)
    image.update(id=uuid.uuid4(), created_at=created, updated_at=created, **values)
    image[BY_NAME[table].merchant_column or "id"] = merchant
    return image


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
    bus: ChangeBus, mix: Mix, rate: float, batch_s: float, stop: asyncio.Event, coarse: bool
) -> int:
    """`rate` row changes per second until `stop`, published as the sink does: one notice
    per batch of `batch_s` (see the module doc). Returns how many row changes were published."""
    changes, started, batches = 0, time.perf_counter(), 0
    while not stop.is_set() and rate > 0:
        batches += 1
        due = started + batches * batch_s
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        count = int(batches * batch_s * rate) - changes  # paced against the start
        if count <= 0:
            continue
        notice, rows = mix.notice(count, datetime.now(UTC))
        if coarse:
            notice = ChangeNotice(notice.merchant_ids, True, notice.freshness)
        bus.publish(notice)
        changes += rows
    return changes


async def ask(
    client: Client,
    tool: str,
    args: dict[str, Any],
    seen: dict[str, list[float]],
    errors: list[str],
    answered: Callable[[], None],
) -> None:
    """One replayed call; records the server's own duration under the layer that answered,
    and calls `answered` once the answer exists (for the ideal reference)."""
    result = await client.call_tool(tool, args)
    if result.is_error:
        errors.append(f"{tool}: {result.content[0].text[:120]}")  # type: ignore[union-attr]
        return
    answered()
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
    """Open-loop arrivals at `--rate` (Poisson) over `--clients` sessions, with changes.

    Calls made during the first `--warmup` seconds fill the cache but are not counted,
    so that the figures are those of a server that has been running, not of a cold start.
    """
    server = make_server(store, cache, bus)
    seen: dict[str, list[float]] = {}
    warm: dict[str, list[float]] = {}
    errors: list[str] = []
    keys: set[tuple[Any, ...]] = set()
    repeats = 0
    stop, slots = asyncio.Event(), asyncio.Semaphore(args.in_flight)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(server)) for _ in range(args.clients)]
        changes = asyncio.create_task(
            change_stream(bus, mix, rate, args.batch_ms / 1000, stop, args.coarse)
        )
        measured_from = time.perf_counter() + args.warmup
        pending: set[asyncio.Task[None]] = set()
        due, sent = time.perf_counter(), 0
        while time.perf_counter() < measured_from + args.seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await slots.acquire()  # saturated: arrivals wait, the achieved rate drops
            due = max(due, time.perf_counter())
            measuring = due >= measured_from
            now = datetime.now(UTC)
            tool, arguments = mix.request(now)
            key = identity(tool, arguments, now, lambda s: cache.version(s)[1])
            repeats += measuring and key in keys
            task = asyncio.create_task(
                ask(
                    clients[sent % len(clients)],
                    tool,
                    arguments,
                    seen if measuring else warm,
                    errors,
                    partial(keys.add, key),
                )
            )
            task.add_done_callback(lambda t: (slots.release(), pending.discard(t)))
            pending.add(task)
            sent += 1
            due += mix.rng.expovariate(args.rate)
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - measured_from
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
        "changes_per_s": round(notices / (elapsed + args.warmup), 1),
        "layers": {k: len(v) for k, v in sorted(seen.items())},
        "server_ms_median": {k: round(statistics.median(v), 2) for k, v in sorted(seen.items())},
        "hit_ratio": round(hits / calls, 4) if calls else None,
        "ideal_hit_ratio": round(repeats / calls, 4) if calls else None,
        "store_computations_per_s": round(
            (cache.stats()["computed"] + cache.stats()["refreshed"]) / (elapsed + args.warmup), 1
        ),
        "refreshes_per_s": round(cache.stats()["refreshed"] / (elapsed + args.warmup), 1),
        "cache_stats": cache.stats(),
    }


def identity(
    tool: str, args: dict[str, Any], now: datetime, version: Callable[[str], int]
) -> tuple[Any, ...]:
    """What an ideal cache (unbounded, no TTL) keys a request on: the question and the
    versions of the data scopes the server would key it on."""
    merchant = uuid.UUID(args["merchant_id"]) if "merchant_id" in args else None
    scopes = data_scopes(tool, args, merchant, now)
    return tool, json.dumps(args, sort_keys=True), tuple(version(s) for s in scopes)


def simulated_ideal(
    merchants: list[str],
    args: argparse.Namespace,
    request_rate: float,
    change_rate: float,
    coarse: bool = False,
) -> float:
    """The ideal hit ratio of the same mix at any request rate, in virtual time.

    Replays `--warmup` then `--seconds` (at least 60; only these are counted)
    of Poisson requests and sink batches of changes, each change retiring the
    answers of its scopes at once, as the cache does (answers are never older
    than a change; the coalescing interval only spaces the shared versions in
    Redis); counts the requests that repeat an earlier request's key at the
    same data versions, answers being instant.
    `coarse` announces every change as the sink did before notices said what
    changed (every scope of the merchant and of the platform).
    """
    mix = Mix(list(merchants), args.zipf, random.Random(args.seed))
    batch_s, counted_from = args.batch_ms / 1000, args.warmup
    horizon = counted_from + max(args.seconds, 60.0)
    origin = datetime.now(UTC)
    versions: dict[str, int] = {}

    seen: set[tuple[Any, ...]] = set()
    hits = requests = 0
    now, next_batch, changes = 0.0, batch_s, 0
    while now < horizon:
        now += mix.rng.expovariate(request_rate)
        while next_batch <= now:
            count = int(next_batch * change_rate) - changes
            if count > 0:
                at = origin + timedelta(seconds=next_batch)
                notice, rows = mix.notice(count, at)
                changes += rows
                if coarse:
                    notice = ChangeNotice(notice.merchant_ids, platform=True)
                for scope in notice.scopes(at):
                    versions[scope] = versions.get(scope, 0) + 1
            next_batch += batch_s
        at = origin + timedelta(seconds=now)
        tool, arguments = mix.request(at)
        key = identity(tool, arguments, at, lambda s: versions.get(s, 0))
        if now >= counted_from:
            hits, requests = hits + (key in seen), requests + 1
        seen.add(key)
    return round(hits / requests, 4)


async def timed_calls(
    client: Client, questions: list[tuple[str, dict[str, Any]]]
) -> tuple[list[float], list[float], dict[str, int]]:
    """Round trips through the client, and the server's own durations, of each question."""
    round_trips: list[float] = []
    in_server: list[float] = []
    layers: dict[str, int] = {}
    for tool, args in questions:
        started = time.perf_counter()
        result = await client.call_tool(tool, args)
        round_trips.append((time.perf_counter() - started) * 1000)
        meta = result.meta or {}
        in_server.append(float(meta.get("duration_ms", 0.0)))
        layers[str(meta.get("cache"))] = layers.get(str(meta.get("cache")), 0) + 1
    return round_trips, in_server, layers


async def validation_ms(client: Client, questions: list[tuple[str, dict[str, Any]]]) -> list[float]:
    """What the SDK client's check of each answer against its tool's output schema costs,
    timed apart: the validator it compiles (`jsonschema`, the schema's draft), run on the
    same structured content, the first error picked as the client does."""
    schemas = {t.name: t.output_schema for t in (await client.list_tools()).tools}
    validators = {name: validator_for(s)(s) for name, s in schemas.items() if s}
    spent = []
    for tool, args in questions:
        content = (await client.call_tool(tool, args)).structured_content
        started = time.perf_counter()
        best_match(validators[tool].iter_errors(content))
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "p95": round(statistics.quantiles(values, n=20)[-1], 3),
    }


def latency_questions(mix: Mix) -> list[tuple[str, str, dict[str, Any]]]:
    """The questions whose latency is shown one by one: the busiest shop's most asked."""
    shop = {"merchant_id": mix.merchants[0]}
    return [
        ("get_sales, last 7 days", "get_sales", {**shop, "days": 7}),
        ("get_sales, last 30 days", "get_sales", {**shop, "days": 30}),
        ("top_products, last 30 days", "top_products", {**shop, "days": 30}),
        ("customer_summary, last 7 days", "customer_summary", {**shop, "days": 7}),
        ("inventory_status", "inventory_status", dict(shop)),
        ("platform_overview", "platform_overview", {}),
    ]


async def latency(store: Store, mix: Mix, cache: TieredCache, hits: int) -> dict[str, Any]:
    """Medians of L1 hits and uncached calls through the in-memory MCP client, with no
    change stream: of each question of `latency_questions`, and of `hits` questions drawn
    from the mix (each asked once before, so that it is in L1)."""
    bus = ChangeBus()
    bus.publish(ChangeNotice(freshness=datetime.now(UTC)))
    cached, uncached = make_server(store, cache, bus), make_server(store, None, bus)
    rows = []
    async with Client(cached) as warm, Client(uncached) as cold:
        for label, tool, args in latency_questions(mix):
            await timed_calls(warm, [(tool, args)])
            hit_rt, hit_server, layers = await timed_calls(warm, [(tool, args)] * hits)
            cold_rt, cold_server, _ = await timed_calls(cold, [(tool, args)] * max(hits // 10, 5))
            checks = await validation_ms(warm, [(tool, args)] * max(hits // 5, 20))
            rows.append(
                {
                    "question": label,
                    "l1_hit_layers": layers,
                    "l1_hit_round_trip_ms": summary(hit_rt),
                    "l1_hit_in_server_ms": summary(hit_server),
                    "client_validation_ms": summary(checks),
                    "uncached_round_trip_ms": summary(cold_rt),
                    "uncached_in_server_ms": summary(cold_server),
                }
            )
        drawn = [mix.request(datetime.now(UTC)) for _ in range(hits)]
        await timed_calls(warm, drawn)
        mix_rt, mix_server, mix_layers = await timed_calls(warm, drawn)
        mix_checks = await validation_ms(warm, drawn)

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
        "questions": rows,
        "mix": {
            "asked": hits,
            "l1_hit_layers": mix_layers,
            "l1_hit_round_trip_ms": summary(mix_rt),
            "l1_hit_in_server_ms": summary(mix_server),
            "client_validation_ms": summary(mix_checks),
        },
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
        f"{p['zipf']} over merchants and tools; one change notice per {p['batch_ms']:.0f} ms; "
        f"{p['seconds']:g} s counted after {p['warmup']:g} s of warm-up; refresh-ahead "
        + (
            f"of answers asked {p['refresh_min_asks']}+ times within the L1 TTL."
            if p.get("refresh_min_asks")
            else "off."
        ),
        "Periods asked (share): " + ", ".join(f"{k} {w:.0%}" for k, w in PERIODS) + ".",
        "Row changes per order placed: " + ", ".join(f"{k} {w:g}" for k, w in ROW_CHANGES) + ".",
        "",
        "| row changes/s | calls (calls/s) | hit ratio | ideal without refresh-ahead | "
        "store computations/s (refreshes) | layers | server ms median per layer | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['changes_per_s']} | {r['calls']} ({r['calls_per_s']}) | {r['hit_ratio']:.1%} "
        f"| {r['ideal_hit_ratio']:.1%} "
        f"| {r['store_computations_per_s']} ({r['refreshes_per_s']}) "
        f"| {r['layers']} | {r['server_ms_median']} "
        f"| {r['errors']} |"
        for r in figures["replays"]
    ]
    lines += [
        "",
        "Hit ratio: answers from L1 or L2 over all calls (target > 70 %); a call that",
        "joined an identical computation in flight is a miss. Ideal without refresh-ahead:",
        "the share of calls whose question, at the same data versions, an earlier call had",
        "already answered, i.e. what an unbounded cache with no TTL that only keeps answers",
        "its callers computed could at best serve under the same stream. Refresh-ahead beats it",
        "by recomputing popular answers after a change, before they are asked again; the",
        "store computations per second (answers computed for callers plus refreshes, over",
        "warm-up and counted time) say what that costs.",
        "",
        "Ideal hit ratio of the same mix at other request rates (virtual time, no server,",
        "instant answers, the same warm-up and counted seconds),",
        "with the scopes of this code (fine), with every change bumping all of its",
        "merchant's data and the platform's (coarse, as before notices said what changed),",
        "and with no changes:",
        "",
        f"| requests/s | fine, {max(r['change_rate'] for r in figures['replays']):g} changes/s "
        "| coarse | no changes |",
        "| --- | --- | --- | --- |",
        *(
            f"| {rate} | {ratios['fine']:.1%} | {ratios['coarse']:.1%} | {ratios['none']:.1%} |"
            for rate, ratios in figures["simulated_ideal_hit_ratio"].items()
        ),
        "",
        f"Latency through the in-memory MCP client, no change stream: {lat['mix']['asked']}",
        "L1 hits of each question and of as many questions drawn from the mix (each asked",
        "once before), a tenth as many uncached calls; medians in ms (p95 of the round trips):",
        "",
        "| question | L1 hit round trip | of which in the server | of which the client's"
        " schema check | uncached round trip | uncached in the server |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in [*lat["questions"], {"question": "the mix", **lat["mix"]}]:
        hit, cold = row["l1_hit_round_trip_ms"], row.get("uncached_round_trip_ms")
        lines.append(
            f"| {row['question']} | {hit['median']} ({hit['p95']}) "
            f"| {row['l1_hit_in_server_ms']['median']} | {row['client_validation_ms']['median']} "
            + (
                f"| {cold['median']} ({cold['p95']}) | {row['uncached_in_server_ms']['median']} |"
                if cold
                else "| | |"
            )
        )
    direct = lat["get_or_compute_l1_hit_us"]
    lines += [
        "",
        f"An L1 hit in `get_or_compute` alone: median {direct['median'] / 1000:.3f} ms, "
        f"p95 {direct['p95'] / 1000:.3f} ms.",
        "The round trip is the server's part (`_meta.duration_ms`: arguments, scopes, L1,",
        "rendering), the SDK's transport and dispatch on both sides, and the SDK client's",
        "check of every result against the tool's output schema (`jsonschema`, timed apart",
        "on the same answers), which grows with the answer: a 30-day series has 30 buckets.",
        "",
        f"Machine: {figures['cpus']} CPUs, load average {figures['load_before']} before and "
        f"{figures['load_after']} after (other work was running).",
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
            cache, bus = await fresh_cache(redis_url, args.refresh_min_asks)
            try:
                replays.append(
                    {"change_rate": rate, **await replay(args, rate, store, mix, cache, bus)}
                )
            finally:
                await cache.aclose()
        cache, _ = await fresh_cache(redis_url, args.refresh_min_asks)
        try:
            # Questions drawn afresh from the seed, so that every run times the same ones.
            drawn = Mix(list(merchants), args.zipf, random.Random(args.seed))
            measured = await latency(store, drawn, cache, args.latency_calls)
            change_rate = max(float(r) for r in args.changes.split(","))
            simulated = {
                f"{r:g}/s": {
                    "fine": simulated_ideal(merchants, args, r, change_rate),
                    "coarse": simulated_ideal(merchants, args, r, change_rate, coarse=True),
                    "none": simulated_ideal(merchants, args, r, 0.0),
                }
                for r in (5.0, 20.0, 50.0, 200.0)
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


async def fresh_cache(
    redis_url: str | None, refresh_min_asks: int
) -> tuple[TieredCache, ChangeBus]:
    """A cache of its own Redis namespace, following a bus of its own."""
    bus = ChangeBus()
    namespace = f"optima-bi-bench:{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=redis_url, refresh_min_asks=refresh_min_asks)
    return await create_cache(settings, bus, namespace=namespace), bus


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
