"""Each invalidation rule end to end: a change written by the sink's code, a real Redis.

A row change is applied to the store with `cdc.apply` (as the sink writes a
batch) and announced with the notice the sink builds from it; the cached server
(L1 + L2 on the real Redis) must then answer exactly as an uncached server does,
recomputing after a change of what the answer reads and answering from cache
after any other change.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from optima_bi_mcp.cache.tiered import TieredCache
from optima_bi_mcp.cdc.apply import apply_events
from optima_bi_mcp.cdc.decode import ChangeEvent
from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from optima_bi_mcp.data.seed import seed_store
from optima_bi_mcp.data.synth import SeedSpec
from optima_bi_mcp.data.tables import BY_NAME
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store
from tests.cache.conftest import MakeCache

pytestmark = pytest.mark.asyncio(loop_scope="session")

LSN = itertools.count(10**12)
COUNTED = "('paid', 'shipped', 'delivered', 'completed')"
SINCE = "created_at >= {t:DateTime64(6, 'UTC')}"
Row = dict[str, Any] | None


@dataclass
class World:
    """A seeded store, a cached server on real Redis fed by a bus, and an uncached server.

    `merchants` are ordered from the busiest.
    """

    store: Store
    bus: ChangeBus
    cache: TieredCache
    cached: MCPServer
    uncached: MCPServer
    merchants: list[uuid.UUID]

    def apply(
        self, table: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        """Write one row change as the sink does, then publish the sink's notice of it."""
        self.apply_batch([(table, before, after)])

    def apply_batch(self, changes: list[tuple[str, Row, Row]]) -> None:
        """Write row changes (table, before, after) as one sink batch, then publish its notice."""
        events = []
        for table, before, after in changes:
            op = "c" if before is None else "d" if after is None else "u"
            row = after if after is not None else before
            assert row is not None
            events.append(
                ChangeEvent(
                    BY_NAME[table], op, row["id"], after, before, next(LSN), int(time.time() * 1000)
                )
            )
        applied = apply_events(self.store, events)
        self.bus.publish(applied.notice())

    def row(self, table: str, where: str, **params: Any) -> dict[str, Any]:
        """One current row of `table` matching `where` (newest first)."""
        columns = BY_NAME[table].columns
        found = self.store.query(
            f"SELECT {', '.join(columns)} FROM {table} FINAL WHERE {where} "
            "ORDER BY created_at DESC LIMIT 1",
            params,
        )
        assert found, f"no {table} row where {where}"
        return dict(zip(columns, found[0], strict=True))


@pytest.fixture(scope="module")
def seeded(make_store: Callable[[str], Store]) -> Store:
    store = make_store("invalidation")
    seed_store(store, SeedSpec(seed=5, merchants=3, orders=4000))
    return store


@pytest.fixture
async def world(seeded: Store, make_cache: MakeCache, redis_url: str) -> World:
    bus = ChangeBus()
    bus.publish(ChangeNotice(freshness=datetime.now(UTC)))
    # No coalescing: each change must show at once, however close to the previous. No
    # refresh-ahead: which answers a change retires shows as the next ask's layer.
    cache = await make_cache(redis_url=redis_url, invalidation_interval_ms=0, refresh_min_asks=0)
    cache.attach(bus)
    admin = fixed_principal(Principal.parse("admin"))
    busiest = "SELECT merchant_id FROM orders FINAL GROUP BY merchant_id ORDER BY count() DESC"
    merchants = [r[0] for r in seeded.query(busiest)]
    return World(
        seeded,
        bus,
        cache,
        build_server(Settings(), seeded, principal_resolver=admin, cache=cache, bus=bus),
        build_server(Settings(), seeded, principal_resolver=admin, bus=bus),
        merchants,
    )


async def ask(server: MCPServer, tool: str, args: dict[str, Any]) -> tuple[Any, str]:
    """The structured answer and `_meta.cache` of one call."""
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content, (result.meta or {})["cache"]


async def cached_then(world: World, tool: str, args: dict[str, Any]) -> Any:
    """Ask twice (the second answer from L1); return the answer."""
    first, _ = await ask(world.cached, tool, args)
    assert (await ask(world.cached, tool, args))[1] == "L1"
    return figures(first)


async def after_change(world: World, tool: str, args: dict[str, Any]) -> tuple[Any, str]:
    """The cached server's answer and layer; the answer must equal the uncached server's."""
    answer, layer = await ask(world.cached, tool, args)
    assert figures(answer) == figures((await ask(world.uncached, tool, args))[0])
    return figures(answer), layer


def figures(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer without the instant it was computed at (a rolling period's end, as_of)."""
    return {k: v for k, v in answer.items() if k not in {"period", "as_of"}}


def last_month() -> tuple[date, date]:
    end = datetime.now(UTC).date().replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def week_ago() -> datetime:
    return datetime.now(UTC) - timedelta(days=6)


async def test_shipping_a_paid_order_keeps_sales_cached(world: World) -> None:
    """paid → shipped changes no figure: the answer stays in L1, and is right."""
    m = world.merchants[0]
    args = {"merchant_id": str(m), "days": 30}
    order = world.row("orders", "merchant_id = {m:UUID} AND status = 'paid'", m=m)
    before = await cached_then(world, "get_sales", args)
    world.apply("orders", order, {**order, "status": "shipped"})
    assert await after_change(world, "get_sales", args) == (before, "L1")


async def test_refunding_an_order_refreshes_sales(world: World) -> None:
    """A refund of a counted order in the period: recomputed, revenue lower by its amount."""
    m = world.merchants[0]
    args = {"merchant_id": str(m), "days": 7}
    order = world.row(
        "orders",
        f"merchant_id = {{m:UUID}} AND status IN {COUNTED} AND {SINCE}",
        m=m,
        t=week_ago(),
    )
    before = await cached_then(world, "get_sales", args)
    world.apply("orders", order, {**order, "status": "refunded"})
    after, layer = await after_change(world, "get_sales", args)
    assert layer == "none"
    assert Decimal(str(before["revenue"])) - Decimal(str(after["revenue"])) == order["amount_total"]


async def test_a_new_order_leaves_last_month_cached(world: World) -> None:
    """Today's paid order refreshes the last 7 days but not last month's answer."""
    m = world.merchants[1]
    start, end = last_month()
    past = {"merchant_id": str(m), "start": start.isoformat(), "end": end.isoformat()}
    recent = {"merchant_id": str(m), "days": 7}
    last_month_answer = await cached_then(world, "get_sales", past)
    await cached_then(world, "get_sales", recent)
    template = world.row("orders", "merchant_id = {m:UUID}", m=m)
    now = datetime.now(UTC)
    world.apply(
        "orders",
        None,
        {**template, "id": uuid.uuid4(), "order_number": "N-TODAY", "status": "paid",
         "created_at": now, "updated_at": now},
    )  # fmt: skip
    assert await after_change(world, "get_sales", past) == (last_month_answer, "L1")
    assert (await after_change(world, "get_sales", recent))[1] == "none"


async def test_refunding_last_months_order_refreshes_last_month(world: World) -> None:
    """A refund of an order of last month retires last month's answers (the past versions)."""
    m = world.merchants[1]
    start, end = last_month()
    args = {"merchant_id": str(m), "start": start.isoformat(), "end": end.isoformat()}
    order = counted_order_between(world, m, start, end)
    await cached_then(world, "customer_summary", args)
    await cached_then(world, "get_sales", args)
    world.apply("orders", order, {**order, "status": "refunded"})
    assert (await after_change(world, "get_sales", args))[1] == "none"
    assert (await after_change(world, "customer_summary", args))[1] == "none"


async def test_a_stock_change_refreshes_inventory_not_sales(world: World) -> None:
    """A stock move is read by inventory_status only."""
    m = world.merchants[2]
    inventory = {"merchant_id": str(m), "limit": 500}
    sales = {"merchant_id": str(m), "days": 7}
    before = await cached_then(world, "inventory_status", inventory)
    await cached_then(world, "get_sales", sales)
    product = world.row("products", "merchant_id = {m:UUID} AND status = 'active'", m=m)
    world.apply("products", product, {**product, "stock_quantity": product["stock_quantity"] + 999})
    after, layer = await after_change(world, "inventory_status", inventory)
    assert (layer, after != before) == ("none", True)
    assert (await after_change(world, "get_sales", sales))[1] == "L1"


async def test_the_merchant_row_is_read_again_only_after_it_changes(world: World) -> None:
    """Answers of a merchant reuse its row (one query fewer) until a change to it is noticed;
    the next answer then shows the new currency."""
    m = world.merchants[2]
    merchant = world.row("merchants", "id = {m:UUID}", m=m)
    month, quarter = ({"merchant_id": str(m), "days": days} for days in (30, 90))
    counted = world.store.queries
    await ask(world.cached, "top_products", month)
    first, counted = world.store.queries - counted, world.store.queries
    await ask(world.cached, "top_products", quarter)
    assert world.store.queries - counted == first - 1
    currency = "JPY" if merchant["currency"] != "JPY" else "CHF"
    renamed = {**merchant, "currency": currency}
    world.apply("merchants", merchant, renamed)
    try:
        after, layer = await after_change(world, "top_products", quarter)
        assert (layer, after["currency"]) == ("none", currency)
    finally:
        world.apply("merchants", renamed, merchant)


async def test_a_rename_refreshes_top_products(world: World) -> None:
    """A product's new name shows in top_products at once."""
    m = world.merchants[0]
    args = {"merchant_id": str(m), "days": 90, "limit": 500}
    before = await cached_then(world, "top_products", args)
    product_id = uuid.UUID(before["items"][0]["product_id"])
    product = world.row("products", "id = {p:UUID}", p=product_id)
    world.apply("products", product, {**product, "name": "Renamed mug"})
    after, layer = await after_change(world, "top_products", args)
    assert (layer, after["items"][0]["name"]) == ("none", "Renamed mug")


async def test_a_plan_change_refreshes_mrr_not_overview(world: World) -> None:
    """Subscriptions feed platform_mrr; platform_overview does not read them."""
    before = await cached_then(world, "platform_mrr", {})
    await cached_then(world, "platform_overview", {})
    sub = world.row(
        "subscriptions",
        "plan != 'free' AND amount > 0 AND canceled_at IS NULL AND status = 'active'",
    )
    world.apply(
        "subscriptions", sub, {**sub, "canceled_at": datetime.now(UTC) - timedelta(days=40)}
    )
    after, layer = await after_change(world, "platform_mrr", {})
    assert (layer, after["mrr"] < before["mrr"]) == ("none", True)
    assert (await after_change(world, "platform_overview", {}))[1] == "L1"


async def test_an_order_change_refreshes_overview_not_mrr(world: World) -> None:
    """A refund this month moves GMV but no subscription figure."""
    await cached_then(world, "platform_mrr", {})
    before = await cached_then(world, "platform_overview", {})
    order = world.row(
        "orders",
        f"status IN {COUNTED} AND {SINCE}",
        t=datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    )
    world.apply("orders", order, {**order, "status": "refunded"})
    after, layer = await after_change(world, "platform_overview", {})
    assert (layer, after["gmv"] < before["gmv"]) == ("none", True)
    assert (await after_change(world, "platform_mrr", {}))[1] == "L1"


async def test_a_transfer_change_refreshes_platform_revenue(world: World) -> None:
    """A payout marked paid moves transfers_paid; MRR stays cached."""
    args = {"days": 30}
    transfer = world.row(
        "transfers",
        f"status = 'pending' AND {SINCE}",
        t=datetime.now(UTC) - timedelta(days=25),
    )
    before = await cached_then(world, "platform_revenue", args)
    await cached_then(world, "platform_mrr", {})
    world.apply("transfers", transfer, {**transfer, "status": "paid"})
    after, layer = await after_change(world, "platform_revenue", args)
    paid = Decimal(str(after["transfers_paid"])) - Decimal(str(before["transfers_paid"]))
    assert (layer, paid) == ("none", transfer["amount"])
    assert (await after_change(world, "platform_mrr", {}))[1] == "L1"


async def test_a_new_customer_row_refreshes_nothing(world: World) -> None:
    """The customers table feeds no figure (a customer is an order's e-mail)."""
    m = world.merchants[0]
    args = {"merchant_id": str(m), "days": 30}
    before = await cached_then(world, "customer_summary", args)
    now = datetime.now(UTC)
    customer = {"id": uuid.uuid4(), "merchant_id": m, "email": "new@example.org",
                "name": "New", "created_at": now, "updated_at": now}  # fmt: skip
    world.apply("customers", None, customer)
    assert await after_change(world, "customer_summary", args) == (before, "L1")


async def test_another_merchants_refund_keeps_answers_cached(world: World) -> None:
    """Merchant A's answers do not read merchant B's orders."""
    a, b = world.merchants[0], world.merchants[1]
    args = {"merchant_id": str(a), "days": 90}
    before = await cached_then(world, "get_sales", args)
    order = world.row("orders", f"merchant_id = {{m:UUID}} AND status IN {COUNTED}", m=b)
    world.apply("orders", order, {**order, "status": "refunded"})
    assert await after_change(world, "get_sales", args) == (before, "L1")


async def test_a_second_instance_learns_of_a_refund_through_redis(
    world: World, make_cache: MakeCache, redis_url: str
) -> None:
    """Instance two (no bus) answers from L2, then fresh after instance one's refund."""
    other = await make_cache(redis_url=redis_url)
    admin = fixed_principal(Principal.parse("admin"))
    two = build_server(
        Settings(), world.store, principal_resolver=admin, cache=other, bus=world.bus
    )
    m = world.merchants[0]
    args = {"merchant_id": str(m), "days": 30}
    await cached_then(world, "get_sales", args)
    assert (await ask(two, "get_sales", args))[1] == "L2"
    order = world.row(
        "orders", f"merchant_id = {{m:UUID}} AND status IN {COUNTED} AND {SINCE}",
        m=m, t=datetime.now(UTC) - timedelta(days=20),
    )  # fmt: skip
    seen = other.version(f"orders:{m}")[0]
    world.apply("orders", order, {**order, "status": "refunded"})
    await other.wait_until(lambda: other.version(f"orders:{m}")[0] > seen, timeout=10)
    answer, layer = await ask(two, "get_sales", args)
    expected = figures((await ask(world.uncached, "get_sales", args))[0])
    assert (layer, figures(answer)) == ("none", expected)


def placed(world: World, m: uuid.UUID, status: str) -> tuple[dict[str, Any], list[Row]]:
    """A new order of merchant `m` placed now, and its two items (rows of the source)."""
    now = datetime.now(UTC)
    template = world.row("orders", "merchant_id = {m:UUID}", m=m)
    order = {**template, "id": uuid.uuid4(), "order_number": f"N-{uuid.uuid4().hex[:6]}",
             "status": status, "created_at": now, "updated_at": now}  # fmt: skip
    item = world.row("order_items", "merchant_id = {m:UUID}", m=m)
    items: list[Row] = [
        {**item, "id": uuid.uuid4(), "order_id": order["id"], "quantity": 50, "created_at": now}
        for _ in range(2)
    ]
    return order, items


async def test_a_paid_order_with_its_items_leaves_last_months_products_cached(
    world: World,
) -> None:
    """An order placed paid now with its items: last 7 days recomputed, last month in L1."""
    m = world.merchants[1]
    start, end = last_month()
    past = {"merchant_id": str(m), "start": start.isoformat(), "end": end.isoformat()}
    recent = {"merchant_id": str(m), "days": 7, "sort_by": "quantity"}
    last_month_answer = await cached_then(world, "top_products", past)
    before = await cached_then(world, "top_products", recent)
    order, items = placed(world, m, "paid")
    world.apply_batch([("orders", None, order), *(("order_items", None, i) for i in items)])
    assert await after_change(world, "top_products", past) == (last_month_answer, "L1")
    after, layer = await after_change(world, "top_products", recent)
    assert (layer, after != before) == ("none", True)


async def test_a_pending_orders_items_count_once_it_is_paid(world: World) -> None:
    """Items placed with a pending order change no figure; paying the order retires them."""
    m = world.merchants[2]
    args = {"merchant_id": str(m), "days": 7, "sort_by": "quantity"}
    before = await cached_then(world, "top_products", args)
    order, items = placed(world, m, "pending")
    world.apply_batch([("orders", None, order), *(("order_items", None, i) for i in items)])
    assert await after_change(world, "top_products", args) == (before, "L1")
    world.apply("orders", order, {**order, "status": "paid"})
    after, layer = await after_change(world, "top_products", args)
    assert (layer, after != before) == ("none", True)


async def test_an_item_without_its_order_retires_last_months_products(world: World) -> None:
    """An item changed alone in its batch may be of any order's date: the past is retired."""
    m = world.merchants[0]
    start, end = last_month()
    args = {"merchant_id": str(m), "start": start.isoformat(), "end": end.isoformat(),
            "sort_by": "quantity"}  # fmt: skip
    order = counted_order_between(world, m, start, end)
    before = await cached_then(world, "top_products", args)
    item = world.row("order_items", "order_id = {o:UUID}", o=order["id"])
    world.apply("order_items", None, {**item, "id": uuid.uuid4(), "quantity": 500})
    after, layer = await after_change(world, "top_products", args)
    assert (layer, after != before) == ("none", True)


async def test_changes_within_the_interval_show_at_once_on_both_instances(
    world: World, make_cache: MakeCache, redis_url: str
) -> None:
    """Two refunds within one coalescing interval: each shows in the next answer, everywhere."""
    admin = fixed_principal(Principal.parse("admin"))
    options = {"invalidation_interval_ms": 60_000, "refresh_min_asks": 0}
    caches = [await make_cache(redis_url=redis_url, **options) for _ in range(2)]
    caches[0].attach(world.bus)
    servers = [
        build_server(Settings(), world.store, principal_resolver=admin, cache=c) for c in caches
    ]
    m = world.merchants[0]
    args = {"merchant_id": str(m), "days": 30}
    found = world.store.query(
        f"SELECT id FROM orders FINAL WHERE merchant_id = {{m:UUID}} AND status IN {COUNTED} "
        f"AND {SINCE} ORDER BY id LIMIT 2",
        {"m": m, "t": datetime.now(UTC) - timedelta(days=20)},
    )
    for (order_id,) in found:
        for server in servers:
            await ask(server, "get_sales", args)
        seen = caches[1].version(f"orders:{m}")[1]
        order = world.row("orders", "id = {o:UUID}", o=order_id)
        world.apply("orders", order, {**order, "status": "refunded"})
        await caches[1].wait_until(
            lambda seen=seen: caches[1].version(f"orders:{m}")[1] > seen,  # type: ignore[misc]
            timeout=10,
        )
        expected = figures((await ask(world.uncached, "get_sales", args))[0])
        answers = [await ask(server, "get_sales", args) for server in servers]
        # Instance two may read instance one's fresh answer from L2, never an old one.
        assert [(figures(a), layer != "L1") for a, layer in answers] == [(expected, True)] * 2


def counted_order_between(world: Any, merchant: Any, start: Any, end: Any) -> Any:
    """A counted order of `merchant` created on a day of [start, end]."""
    return world.row(
        "orders",
        f"merchant_id = {{m:UUID}} AND status IN {COUNTED} "
        "AND toDate(created_at) BETWEEN {s:Date} AND {e:Date}",
        m=merchant,
        s=start,
        e=end,
    )
