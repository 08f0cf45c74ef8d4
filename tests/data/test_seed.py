"""The synthetic dataset: deterministic, and shaped to exercise every metric."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import pytest

from optima_bi_mcp.data.seed import seed_store
from optima_bi_mcp.errors import InvalidArgumentError
from optima_bi_mcp.store import Store
from tests.data.conftest import SMALL, SPEC, checksums

COUNTED = "status IN ('paid', 'shipped', 'delivered', 'completed')"


def one(store: Store, sql: str) -> object:
    return store.query(sql)[0][0]


def test_same_seed_gives_identical_rows(seeded: Store, make_store: Callable[[str], Store]) -> None:
    """Seeding twice with the same spec gives the same rows in every table."""
    again = make_store("again")
    seed_store(again, SPEC)
    assert checksums(again) == checksums(seeded)


def test_different_seed_gives_different_rows(make_store: Callable[[str], Store]) -> None:
    """Another seed changes the orders."""
    first, second = make_store("s1"), make_store("s2")
    seed_store(first, SMALL)
    seed_store(second, replace(SMALL, seed=SMALL.seed + 1))
    assert checksums(first)["orders"] != checksums(second)["orders"]


def test_orders_scale_with_the_spec(seeded: Store) -> None:
    """About the requested number of orders over the requested merchants."""
    assert one(seeded, "SELECT count() FROM merchants") == SPEC.merchants
    assert abs(int(one(seeded, "SELECT count() FROM orders")) - SPEC.orders) < SPEC.orders * 0.05


def test_largest_merchant_holds_a_tenth_of_orders(seeded: Store) -> None:
    """Merchant sizes have a long tail: the largest holds at least 10 % of all orders."""
    share = one(
        seeded,
        "SELECT max(n) / sum(n) FROM (SELECT count() AS n FROM orders GROUP BY merchant_id)",
    )
    assert float(share) >= 0.10  # type: ignore[arg-type]


def test_every_order_status_is_present(seeded: Store) -> None:
    """Every status of SOURCE_SCHEMA.md appears, with 83-92 % of orders counted."""
    statuses = {r[0] for r in seeded.query("SELECT DISTINCT status FROM orders")}
    counted = one(seeded, f"SELECT countIf({COUNTED}) / count() FROM orders")
    assert statuses == {
        "pending", "paid", "shipped", "delivered", "completed", "cancelled", "refunded",
    }  # fmt: skip
    assert 0.83 <= float(counted) <= 0.92  # type: ignore[arg-type]


def test_order_total_is_the_sum_of_its_items(seeded: Store) -> None:
    """amount_total = Σ items amount, and amount = quantity × unit_price, for every order."""
    wrong_totals = one(
        seeded,
        "SELECT count() FROM orders o LEFT JOIN "
        "(SELECT order_id, sum(amount) AS s, count() AS n FROM order_items GROUP BY order_id) i "
        "ON i.order_id = o.id WHERE i.s != o.amount_total OR i.n NOT BETWEEN 1 AND 5",
    )
    wrong_items = one(seeded, "SELECT countIf(amount != quantity * unit_price) FROM order_items")
    assert (wrong_totals, wrong_items) == (0, 0)


def test_platform_fee_is_a_few_percent(seeded: Store) -> None:
    """The take rate lies between 1 % and 4 %."""
    take = one(seeded, "SELECT sum(platform_fee) / sum(amount_total) FROM orders")
    assert 0.01 <= float(take) <= 0.04  # type: ignore[arg-type]


def test_every_item_references_a_product_of_its_merchant(seeded: Store) -> None:
    """order_items.product_id always names a product of the same merchant."""
    orphans = one(
        seeded,
        "SELECT count() FROM order_items "
        "WHERE (merchant_id, product_id) NOT IN (SELECT merchant_id, id FROM products)",
    )
    assert orphans == 0


def test_this_week_has_orders(seeded: Store) -> None:
    """Orders exist on each of the last three days, so 'this week' is never empty."""
    days = one(
        seeded,
        "SELECT uniqExact(toDate(created_at)) FROM orders "
        "WHERE created_at >= toDateTime64('2026-11-28 00:00:00', 6, 'UTC')",
    )
    assert days == 3


@pytest.mark.parametrize(
    ("what", "sql"),
    [
        ("negative stock", "SELECT countIf(stock_quantity < 0) FROM products"),
        ("out of stock", "SELECT countIf(stock_quantity = 0) FROM products"),
        ("low stock", "SELECT countIf(stock_quantity BETWEEN 1 AND low_stock_threshold)"
         " FROM products"),
        ("overstock", "SELECT countIf(stock_quantity > 1000) FROM products"),
        ("archived", "SELECT countIf(status = 'archived') FROM products"),
        ("unknown cost", "SELECT countIf(cost IS NULL) FROM products"),
        ("guest checkouts", "SELECT count() FROM orders WHERE (merchant_id,"
         " lower(trim(customer_email))) NOT IN (SELECT merchant_id, lower(email) FROM customers)"),
        ("e-mail variants", "SELECT countIf(customer_email != lower(trim(customer_email)))"
         " FROM orders"),
        ("repeat customers", "SELECT count() FROM (SELECT 1 FROM orders GROUP BY merchant_id,"
         " lower(trim(customer_email)) HAVING count() >= 2)"),
        ("churned customers", "SELECT count() FROM (SELECT 1 FROM orders GROUP BY merchant_id,"
         " lower(trim(customer_email)) HAVING max(created_at) < '2026-06-01')"),
        ("closed merchants", "SELECT countIf(status = 'closed') FROM merchants"),
        ("trials", "SELECT countIf(trial_ends_at IS NOT NULL) FROM subscriptions"),
        ("yearly billing", "SELECT countIf(billing_interval = 'year') FROM subscriptions"),
        ("failed transfers", "SELECT countIf(status = 'failed') FROM transfers"),
    ],
)  # fmt: skip
def test_dataset_holds_each_case(seeded: Store, what: str, sql: str) -> None:
    """Each case the metrics must handle occurs at least once."""
    assert int(one(seeded, sql)) > 0, what  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("plan", {"free", "pro", "enterprise"}),
        ("status", {"trialing", "active", "past_due", "canceled"}),
    ],
)
def test_subscriptions_cover_every_value(seeded: Store, column: str, values: set[str]) -> None:
    """Every plan and every subscription status appears."""
    found = {r[0] for r in seeded.query(f"SELECT DISTINCT {column} FROM subscriptions")}
    assert found == values


def test_transfers_cover_every_status(seeded: Store) -> None:
    """Transfers are pending, paid and failed."""
    found = {r[0] for r in seeded.query("SELECT DISTINCT status FROM transfers")}
    assert found == {"pending", "paid", "failed"}


def test_plan_changes_close_the_old_row(seeded: Store) -> None:
    """A merchant's subscriptions never overlap, and at most one is still open."""
    rows = seeded.query(
        "SELECT merchant_id, groupArray((started_at, canceled_at)) FROM "
        "(SELECT * FROM subscriptions ORDER BY started_at) GROUP BY merchant_id"
    )
    overlaps = sum(
        1
        for _, spans in rows
        for earlier, later in itertools.pairwise(spans)
        if earlier[1] is None or earlier[1] > later[0]
    )
    open_rows = max(sum(1 for _, canceled in spans if canceled is None) for _, spans in rows)
    assert overlaps == 0
    assert open_rows == 1


def test_plan_changes_happen(seeded: Store) -> None:
    """Some merchant moved between plans (upgrade or downgrade) and some came back."""
    changed = one(
        seeded,
        "SELECT count() FROM (SELECT merchant_id FROM subscriptions GROUP BY merchant_id "
        "HAVING uniqExact(plan) >= 2)",
    )
    assert int(changed) >= 2  # type: ignore[call-overload]


def test_seed_refuses_a_store_with_data(seeded: Store) -> None:
    """Seeding a store that holds data raises instead of mixing two datasets."""
    with pytest.raises(InvalidArgumentError, match="already holds data"):
        seed_store(seeded, SPEC)


def test_rollups_are_rebuilt(seeded: Store) -> None:
    """merchant_daily holds the counted orders after seeding."""
    rollup = one(seeded, "SELECT sum(orders) FROM merchant_daily FINAL")
    counted = one(seeded, f"SELECT count() FROM orders WHERE {COUNTED}")
    assert rollup == counted
