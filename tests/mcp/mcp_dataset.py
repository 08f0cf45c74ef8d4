"""A small hand-made dataset written straight into a store, with figures known by hand.

Times are relative to the moment of loading, so `days=7` always holds the recent
orders. Merchant A (USD) has counted, pending and refunded orders, an e-mail in
two spellings, a churned customer and products in every stock state; merchant B
(EUR) has one order. Run as a script (`python mcp_dataset.py DSN`) it loads a store
for a server subprocess, which must own its own chDB path.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

MERCHANT_A = uuid.UUID("a0000000-0000-4000-8000-00000000000a")
MERCHANT_B = uuid.UUID("b0000000-0000-4000-8000-00000000000b")
UNKNOWN_MERCHANT = uuid.UUID("c0000000-0000-4000-8000-00000000000c")
P1, P2, P3 = (uuid.UUID(f"d0000000-0000-4000-8000-00000000000{i}") for i in (1, 2, 3))

# get_sales of merchant A over the last 7 days, counted by hand.
A_WEEK = {"revenue": 150.5, "orders": 2, "aov": 75.25, "unique_customers": 2, "platform_fees": 4.5}


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def load(store, now: datetime | None = None) -> datetime:  # type: ignore[no-untyped-def]
    """Write the dataset into `store` and rebuild its rollup; returns the `now` used."""
    from optima_bi_mcp.store.rollups import rebuild_rollups

    now = now or datetime.now(UTC)
    old = now - timedelta(days=400)

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    store.insert(
        "merchants",
        [
            (MERCHANT_A, "Alpha Shop", "a@alpha.test", "US", "USD", "active", old, old, 1, 0),
            (MERCHANT_B, "Beta Laden", "b@beta.test", "DE", "EUR", "active", old, old, 1, 0),
        ],
        ["id", "name", "email", "country", "currency", "status", "created_at", "updated_at"]
        + ["_version", "_is_deleted"],
    )
    products = [
        (P1, MERCHANT_A, "SKU-1", "Mug", "kitchen", Decimal("30.00"), None, 100, 10),
        (P2, MERCHANT_A, "SKU-2", "Plate", "kitchen", Decimal("12.00"), None, 0, 5),
        (P3, MERCHANT_A, "SKU-3", "Lamp", "home", Decimal("40.00"), None, 5, 10),
    ]
    store.insert(
        "products",
        [(*p, "active", old, old, 1, 0) for p in products],
        ["id", "merchant_id", "sku", "name", "category", "price", "cost", "stock_quantity"]
        + ["low_stock_threshold", "status", "created_at", "updated_at", "_version", "_is_deleted"],
    )
    orders = [
        (1, MERCHANT_A, "a@x.test", "paid", "USD", "100.00", "3.00", ago(1)),
        (2, MERCHANT_A, "b@x.test", "shipped", "USD", "50.50", "1.50", ago(2)),
        (3, MERCHANT_A, "a@x.test", "pending", "USD", "999.00", "9.00", ago(1)),
        (4, MERCHANT_A, "c@x.test", "completed", "USD", "80.00", "2.00", ago(120)),
        (5, MERCHANT_A, " A@X.test", "delivered", "USD", "20.00", "0.60", ago(10)),
        (6, MERCHANT_A, "b@x.test", "refunded", "USD", "30.00", "0.90", ago(3)),
        (7, MERCHANT_B, "z@y.test", "paid", "EUR", "10.00", "0.30", ago(1)),
    ]
    store.insert(
        "orders",
        [
            (_id(n), m, f"#{n}", e, s, c, Decimal(t), Decimal(f), at, at, 1, 0)
            for n, m, e, s, c, t, f, at in orders
        ],
        ["id", "merchant_id", "order_number", "customer_email", "status", "currency"]
        + ["amount_total", "platform_fee", "created_at", "updated_at", "_version", "_is_deleted"],
    )
    items = [
        (101, 1, P1, 2, "30.00", "60.00", ago(1)),
        (102, 1, P3, 1, "40.00", "40.00", ago(1)),
        (103, 2, P1, 1, "50.50", "50.50", ago(2)),
        (104, 4, P3, 2, "40.00", "80.00", ago(120)),
        (105, 5, P1, 1, "20.00", "20.00", ago(10)),
    ]
    store.insert(
        "order_items",
        [
            (_id(n), _id(o), MERCHANT_A, p, q, Decimal(u), Decimal(a), at, 1, 0)
            for n, o, p, q, u, a, at in items
        ],
        ["id", "order_id", "merchant_id", "product_id", "quantity", "unit_price", "amount"]
        + ["created_at", "_version", "_is_deleted"],
    )
    subscriptions = [
        (201, MERCHANT_A, "pro", "month", "29.00", ago(200)),
        (202, MERCHANT_B, "enterprise", "year", "1200.00", ago(100)),
    ]
    store.insert(
        "subscriptions",
        [
            (_id(n), m, plan, "active", every, Decimal(a), at, None, None, at, at, 1, 0)
            for n, m, plan, every, a, at in subscriptions
        ],
        ["id", "merchant_id", "plan", "status", "billing_interval", "amount", "started_at"]
        + ["trial_ends_at", "canceled_at", "created_at", "updated_at", "_version", "_is_deleted"],
    )
    store.insert(
        "transfers",
        [(_id(301), MERCHANT_A, Decimal("100.00"), "paid", ago(5), ago(5), 1, 0)],
        ["id", "merchant_id", "amount", "status", "created_at", "updated_at", "_version"]
        + ["_is_deleted"],
    )
    rebuild_rollups(store)
    return now


if __name__ == "__main__":
    from optima_bi_mcp.store import open_store

    target = open_store(sys.argv[1])
    load(target)
    target.close()
