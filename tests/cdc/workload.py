"""A seeded commerce source and a random OLTP workload against it, in plain SQL.

Used by the CDC tests and `perf/cdc_latency.py`: every kind of change the
source makes (SOURCE_SCHEMA.md) happens here: new orders with items and stock
moves, status changes (refunds and cancellations included), price and stock
changes, plan changes, transfer status changes, and hard deletes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from optima_bi_mcp.data.backfill import lsn_to_int
from optima_bi_mcp.data.tables import TABLES

NEXT_STATUS = {
    "pending": ("paid", "paid", "cancelled"),
    "paid": ("shipped", "refunded"),
    "shipped": ("delivered", "refunded"),
    "delivered": ("completed", "refunded"),
}
PLANS = {"free": Decimal("0.00"), "pro": Decimal("49.00"), "enterprise": Decimal("499.00")}


def _money(rng: random.Random, lo: int, hi: int) -> Decimal:
    return Decimal(rng.randint(lo * 100, hi * 100)).scaleb(-2)


class Workload:
    """Seeds a source database and applies random transactions to it."""

    def __init__(self, dsn: str, seed: int = 1) -> None:
        self.dsn = dsn
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC)
        self.merchants: list[uuid.UUID] = []
        self.products: dict[uuid.UUID, list[tuple[uuid.UUID, Decimal]]] = {}
        self.orders = 0

    # -- seed ------------------------------------------------------------------

    def seed(self, merchants: int = 12, orders_per_merchant: int = 40) -> None:
        """A modest initial dataset: merchants, products, customers, orders, plans."""
        with psycopg.connect(self.dsn) as conn:
            for _ in range(merchants):
                self._seed_merchant(conn, orders_per_merchant)

    def _seed_merchant(self, conn: psycopg.Connection[Any], orders: int) -> None:
        rng = self.rng
        merchant = uuid.uuid4()
        created = self.now - timedelta(days=rng.randint(100, 400))
        conn.execute(
            "INSERT INTO merchants (id, name, email, country, status, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, 'active', %s, %s)",
            (
                merchant,
                f"shop {merchant.hex[:6]}",
                f"owner@{merchant.hex[:6]}.test",
                "US",
                created,
                created,
            ),
        )
        self.merchants.append(merchant)
        self.products[merchant] = []
        for n in range(8):
            product, price = uuid.uuid4(), _money(rng, 5, 200)
            conn.execute(
                "INSERT INTO products (id, merchant_id, sku, name, category, price, cost, "
                "stock_quantity, status, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                "'active', %s)",
                (
                    product,
                    merchant,
                    f"SKU-{n}",
                    f"product {n}",
                    rng.choice(["a", "b", "c"]),
                    price,
                    price / 2 if n % 3 else None,
                    rng.randint(0, 300),
                    created,
                ),
            )
            self.products[merchant].append((product, price))
        for n in range(5):
            conn.execute(
                "INSERT INTO customers (id, merchant_id, email, name, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (uuid.uuid4(), merchant, f"c{n}@{merchant.hex[:6]}.test", f"c{n}", created),
            )
        self._subscribe(conn, merchant, rng.choice(list(PLANS)), created)
        conn.execute(
            "INSERT INTO transfers (id, merchant_id, amount, status, created_at) "
            "VALUES (%s, %s, %s, 'paid', %s)",
            (uuid.uuid4(), merchant, _money(rng, 10, 2000), created),
        )
        for _ in range(orders):
            self._new_order(conn, merchant, rng.choice(["paid", "completed", "pending"]))

    # -- transactions ----------------------------------------------------------

    def run(self, transactions: int, each: Callable[[int], None] | None = None) -> None:
        """Apply `transactions` random transactions, each committed on its own."""
        kinds = [
            (self._tx_new_order, 40),
            (self._tx_status, 25),
            (self._tx_stock, 10),
            (self._tx_plan, 5),
            (self._tx_transfer, 10),
            (self._tx_delete, 5),
            (self._tx_merchant, 5),
        ]
        funcs, weights = zip(*kinds, strict=True)
        with psycopg.connect(self.dsn) as conn:
            for n in range(transactions):
                tx = self.rng.choices(funcs, weights)[0]
                with conn.transaction():
                    tx(conn, self.rng.choice(self.merchants))
                if each is not None:
                    each(n)

    def new_order(self, conn: psycopg.Connection[Any]) -> uuid.UUID:
        """One committed order placed now (the perf script's unit of work)."""
        with conn.transaction():
            merchant = self.rng.choice(self.merchants)
            return self._new_order(conn, merchant, "paid", datetime.now(UTC))

    def _new_order(
        self,
        conn: psycopg.Connection[Any],
        merchant: uuid.UUID,
        status: str,
        created: datetime | None = None,
    ) -> uuid.UUID:
        rng = self.rng
        self.orders += 1
        order = uuid.uuid4()
        if created is None:
            created = self.now - timedelta(days=rng.randint(0, 89), seconds=rng.randint(0, 86399))
        # Products in id order: concurrent writers then lock stock rows in one order.
        items = sorted(rng.sample(self.products[merchant], rng.randint(1, 3)))
        quantities = [rng.randint(1, 4) for _ in items]
        total = sum(
            (price * q for (_, price), q in zip(items, quantities, strict=True)), Decimal("0.00")
        )
        conn.execute(
            "INSERT INTO orders (id, merchant_id, order_number, customer_email, status, "
            "amount_total, platform_fee, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                order,
                merchant,
                f"N{self.orders}-{order.hex[:6]}",
                f" C{rng.randint(0, 30)}@x.test ",
                status,
                total,
                (total * Decimal("0.029")).quantize(Decimal("0.01")),
                created,
                created,
            ),
        )
        for (product, price), quantity in zip(items, quantities, strict=True):
            conn.execute(
                "INSERT INTO order_items (id, order_id, merchant_id, product_id, quantity, "
                "unit_price, amount, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    uuid.uuid4(),
                    order,
                    merchant,
                    product,
                    quantity,
                    price,
                    price * quantity,
                    created,
                ),
            )
            conn.execute(
                "UPDATE products SET stock_quantity = stock_quantity - %s, updated_at = now() "
                "WHERE id = %s",
                (quantity, product),
            )
        return order

    def _tx_new_order(self, conn: psycopg.Connection[Any], merchant: uuid.UUID) -> None:
        self._new_order(conn, merchant, self.rng.choice(["pending", "paid", "paid"]))

    def _tx_status(self, conn: psycopg.Connection[Any], merchant: uuid.UUID) -> None:
        row = conn.execute(
            "SELECT id, status FROM orders WHERE merchant_id = %s "
            "AND status IN ('pending', 'paid', 'shipped', 'delivered') "
            "ORDER BY random() LIMIT 1",
            (merchant,),
        ).fetchone()
        if row is None:
            return
        conn.execute(
            "UPDATE orders SET status = %s, updated_at = now() WHERE id = %s",
            (self.rng.choice(NEXT_STATUS[row[1]]), row[0]),
        )

    def _tx_stock(self, conn: psycopg.Connection[Any], merchant: uuid.UUID) -> None:
        product, _ = self.rng.choice(self.products[merchant])
        conn.execute(
            "UPDATE products SET stock_quantity = stock_quantity + %s, "
            "price = price + %s, updated_at = now() WHERE id = %s",
            (self.rng.randint(-20, 60), Decimal("0.01") * self.rng.randint(-50, 50), product),
        )

    def _tx_plan(self, conn: psycopg.Connection[Any], merchant: uuid.UUID) -> None:
        conn.execute(
            "UPDATE subscriptions SET status = 'canceled', canceled_at = now(), "
            "updated_at = now() WHERE merchant_id = %s AND canceled_at IS NULL",
            (merchant,),
        )
        self._subscribe(conn, merchant, self.rng.choice(list(PLANS)), datetime.now(UTC))

    def _subscribe(
        self, conn: psycopg.Connection[Any], merchant: uuid.UUID, plan: str, start: datetime
    ) -> None:
        trial = start + timedelta(days=14) if self.rng.random() < 0.5 else None
        conn.execute(
            "INSERT INTO subscriptions (id, merchant_id, plan, status, billing_interval, "
            "amount, started_at, trial_ends_at, created_at) "
            "VALUES (%s, %s, %s, 'active', %s, %s, %s, %s, %s)",
            (
                uuid.uuid4(),
                merchant,
                plan,
                self.rng.choice(["month", "year"]),
                PLANS[plan],
                start,
                trial,
                start,
            ),
        )

    def _tx_transfer(self, conn: psycopg.Connection[Any], merchant: uuid.UUID) -> None:
        row = conn.execute(
            "SELECT id FROM transfers WHERE merchant_id = %s AND status = 'pending' LIMIT 1",
            (merchant,),
        ).fetchone()
        if row is None or self.rng.random() < 0.4:
            conn.execute(
                "INSERT INTO transfers (id, merchant_id, amount, status) "
                "VALUES (%s, %s, %s, 'pending')",
                (uuid.uuid4(), merchant, _money(self.rng, 10, 2000)),
            )
            return
        conn.execute(
            "UPDATE transfers SET status = %s, updated_at = now() WHERE id = %s",
            (self.rng.choice(["paid", "paid", "failed"]), row[0]),
        )

    def _tx_delete(self, conn: psycopg.Connection[Any], merchant: uuid.UUID) -> None:
        # A hard delete: the order's items go with it (ON DELETE CASCADE).
        conn.execute(
            "DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE merchant_id = %s "
            "ORDER BY random() LIMIT 1)",
            (merchant,),
        )

    def _tx_merchant(self, conn: psycopg.Connection[Any], merchant: uuid.UUID) -> None:
        conn.execute(
            "UPDATE merchants SET name = %s, updated_at = now() WHERE id = %s",
            (f"shop {self.rng.randint(0, 10**6)}", merchant),
        )


def mark(dsn: str) -> int:
    """Touch one row of every table after everything before; returns an LSN below the marks.

    Each table's change topic then carries an event at or above the returned
    LSN, so a sink whose applied LSN reached it on every table has applied
    everything committed before this call.
    """
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        for table in TABLES:
            column = table.columns[1]
            conn.execute(
                f"UPDATE {table.name} SET {column} = {column} "
                f"WHERE id = (SELECT id FROM {table.name} ORDER BY id LIMIT 1)"
            )
    return lsn_to_int(row[0])
