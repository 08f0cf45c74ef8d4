"""Answers follow the source through deletes and updates, and the oracle is not blind."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg
import pytest

from optima_bi_mcp.data.backfill import backfill
from optima_bi_mcp.errors import NotFoundError
from optima_bi_mcp.metrics.merchant import (
    customer_summary,
    get_sales,
    inventory_status,
    merchant_info,
)
from optima_bi_mcp.metrics.models import CustomerSummaryArgs, GetSalesArgs, InventoryStatusArgs
from optima_bi_mcp.store import Store
from tests.metrics.compare import as_json, project
from tests.metrics.dataset import build_dataset
from tests.oracle import merchant as oracle

LONG = {"start": date(2024, 11, 1), "end": date(2026, 11, 3), "timezone": "Europe/Berlin"}
CHANGES = [
    # A hard delete of counted orders (their items go with them).
    "DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE merchant_id = %(m)s "
    "AND status = 'completed' ORDER BY order_number LIMIT 5)",
    # GDPR erasure of every order of one customer, however it was spelled.
    "DELETE FROM orders WHERE merchant_id = %(m)s AND lower(trim(customer_email)) = "
    "(SELECT lower(trim(customer_email)) FROM orders WHERE merchant_id = %(m)s "
    "AND status = 'paid' ORDER BY order_number LIMIT 1)",
    # Status changes both ways.
    "UPDATE orders SET status = 'paid', updated_at = now() WHERE id IN (SELECT id FROM orders "
    "WHERE merchant_id = %(m)s AND status = 'pending' ORDER BY order_number LIMIT 5)",
    "UPDATE orders SET status = 'refunded', updated_at = now() WHERE id IN (SELECT id FROM orders "
    "WHERE merchant_id = %(m)s AND status = 'shipped' ORDER BY order_number LIMIT 5)",
    # Stock moves and a product is archived.
    "UPDATE products SET stock_quantity = stock_quantity - 50 WHERE id IN (SELECT id FROM "
    "products WHERE merchant_id = %(m)s ORDER BY sku LIMIT 3)",
    "UPDATE products SET status = 'archived' WHERE id = (SELECT id FROM products "
    "WHERE merchant_id = %(m)s AND status = 'active' ORDER BY sku DESC LIMIT 1)",
]


def _answers(store: Store, merchant: uuid.UUID, now: Any) -> dict[str, Any]:
    return {
        "sales": as_json(get_sales(store, merchant, GetSalesArgs(**LONG, bucket="month"), now)),
        "customers": as_json(customer_summary(store, merchant, CustomerSummaryArgs(**LONG), now)),
        "inventory": as_json(
            inventory_status(store, merchant, InventoryStatusArgs(limit=500), now)
        ),
    }


def _oracle(conn: psycopg.Connection[Any], merchant: uuid.UUID, now: Any) -> dict[str, Any]:
    return {
        "sales": oracle.sales(conn, merchant, **LONG, bucket="month", now=now),
        "customers": oracle.customer_summary(conn, merchant, **LONG, now=now),
        "inventory": oracle.inventory_status(conn, merchant, now=now),
    }


@pytest.fixture(scope="module")
def changed(
    make_source: Callable[[str], str], make_store: Callable[[str], Store]
) -> dict[str, Any]:
    """A small dataset backfilled, changed in the source, and backfilled again."""
    dsn = make_source("changes")
    info = build_dataset(dsn, seed=7, scale=0.3)
    merchant = info.merchants["medium"]
    store = make_store("changes")
    backfill(store, dsn)
    before = _answers(store, merchant, info.now)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in CHANGES:
            conn.execute(statement, {"m": merchant})
        expected = _oracle(conn, merchant, info.now)
    backfill(store, dsn)
    return {"before": before, "after": _answers(store, merchant, info.now), "oracle": expected}


@pytest.mark.parametrize("metric", ["sales", "customers", "inventory"])
def test_backfill_after_changes_matches_oracle(changed: dict[str, Any], metric: str) -> None:
    """After deletes and updates in the source, a new backfill answers as the oracle does."""
    expected = changed["oracle"][metric]
    assert project(changed["after"][metric], expected) == expected


@pytest.mark.parametrize("metric", ["sales", "customers", "inventory"])
def test_changes_changed_the_answer(changed: dict[str, Any], metric: str) -> None:
    """The changes were big enough to move every answer (so the test above means something)."""
    assert changed["after"][metric] != changed["before"][metric]


def test_counting_pending_orders_would_be_caught(metric_dataset: Any, source: Any) -> None:
    """An oracle that also counts pending orders disagrees with the store; the right one agrees."""
    merchant = metric_dataset.info.merchants["large"]
    now = metric_dataset.now
    got = as_json(
        get_sales(metric_dataset.store, merchant, GetSalesArgs(**LONG, bucket="month"), now)
    )
    right = oracle.sales(source, merchant, **LONG, now=now)
    wrong = oracle.sales(source, merchant, **LONG, now=now, statuses=(*oracle.COUNTED, "pending"))
    assert got["revenue"] == right["revenue"]
    assert got["revenue"] != wrong["revenue"]


def test_deleted_orders_are_gone(metric_dataset: Any, source: Any) -> None:
    """Orders deleted from the source before the backfill are in no answer."""
    deleted = metric_dataset.info.deleted_orders
    found = source.execute("SELECT count(*) FROM orders WHERE id = ANY(%s)", (deleted,))
    stored = metric_dataset.store.query(
        "SELECT count() FROM orders FINAL WHERE has({ids:Array(UUID)}, id)",
        {"ids": [str(d) for d in deleted]},
    )
    assert (len(deleted), found.fetchone()[0], stored[0][0]) == (3, 0, 0)


def test_merchant_info_names_and_currency(metric_dataset: Any) -> None:
    """merchant_info gives the merchant's name and currency."""
    merchant = metric_dataset.info.merchants["edge"]
    assert merchant_info(metric_dataset.store, merchant) == ("edge", "USD")


def test_unknown_merchant_is_not_found(metric_dataset: Any) -> None:
    """A merchant id that does not exist is NOT_FOUND naming merchant_id."""
    with pytest.raises(NotFoundError) as caught:
        get_sales(metric_dataset.store, uuid.uuid4(), GetSalesArgs(), metric_dataset.now)
    assert caught.value.details["argument"] == "merchant_id"
