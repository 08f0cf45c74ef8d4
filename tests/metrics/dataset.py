"""A deterministic, adversarial commerce dataset for comparing metrics with the oracle.

`build_dataset(dsn, seed)` writes merchants of different sizes into a source
database: random orders over two years before a fixed NOW with every status,
customer e-mails that differ only in case and whitespace, guests, products in
every stock state, and an `edge` merchant with hand-placed rows: orders at local
day, week and month boundaries in New York, Kolkata and Berlin (DST switches
included), equal-revenue products whose ids sort differently as text and as
ClickHouse UUIDs, equal-ltv customers, a half-cent average, churn exactly at the
cut-off, and inventory exactly at each status boundary. A few rows are deleted
at the end, as the source does.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

NOW = datetime(2026, 11, 3, 14, 27, 13, 500000, tzinfo=UTC)
COUNTED = ("paid", "shipped", "delivered", "completed")
STATUS_WEIGHTS = {
    "paid": 30,
    "shipped": 12,
    "delivered": 14,
    "completed": 22,
    "pending": 8,
    "cancelled": 8,
    "refunded": 6,
}
NY, KOLKATA, BERLIN = (ZoneInfo(z) for z in ("America/New_York", "Asia/Kolkata", "Europe/Berlin"))

# role: (customers, products, orders)
SIZES = {
    "large": (120, 40, 1500),
    "medium": (45, 18, 400),
    "small": (6, 5, 25),
    "empty": (0, 4, 0),
    "neighbour": (30, 10, 200),
}

# Product ids that sort one way as text and the other way as ClickHouse UUIDs,
# which compare the second half of the value before the first.
TIE_LOW_TEXT = uuid.UUID("10000000-0000-4000-8000-f00000000000")
TIE_HIGH_TEXT = uuid.UUID("f0000000-0000-4000-8000-100000000000")


@dataclass
class DatasetInfo:
    """What tests need to know about the dataset: ids by role and the fixed NOW."""

    now: datetime
    merchants: dict[str, uuid.UUID]
    products: dict[str, uuid.UUID] = field(default_factory=dict)
    deleted_orders: list[uuid.UUID] = field(default_factory=list)
    seed: int = 0


@dataclass
class _Writer:
    rng: random.Random
    merchants: list[tuple[Any, ...]] = field(default_factory=list)
    customers: list[tuple[Any, ...]] = field(default_factory=list)
    products: list[tuple[Any, ...]] = field(default_factory=list)
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    numbers: dict[uuid.UUID, int] = field(default_factory=dict)

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def merchant(self, name: str, created_at: datetime) -> uuid.UUID:
        mid = self.uid()
        email = f"owner@{name}.test"
        self.merchants.append((mid, name, email, "US", "USD", "active", created_at, created_at))
        return mid

    def product(self, mid: uuid.UUID, sku: str, price: str, stock: int, **kw: Any) -> uuid.UUID:
        pid = kw.get("pid") or self.uid()
        created = NOW - timedelta(days=800)
        row = (
            pid,
            mid,
            sku,
            kw.get("name", f"Product {sku}"),
            kw.get("category", "general"),
            Decimal(price),
            None,
            stock,
            kw.get("threshold", 10),
            kw.get("status", "active"),
            created,
            created,
        )
        self.products.append(row)
        return pid

    def order(
        self,
        mid: uuid.UUID,
        email: str,
        created_at: datetime,
        lines: list[tuple[uuid.UUID, int, Decimal]],
        status: str = "paid",
        extra: Decimal = Decimal("0.00"),
    ) -> uuid.UUID:
        oid = self.uid()
        self.numbers[mid] = self.numbers.get(mid, 0) + 1
        total = sum((q * p for _, q, p in lines), Decimal("0.00")) + extra
        fee = (total * Decimal("0.029")).quantize(Decimal("0.01"))
        number = f"N{self.numbers[mid]:06d}"
        updated = created_at + timedelta(hours=1)
        self.orders.append(
            (oid, mid, number, email, status, "USD", total, fee, created_at, updated)
        )
        for pid, qty, price in lines:
            self.items.append((self.uid(), oid, mid, pid, qty, price, qty * price, created_at))
        return oid


def build_dataset(dsn: str, seed: int, scale: float = 1.0) -> DatasetInfo:
    """Write the dataset into the (empty) source database at `dsn`; deterministic in seed."""
    writer = _Writer(random.Random(seed))
    info = DatasetInfo(now=NOW, merchants={}, seed=seed)
    shared_emails = [f"shopper{i}@example.com" for i in range(40)]
    for role, (n_customers, n_products, n_orders) in SIZES.items():
        mid = writer.merchant(role, NOW - timedelta(days=900))
        info.merchants[role] = mid
        sizes = (n_customers, n_products, max(int(n_orders * scale), 0 if not n_orders else 5))
        _random_merchant(writer, mid, role, shared_emails, *sizes)
    info.merchants["edge"] = writer.merchant("edge", NOW - timedelta(days=900))
    _edge_merchant(writer, info)

    with psycopg.connect(dsn, autocommit=True) as conn:
        _insert(conn, writer)
        info.deleted_orders = _delete_some(conn, writer, info)
    return info


def _random_merchant(
    w: _Writer,
    mid: uuid.UUID,
    role: str,
    shared: list[str],
    n_customers: int,
    n_products: int,
    n_orders: int,
) -> None:
    rng = w.rng
    emails = _customers(w, mid, role, shared, n_customers)
    products = [_random_product(w, mid, role, i) for i in range(n_products)]
    # The last fifth of the catalogue never sells.
    sellable = products[: max(1, n_products * 4 // 5)]
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    for _ in range(n_orders):
        email = _spelling(rng, rng.choice(emails)) if rng.random() > 0.15 else _guest(rng)
        created = NOW - timedelta(days=730 * rng.random() ** 2, microseconds=rng.randrange(10**6))
        lines = [
            (pid, rng.randint(1, 5), price)
            for pid, price in rng.sample(sellable, k=min(len(sellable), rng.randint(1, 4)))
        ]
        extra = rng.choice([Decimal("0.00"), Decimal("4.99")])
        w.order(mid, email, created, lines, rng.choices(statuses, weights)[0], extra)


def _customers(w: _Writer, mid: uuid.UUID, role: str, shared: list[str], n: int) -> list[str]:
    emails = shared[:n] if role == "neighbour" else [f"{role}.c{i}@example.com" for i in range(n)]
    if role == "large":
        emails[: len(shared) // 2] = shared[: len(shared) // 2]
    for email in emails:
        when = NOW - timedelta(days=760)
        w.customers.append((w.uid(), mid, email, email.split("@")[0], when, when))
    return emails or ["nobody@example.com"]


def _random_product(w: _Writer, mid: uuid.UUID, role: str, i: int) -> tuple[uuid.UUID, Decimal]:
    rng = w.rng
    threshold = rng.choice([0, 5, 10, 10, 25])
    stock = rng.choice([-4, 0, threshold, threshold + 1, rng.randint(0, 60), 900])
    price = Decimal(rng.randint(199, 19999)) / 100
    status = "archived" if rng.random() < 0.15 else "active"
    category = rng.choice(["apparel", "home", "toys", "books"])
    pid = w.product(
        mid,
        f"{role[:2].upper()}-{i:03d}",
        str(price),
        stock,
        threshold=threshold,
        status=status,
        category=category,
    )
    return pid, price


def _spelling(rng: random.Random, email: str) -> str:
    """The same customer as a storefront might have typed it (case and spaces only)."""
    return rng.choice(
        [email, email, email, email.upper(), email.title(), f"  {email} ", f" {email}"]
    )


def _guest(rng: random.Random) -> str:
    return f"guest{rng.randint(0, 15)}@mail.test"


def _edge_merchant(w: _Writer, info: DatasetInfo) -> None:
    mid = info.merchants["edge"]
    products = _edge_products(w, mid)
    info.products.update(products)
    _boundary_orders(w, mid, products["bound"])
    _tie_orders(w, mid, products)
    _customer_orders(w, mid, products["bound"])
    _inventory_orders(w, mid, products)


def _edge_products(w: _Writer, mid: uuid.UUID) -> dict[str, uuid.UUID]:
    specs = {
        # name: (sku, price, stock, threshold, status)
        "tie_low_text": ("E-TIE-A", "12.50", 30, 10, "active"),
        "tie_high_text": ("E-TIE-B", "12.50", 30, 10, "active"),
        "tie_double": ("E-TIE-C", "25.00", 30, 10, "active"),
        "bound": ("E-BOUND", "1.00", 500, 10, "archived"),
        "out_negative": ("E-OUT-NEG", "5.00", -5, 10, "active"),
        "out_zero": ("E-OUT-ZERO", "5.00", 0, 10, "active"),
        "low_at_threshold": ("E-LOW-EQ", "5.00", 10, 10, "active"),
        "idle_above_threshold": ("E-OVER-IDLE", "5.00", 11, 10, "active"),
        "cover_180": ("E-COVER-180", "5.00", 60, 10, "active"),
        "cover_181": ("E-COVER-181", "5.00", 61, 10, "active"),
        "reorder": ("E-REORDER", "5.00", 3, 2, "active"),
        "window": ("E-WINDOW", "5.00", 20, 10, "active"),
        "archived_zero": ("E-ARCHIVED", "5.00", 0, 10, "archived"),
    }
    fixed = {"tie_low_text": TIE_LOW_TEXT, "tie_high_text": TIE_HIGH_TEXT}
    return {
        name: w.product(
            mid, sku, price, stock, threshold=threshold, status=status, pid=fixed.get(name)
        )
        for name, (sku, price, stock, threshold, status) in specs.items()
    }


def _local(tz: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=tz, fold=fold).astimezone(UTC)  # type: ignore[misc]


BOUNDARIES = [
    # New York: month end, the fall-back hour twice, spring forward, Sunday/Monday.
    _local(NY, 2026, 9, 30, 23, 30),
    _local(NY, 2026, 10, 1, 0, 30),
    _local(NY, 2026, 11, 1, 0, 30),
    _local(NY, 2026, 11, 1, 1, 30, fold=0),
    _local(NY, 2026, 11, 1, 1, 30, fold=1),
    _local(NY, 2026, 11, 1, 2, 30),
    _local(NY, 2026, 11, 1, 23, 30),
    _local(NY, 2026, 11, 2, 0, 30),
    _local(NY, 2026, 3, 8, 1, 30),
    _local(NY, 2026, 3, 8, 3, 30),
    # Kolkata (+05:30): month end and start.
    _local(KOLKATA, 2026, 9, 30, 23, 30),
    _local(KOLKATA, 2026, 10, 31, 23, 30),
    _local(KOLKATA, 2026, 11, 1, 0, 30),
    # Berlin: the fall-back night, both 02:30s, spring forward, month end.
    _local(BERLIN, 2026, 10, 24, 23, 30),
    _local(BERLIN, 2026, 10, 25, 2, 30, fold=0),
    _local(BERLIN, 2026, 10, 25, 2, 30, fold=1),
    _local(BERLIN, 2026, 10, 26, 0, 30),
    _local(BERLIN, 2026, 3, 29, 1, 30),
    _local(BERLIN, 2026, 3, 29, 3, 30),
    _local(BERLIN, 2026, 9, 30, 23, 30),
    _local(BERLIN, 2026, 10, 1, 0, 30),
    # UTC: the last microsecond of a month and its first instant.
    datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
]


def _boundary_orders(w: _Writer, mid: uuid.UUID, bound: uuid.UUID) -> None:
    """One counted order at every boundary, and an uncounted one beside some of them."""
    skipped = ["pending", "cancelled", "refunded"]
    for i, when in enumerate(BOUNDARIES):
        email = f"bound{i % 5}@edge.test"
        w.order(mid, email, when, [(bound, i + 1, Decimal("1.00"))], extra=Decimal("0.37"))
        if i % 3 == 0:
            status = skipped[i % len(skipped)]
            w.order(mid, email, when, [(bound, 1, Decimal("900.00"))], status=status)


def _tie_orders(w: _Writer, mid: uuid.UUID, p: dict[str, uuid.UUID]) -> None:
    """Three products with equal revenue (two with equal quantity too), days apart."""
    for day in (3, 4):
        when = NOW - timedelta(days=day, hours=2)
        price = Decimal("12.50")
        lines = [(p["tie_high_text"], 2, price), (p["tie_low_text"], 2, price)]
        w.order(mid, "ties@edge.test", when, lines + [(p["tie_double"], 1, Decimal("25.00"))])


def _customer_orders(w: _Writer, mid: uuid.UUID, bound: uuid.UUID) -> None:
    def buy(email: str, when: datetime, amount: str) -> None:
        w.order(mid, email, when, [(bound, 1, Decimal(amount))])

    # Equal ltv (100.00), one of them spelled three ways; both churned by NOW.
    buy("tie1@edge.test", datetime(2026, 6, 1, 12, tzinfo=UTC), "50.00")
    buy(" TIE1@Edge.test ", datetime(2026, 6, 15, 12, tzinfo=UTC), "30.00")
    buy("Tie1@edge.test", datetime(2026, 6, 16, 12, tzinfo=UTC), "20.00")
    buy("tie2@edge.test", datetime(2026, 6, 10, 12, tzinfo=UTC), "100.00")
    # Churn cut-off as of NOW's UTC day: T − 90 days = 2026-08-06T00:00Z exactly.
    buy("cut.exact@edge.test", datetime(2026, 8, 6, tzinfo=UTC), "40.00")
    buy("cut.before@edge.test", datetime(2026, 8, 5, 23, 59, 59, 999999, tzinfo=UTC), "40.00")
    # A half-cent average on a quiet day: (10.00 + 10.05) / 2 = 10.025 -> 10.02.
    buy("round@edge.test", datetime(2026, 10, 20, 12, tzinfo=UTC), "10.00")
    buy("round@edge.test", datetime(2026, 10, 20, 13, tzinfo=UTC), "10.05")
    # A refunded big spender is no customer at all.
    w.order(
        mid,
        "refunded@edge.test",
        datetime(2026, 7, 1, tzinfo=UTC),
        [(bound, 1, Decimal("5000.00"))],
        status="refunded",
    )


def _inventory_orders(w: _Writer, mid: uuid.UUID, p: dict[str, uuid.UUID]) -> None:
    """Sales that put products exactly on the status boundaries as of NOW."""
    five = Decimal("5.00")
    recent = NOW - timedelta(days=2)
    w.order(
        mid, "stock@edge.test", recent, [(p["cover_180"], 10, five), (p["cover_181"], 10, five)]
    )
    w.order(mid, "stock@edge.test", recent, [(p["reorder"], 29, five)])
    w.order(mid, "stock@edge.test", recent, [(p["out_zero"], 4, five)])
    # The 30-day window is [NOW − 30 d, NOW): its first instant counts, NOW does not.
    w.order(mid, "stock@edge.test", NOW - timedelta(days=30), [(p["window"], 5, five)])
    w.order(mid, "stock@edge.test", NOW, [(p["window"], 7, five)])
    w.order(mid, "stock@edge.test", recent, [(p["window"], 9, five)], status="pending")


_INSERTS = {
    "merchants": "INSERT INTO merchants (id, name, email, country, currency, status, "
    "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
    "customers": "INSERT INTO customers (id, merchant_id, email, name, created_at, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, %s)",
    "products": "INSERT INTO products (id, merchant_id, sku, name, category, price, cost, "
    "stock_quantity, low_stock_threshold, status, created_at, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
    "orders": "INSERT INTO orders (id, merchant_id, order_number, customer_email, status, "
    "currency, amount_total, platform_fee, created_at, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
    "items": "INSERT INTO order_items (id, order_id, merchant_id, product_id, quantity, "
    "unit_price, amount, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
}


def _insert(conn: psycopg.Connection[Any], w: _Writer) -> None:
    with conn.cursor() as cur:
        for table, sql in _INSERTS.items():
            cur.executemany(sql, getattr(w, table))


def _delete_some(conn: psycopg.Connection[Any], w: _Writer, info: DatasetInfo) -> list[uuid.UUID]:
    """Hard deletes as the source does them: a few orders, an unsold product, a customer."""
    medium = info.merchants["medium"]
    victims = [o[0] for o in w.orders if o[1] == medium and o[4] in COUNTED][:3]
    conn.execute("DELETE FROM orders WHERE id = ANY(%s)", (victims,))
    conn.execute(
        "DELETE FROM products p WHERE merchant_id = %s AND NOT EXISTS "
        "(SELECT 1 FROM order_items i WHERE i.product_id = p.id)",
        (info.merchants["small"],),
    )
    conn.execute(
        "DELETE FROM customers WHERE id = (SELECT id FROM customers WHERE merchant_id = %s "
        "ORDER BY email LIMIT 1)",
        (medium,),
    )
    return victims
