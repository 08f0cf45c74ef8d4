"""Data scopes: which changes bump what, and which versions each answer's key holds."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from optima_bi_mcp.cache.scopes import READS, data_scopes, period_end
from optima_bi_mcp.cdc.notify import ChangeNotice, Touched, changed_domains
from optima_bi_mcp.data.seed import seed_store
from optima_bi_mcp.data.synth import SeedSpec
from optima_bi_mcp.data.tables import BY_NAME
from optima_bi_mcp.mcp.tools import TOOLS_BY_NAME
from optima_bi_mcp.metrics import merchant as merchant_metrics
from optima_bi_mcp.metrics import platform as platform_metrics
from optima_bi_mcp.store import Store

M = uuid.UUID("44444444-4444-4444-4444-444444444444")
NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


def order(status: str, created: datetime = NOW, **changes: Any) -> dict[str, Any]:
    """A full orders row of merchant M."""
    row: dict[str, Any] = dict.fromkeys(BY_NAME["orders"].columns)
    row.update(
        id=M, merchant_id=M, status=status, customer_email="a@x.org", currency="USD",
        amount_total=Decimal("20.00"), platform_fee=Decimal("0.60"),
        created_at=created, updated_at=created,
    )  # fmt: skip
    return {**row, **changes}


def product(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(BY_NAME["products"].columns)
    row.update(id=M, merchant_id=M, sku="S-1", name="Mug", category="Home", stock_quantity=5)
    return {**row, **changes}


@pytest.mark.parametrize(
    ("table", "op", "before", "after", "domains"),
    [
        ("orders", "u", order("paid"), order("shipped"), ()),
        ("orders", "u", order("delivered"), order("completed"), ()),
        ("orders", "u", order("pending"), order("cancelled"), ()),
        ("orders", "c", None, order("pending"), ()),
        ("orders", "c", None, order("paid"), ("orders",)),
        ("orders", "u", order("pending"), order("paid"), ("orders",)),
        ("orders", "u", order("completed"), order("refunded"), ("orders",)),
        ("orders", "u", order("paid"), order("paid", amount_total=Decimal("21.00")), ("orders",)),
        ("orders", "u", order("paid"), order("paid", customer_email="b@x.org"), ("orders",)),
        ("orders", "u", None, order("cancelled"), ("orders",)),  # old row unknown
        ("orders", "d", {"id": M}, None, ("orders",)),  # key only: resolved by the sink
        ("orders", "d", order("paid"), None, ("orders",)),
        ("orders", "d", order("pending"), None, ()),
        ("products", "u", product(), product(stock_quantity=4), ("products",)),
        ("products", "u", product(), product(name="Big mug"), ("products", "catalog")),
        ("products", "c", None, product(), ("products", "catalog")),
        ("order_items", "c", None, {"merchant_id": M}, ("order_items",)),
        ("customers", "c", None, {"merchant_id": M}, ()),
        ("subscriptions", "u", {"merchant_id": M}, {"merchant_id": M}, ("subscriptions",)),
        ("transfers", "u", {"merchant_id": M}, {"merchant_id": M}, ("transfers",)),
        ("merchants", "u", {"id": M}, {"id": M}, ("merchants",)),
    ],
)
def test_changed_domains(
    table: str, op: str, before: Any, after: Any, domains: tuple[str, ...]
) -> None:
    """Only a change of a value some answer reads bumps its domain."""
    assert changed_domains(table, op, before, after) == domains


def notice(before: Any, after: Any, op: str = "u") -> ChangeNotice:
    touched = Touched()
    touched.add("orders", "merchant_id", op, before, after)
    return ChangeNotice(frozenset({M}), True, NOW, touched.earliest)


ORDER_ID = uuid.UUID("55555555-5555-5555-5555-555555555555")


def item(order_id: uuid.UUID = ORDER_ID) -> dict[str, Any]:
    """An order_items row of merchant M."""
    row: dict[str, Any] = dict.fromkeys(BY_NAME["order_items"].columns)
    row.update(id=uuid.uuid4(), order_id=order_id, merchant_id=M, quantity=1, created_at=NOW)
    return row


def batch_scopes(*changes: tuple[str, str, Any, Any]) -> tuple[str, ...]:
    """The scopes one sink batch of (table, op, before, after) bumps at NOW."""
    touched = Touched()
    for table, op, before, after in changes:
        touched.add(table, "merchant_id", op, before, after)
    return ChangeNotice(frozenset({M}), True, NOW, touched.earliest).scopes(NOW)


def test_items_of_an_order_paid_now_leave_the_past_alone() -> None:
    """Items dated by their order placed paid in the same batch bump the full versions only."""
    paid = order("paid", NOW - timedelta(minutes=1), id=ORDER_ID)
    scopes = batch_scopes(("order_items", "c", None, item()), ("orders", "c", None, paid))
    assert scopes == ("order_items:*", f"order_items:{M}", "orders:*", f"orders:{M}")


def test_items_of_an_order_placed_pending_bump_nothing() -> None:
    """Neither the pending order nor its items change a figure until it is paid."""
    pending = order("pending", NOW, id=ORDER_ID)
    assert batch_scopes(("orders", "c", None, pending), ("order_items", "c", None, item())) == ()


def test_items_of_last_months_order_bump_the_past() -> None:
    """An item removed from an order of last month, with the order's change, is of the past."""
    old = NOW - timedelta(days=20)
    before, after = order("paid", old, id=ORDER_ID), order("paid", old, id=ORDER_ID)
    after["amount_total"] = Decimal("10.00")
    scopes = batch_scopes(("orders", "u", before, after), ("order_items", "d", item(), None))
    assert f"order_items:{M}:past" in scopes


@pytest.mark.parametrize(
    "order_change",
    [
        None,  # the order is not in the batch: its date is unknown
        ("orders", "u", None, order("pending", NOW, id=ORDER_ID)),  # its old row is unknown
        ("orders", "r", None, order("pending", NOW, id=ORDER_ID)),  # a snapshot read
    ],
)
def test_items_of_an_order_not_known_to_be_recent_and_uncounted_bump_the_past(
    order_change: Any,
) -> None:
    """Without proof that the order never counted, or of its date, the item may be of any date."""
    changes = [("order_items", "c", None, item())]
    scopes = batch_scopes(*changes, *([order_change] if order_change else []))
    assert {f"order_items:{M}", f"order_items:{M}:past"} <= set(scopes)


def test_refund_of_an_old_order_bumps_the_past() -> None:
    """A refund of last month's order bumps the past versions too."""
    old = NOW - timedelta(days=20)
    scopes = notice(order("completed", old), order("refunded", old)).scopes(NOW)
    assert scopes == ("orders:*", "orders:*:past", f"orders:{M}", f"orders:{M}:past")


def test_todays_payment_leaves_the_past_alone() -> None:
    """Paying an order placed minutes ago bumps the full versions only."""
    recent = NOW - timedelta(minutes=10)
    scopes = notice(order("pending", recent), order("paid", recent)).scopes(NOW)
    assert scopes == ("orders:*", f"orders:{M}")


def test_an_update_without_its_old_row_bumps_the_past() -> None:
    """Without the old row (no REPLICA IDENTITY FULL) the order may have moved from any date."""
    recent = NOW - timedelta(minutes=10)
    scopes = notice(None, order("paid", recent)).scopes(NOW)
    assert scopes == ("orders:*", "orders:*:past", f"orders:{M}", f"orders:{M}:past")


def test_an_irrelevant_change_bumps_nothing() -> None:
    """Shipping a paid order bumps no scope at all."""
    assert notice(order("paid"), order("shipped")).scopes(NOW) == ()


def test_a_notice_without_detail_bumps_every_scope_of_its_merchants() -> None:
    """Coarse notices (no `touched`) stay safe: every domain of the merchant and platform."""
    scopes = ChangeNotice(frozenset({M})).scopes(NOW)
    assert {f"products:{M}", f"orders:{M}:past", "subscriptions:*", "orders:*:past"} <= set(scopes)


ARGS = {"start": None, "end": None, "days": None, "timezone": "UTC"}


@pytest.mark.parametrize(
    ("tool", "arguments", "past"),
    [
        ("get_sales", {**ARGS, "days": 7}, False),
        ("get_sales", {**ARGS, "start": "2026-11-01", "end": "2026-11-30"}, True),
        ("get_sales", {**ARGS, "start": "2026-12-02", "end": "2026-12-02"}, True),  # yesterday
        ("get_sales", {**ARGS, "start": "2026-12-03", "end": "2026-12-03"}, False),  # today
        # Yesterday in Honolulu ends at 10:00 UTC today: five hours ago.
        (
            "get_sales",
            {**ARGS, "start": "2026-12-02", "end": "2026-12-02", "timezone": "Pacific/Honolulu"},
            True,
        ),  # fmt: skip
        # In Kiritimati (UTC+14) it is already 4 December, which ends tomorrow at 10:00 UTC.
        (
            "get_sales",
            {**ARGS, "start": "2026-12-04", "end": "2026-12-04", "timezone": "Pacific/Kiritimati"},
            False,
        ),  # fmt: skip
        ("customer_summary", {**ARGS, "start": "2026-11-01", "end": "2026-11-30"}, True),
        ("top_products", {**ARGS, "start": "2026-11-01", "end": "2026-11-30"}, True),
        ("churned_customers", {"as_of": None, "timezone": "UTC"}, False),
        ("churned_customers", {"as_of": "2026-11-30", "timezone": "UTC"}, True),
        ("platform_overview", {"month": None}, False),
        ("platform_overview", {"month": "2026-11"}, True),
        ("platform_revenue", {"start": "2026-11-01", "end": "2026-11-30", "days": None}, True),
        ("inventory_status", {}, False),
    ],
)
def test_answers_about_ended_periods_read_past_versions(
    tool: str, arguments: dict[str, Any], past: bool
) -> None:
    """A period that ended over two hours ago keys on the past versions of dated domains."""
    scopes = data_scopes(tool, arguments, M, NOW)
    assert (f"orders:{M}:past" in scopes) is past
    assert (f"orders:{M}" in scopes) is (not past)


def test_yesterday_in_new_york_ends_at_five_utc() -> None:
    """Period ends are instants: local midnight after the last day, in UTC."""
    end = period_end(
        "get_sales",
        {"start": "2026-12-02", "end": "2026-12-02", "timezone": "America/New_York"},
        NOW,
    )
    assert end == datetime(2026, 12, 3, 5, 0, tzinfo=UTC)


def test_platform_answers_read_platform_scopes() -> None:
    """Platform tools key on every merchant's data (`*`), and MRR on subscriptions only."""
    scopes = data_scopes("platform_mrr", {"month": None}, None, NOW)
    assert scopes == ("subscriptions:*", "day:UTC:2026-12-03")


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("get_sales", {**ARGS, "days": 7, "timezone": "America/New_York"}),
        ("inventory_status", {}),
        ("churned_customers", {"as_of": None}),
        ("platform_mrr", {"month": None}),
    ],
)
def test_answers_up_to_now_are_keyed_on_todays_date(tool: str, arguments: dict[str, Any]) -> None:
    """At the answer zone's midnight the key changes: the period moved with the date."""
    midnight = datetime(2026, 12, 4, tzinfo=ZoneInfo(arguments.get("timezone") or "UTC"))
    minute = timedelta(minutes=1)
    keys = [data_scopes(tool, arguments, M, midnight + d) for d in (-2 * minute, -minute, minute)]
    assert (keys[0] == keys[1], keys[1] != keys[2]) == (True, True)


def test_a_period_of_dates_is_not_keyed_on_today() -> None:
    """An explicit period reads the same rows whatever the date it is asked on."""
    args = {**ARGS, "start": "2026-12-01", "end": "2026-12-04"}
    assert not any(s.startswith("day:") for s in data_scopes("get_sales", args, M, NOW))


# Store tables, and the domains an answer reading them must declare (any one set of them).
TABLE_DOMAINS: dict[str, list[set[str]]] = {
    "merchants": [{"merchants"}],
    "orders": [{"orders"}],
    "order_items": [{"order_items"}],
    "products": [{"products"}, {"catalog"}],
    "subscriptions": [{"subscriptions"}],
    "transfers": [{"transfers"}],
    "customers": [{"customers"}],
    # Rollups, recomputed from the tables they are built from (store.rollups).
    "merchant_daily": [{"orders"}],
    "merchant_monthly": [{"orders"}],
    "merchant_day_orders": [{"orders"}],
    "merchant_day_customers": [{"orders"}],
    "customer_facts": [{"orders"}],
    "product_daily": [{"orders", "order_items"}],
    "merchant_day_items": [{"orders", "order_items"}],
}
TABLE = re.compile(r"\b(?:FROM|JOIN)\s+([a-z_]+)", re.IGNORECASE)


@pytest.fixture(scope="module")
def small_store(make_store: Callable[[str], Store]) -> Store:
    store = make_store("scopes")
    seed_store(store, SeedSpec(seed=11, merchants=2, orders=400))
    return store


@pytest.mark.parametrize("tool", sorted(READS))
def test_every_tool_declares_the_tables_it_reads(
    tool: str, small_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store tables a tool's queries name all belong to the domains READS declares."""
    sql: list[str] = []
    original = small_store.query

    def recording(query: str, *args: Any, **kwargs: Any) -> Any:
        sql.append(query)
        return original(query, *args, **kwargs)

    monkeypatch.setattr(small_store, "query", recording)
    run_tool(small_store, tool)
    tables = {str(row[0]) for row in small_store.query("SHOW TABLES")}
    named = {t.lower() for q in sql for t in TABLE.findall(q)} & tables
    declared = set(READS[tool])
    undeclared = {t for t in named if not any(d <= declared for d in TABLE_DOMAINS.get(t, [{"?"}]))}
    assert named and not undeclared


def run_tool(store: Store, tool: str) -> None:
    """Answer `tool` with default arguments (for the store's first merchant) as the server does."""
    spec, now = TOOLS_BY_NAME[tool], datetime.now(UTC)
    args = spec.arguments.model_validate({})
    if spec.kind == "platform":
        getattr(platform_metrics, tool)(store, args, now)
    else:
        merchant = store.query("SELECT min(id) FROM merchants")[0][0]
        getattr(merchant_metrics, tool)(store, merchant, args, now)


def test_store_and_decoded_instants_mix_in_one_batch() -> None:
    """A naive instant (from the store) and an aware one (decoded) compare as UTC."""
    touched = Touched()
    touched.add("orders", "merchant_id", "d", order("paid", NOW.replace(tzinfo=None)), None)
    touched.add("orders", "merchant_id", "u", order("paid"), order("refunded"))
    assert touched.earliest == {("orders", M): NOW}
