"""The merchant rollups (customer facts, product sales per day) stay exact under change.

The source is changed (status both ways, hard deletes with their items, an
e-mail moved to another customer, a new order, item edits and deletions); the
store gets the same changes as newer row versions, as the CDC sink writes them,
and `refresh_rollups` is called with the keys the sink would pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from optima_bi_mcp.data.backfill import backfill
from optima_bi_mcp.data.tables import BY_NAME
from optima_bi_mcp.metrics import merchant as merchant_metrics
from optima_bi_mcp.metrics.merchant import (
    churned_customers,
    customer_summary,
    get_sales,
    inventory_status,
    top_products,
)
from optima_bi_mcp.metrics.models import (
    ChurnedCustomersArgs,
    CustomerSummaryArgs,
    GetSalesArgs,
    InventoryStatusArgs,
    TopProductsArgs,
)
from optima_bi_mcp.store import Store
from optima_bi_mcp.store.rollups import refresh_rollups
from tests.metrics.compare import as_json, project
from tests.metrics.dataset import build_dataset
from tests.oracle import merchant as oracle

ORDERS = BY_NAME["orders"]
ITEMS = BY_NAME["order_items"]
DAY = timedelta(days=1)


@dataclass
class Env:
    store: Store
    pg: psycopg.Connection[Any]
    merchant: UUID
    now: datetime
    version: int


@dataclass
class Change:
    """What changed in the source: ids written again, and rows deleted as they were."""

    orders: list[UUID]
    items: list[UUID]
    deleted_orders: list[tuple[Any, ...]]
    deleted_items: list[tuple[Any, ...]]


@pytest.fixture
def env(make_source: Any, make_store: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """A fresh source and store per test, since these tests change both.

    get_sales answers from the rollups whatever the merchant's size, as it does for
    large merchants (inventory_status always does).
    """
    monkeypatch.setattr(merchant_metrics, "ROLLUP_MIN_ORDERS", -1)
    dsn = make_source("merchant_rollups")
    info = build_dataset(dsn, seed=23, scale=0.3)
    store = make_store("merchant_rollups")
    report = backfill(store, dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield Env(store, conn, info.merchants["medium"], info.now, report.version)


def _whole_days(env: Env) -> dict[str, date]:
    """The last 60 whole UTC days before today: answered from product_daily alone."""
    today = env.now.date()
    return {"start": today - 60 * DAY, "end": today - DAY}


def _answers(env: Env) -> dict[str, Any]:
    """Answers served from the rollups (T after every order, UTC days), plus days=60."""
    m, now = env.merchant, env.now
    days = _whole_days(env)
    sales = GetSalesArgs(**days, bucket="week")
    return {
        "sales": as_json(get_sales(env.store, m, sales, now)),
        "summary": as_json(customer_summary(env.store, m, CustomerSummaryArgs(days=60), now)),
        "churned": as_json(
            churned_customers(env.store, m, ChurnedCustomersArgs(churn_days=20, limit=500), now)
        ),
        "top_days": as_json(top_products(env.store, m, TopProductsArgs(**days, limit=500), now)),
        "top_edges": as_json(top_products(env.store, m, TopProductsArgs(days=60, limit=500), now)),
        "inventory": as_json(inventory_status(env.store, m, InventoryStatusArgs(limit=500), now)),
    }


def _oracle(env: Env) -> dict[str, Any]:
    m, now = env.merchant, env.now
    churned = oracle.churned_customers(env.pg, m, churn_days=20, now=now)
    return {
        "sales": oracle.sales(env.pg, m, **_whole_days(env), bucket="week", now=now),
        "summary": oracle.customer_summary(env.pg, m, days=60, now=now),
        "churned": churned,
        "top_days": oracle.top_products(env.pg, m, **_whole_days(env), now=now),
        "top_edges": oracle.top_products(env.pg, m, days=60, now=now),
        "inventory": oracle.inventory_status(env.pg, m, now=now),
    }


def _agree(env: Env) -> bool:
    got, expected = _answers(env), _oracle(env)
    return all(project(got[k], expected[k]) == expected[k] for k in expected)


def _ids(env: Env, sql: str) -> list[UUID]:
    params = {"m": env.merchant, "since": env.now - 50 * DAY}
    return [r[0] for r in env.pg.execute(sql, params).fetchall()]


def _recent(status: str, n: int) -> str:
    return (
        f"SELECT id FROM orders WHERE merchant_id = %(m)s AND status = '{status}' "
        f"AND created_at >= %(since)s ORDER BY id LIMIT {n}"
    )


def _change_source(env: Env) -> Change:
    """Change orders and items of one merchant in PostgreSQL, as its shop would."""
    pg = env.pg
    paid = _ids(env, _recent("pending", 2))
    refunded = _ids(env, _recent("shipped", 3))
    moved = _ids(env, _recent("completed", 2))
    doomed = _ids(env, _recent("delivered", 2))
    edited = _ids(
        env,
        "SELECT i.id FROM order_items i JOIN orders o ON o.id = i.order_id "
        "WHERE o.merchant_id = %(m)s AND o.status = 'paid' AND o.created_at >= %(since)s "
        "ORDER BY i.id LIMIT 3",
    )
    assert (len(paid), len(refunded), len(moved), len(doomed), len(edited)) == (2, 3, 2, 2, 3)

    deleted_orders = _rows(env, ORDERS.columns, "orders", doomed)
    deleted_items = _rows(env, ITEMS.columns, "order_items", edited[:1], "id") + _rows(
        env, ITEMS.columns, "order_items", doomed, "order_id"
    )
    pg.execute("UPDATE orders SET status = 'paid' WHERE id = ANY(%s)", (paid,))
    pg.execute("UPDATE orders SET status = 'refunded' WHERE id = ANY(%s)", (refunded,))
    pg.execute(
        "UPDATE orders SET customer_email = 'Moved@Example.com ' WHERE id = ANY(%s)", (moved,)
    )
    pg.execute("DELETE FROM orders WHERE id = ANY(%s)", (doomed,))
    pg.execute("DELETE FROM order_items WHERE id = %s", (edited[0],))
    pg.execute(
        "UPDATE order_items SET quantity = quantity + 4, amount = amount + 40 WHERE id = ANY(%s)",
        (edited[1:],),
    )
    new_order, new_items = _new_order(env)
    return Change(
        orders=paid + refunded + moved + [new_order],
        items=edited[1:] + new_items,
        deleted_orders=deleted_orders,
        deleted_items=deleted_items,
    )


def _new_order(env: Env) -> tuple[UUID, list[UUID]]:
    """A paid order of a new customer three days ago, with two items of existing products."""
    pg, m = env.pg, env.merchant
    products = [
        r[0]
        for r in pg.execute(
            "SELECT id FROM products WHERE merchant_id = %s ORDER BY sku LIMIT 2", (m,)
        ).fetchall()
    ]
    order, at = uuid4(), env.now - 3 * DAY
    pg.execute(
        "INSERT INTO orders (id, merchant_id, order_number, customer_email, status, currency, "
        "amount_total, platform_fee, created_at, updated_at) "
        "VALUES (%s, %s, %s, 'new@example.com', 'paid', 'USD', 300.00, 3.00, %s, %s)",
        (order, m, f"NEW-{order.hex[:8]}", at, at),
    )
    items = [uuid4(), uuid4()]
    for item, product in zip(items, products, strict=True):
        pg.execute(
            "INSERT INTO order_items (id, order_id, merchant_id, product_id, quantity, "
            "unit_price, amount, created_at) VALUES (%s, %s, %s, %s, 3, 50.00, 150.00, %s)",
            (item, order, m, product, at),
        )
    return order, items


def _rows(
    env: Env, columns: tuple[str, ...], table: str, ids: list[UUID], by: str = "id"
) -> list[tuple[Any, ...]]:
    sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {by} = ANY(%s)"
    return list(env.pg.execute(sql, (ids,)).fetchall())


def _apply_to_store(env: Env, change: Change) -> tuple[set[Any], set[Any]]:
    """Write the change as newer row versions; returns the keys the sink would pass."""
    version = env.version + 1_000
    orders = [(*r, version, 0) for r in _rows(env, ORDERS.columns, "orders", change.orders)]
    orders += [(*r, version, 1) for r in change.deleted_orders]
    items = [(*r, version, 0) for r in _rows(env, ITEMS.columns, "order_items", change.items)]
    items += [(*r, version, 1) for r in change.deleted_items]
    env.store.insert("orders", orders, ORDERS.store_columns)
    env.store.insert("order_items", items, ITEMS.store_columns)
    days = {(r[1], r[8].date()) for r in orders}
    return days, {(r[2], r[1]) for r in items}


def test_answers_stale_until_touched_keys_are_refreshed(env: Env) -> None:
    """New row versions alone leave the rollup answers stale; refreshing the keys fixes them."""
    days, item_orders = _apply_to_store(env, _change_source(env))
    assert not _agree(env)

    refresh_rollups(env.store, days, item_orders)
    assert _agree(env)


def test_exact_after_redelivered_changes(env: Env) -> None:
    """The same batch applied and refreshed twice leaves the answers exact."""
    change = _change_source(env)
    for _ in range(2):
        refresh_rollups(env.store, *_apply_to_store(env, change))
    assert _agree(env)


def test_item_changes_alone_refresh_their_orders_days(env: Env) -> None:
    """A batch of item changes only (no order event) still moves product sales."""
    change = _change_source(env)
    days, item_orders = _apply_to_store(env, change)
    refresh_rollups(env.store, days)
    stale = _answers(env)["top_days"]

    refresh_rollups(env.store, (), item_orders)
    expected = _oracle(env)["top_days"]
    assert project(_answers(env)["top_days"], expected) == expected
    assert stale != expected


_SOURCE_FACTS = """
SELECT lower(trim(customer_email)), min(created_at), max(created_at), count(*), sum(amount_total)
FROM orders WHERE merchant_id = %s AND status IN ('paid', 'shipped', 'delivered', 'completed')
GROUP BY 1
"""


def test_customer_facts_equal_the_source_after_refresh(env: Env) -> None:
    """Every customer's facts row equals the source's, and no row outlives its orders."""
    refresh_rollups(env.store, *_apply_to_store(env, _change_source(env)))
    stored = env.store.query(
        "SELECT email, first_order_at, last_order_at, orders_count, ltv "
        "FROM customer_facts FINAL WHERE merchant_id = {m:UUID}",
        {"m": str(env.merchant)},
    )
    source = env.pg.execute(_SOURCE_FACTS, (env.merchant,)).fetchall()
    as_set = {
        (e, f.replace(tzinfo=None), la.replace(tzinfo=None), n, Decimal(v))
        for e, f, la, n, v in stored
    }
    assert as_set == {
        (e, f.replace(tzinfo=None), la.replace(tzinfo=None), n, v) for e, f, la, n, v in source
    }
