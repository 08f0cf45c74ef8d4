"""Platform rows added to the metric dataset: merchants, subscriptions and transfers.

`add_platform_rows(conn, info, rng)` runs after the orders dataset is written. It
adds merchants in every platform segment (created this month, long ago without
orders, sleeping, churned, tied on GMV, orders exactly on the 30/60/90-day
edges, one order after NOW), subscriptions in every shape METRICS.md
distinguishes (free, zero amount, monthly and yearly billing, trials ending
before and after NOW, canceled during the trial, upgrades and downgrades where
the old row's canceled_at is the new row's started_at, cancellations,
reactivations after a gap, rows canceled exactly at a month start), and
transfers of every status across fifteen months.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

DAY = timedelta(days=1)
MICRO = timedelta(microseconds=1)

# Ids whose order as text differs from their order as ClickHouse UUIDs.
TIE_A = uuid.UUID("20000000-0000-4000-8000-f00000000000")
TIE_B = uuid.UUID("e0000000-0000-4000-8000-100000000000")


def month_start(instant: datetime, shift: int = 0) -> datetime:
    index = instant.year * 12 + instant.month - 1 + shift
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass
class PlatformRows:
    rng: random.Random
    now: datetime
    merchants: list[tuple[Any, ...]] = field(default_factory=list)
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    subscriptions: list[tuple[Any, ...]] = field(default_factory=list)
    transfers: list[tuple[Any, ...]] = field(default_factory=list)
    roles: dict[str, uuid.UUID] = field(default_factory=dict)

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def merchant(self, role: str, created_at: datetime, mid: uuid.UUID | None = None) -> uuid.UUID:
        mid = mid or self.uid()
        row = (mid, f"p-{role}", f"owner@{role}.test", "DE", "USD", "active", created_at)
        self.merchants.append((*row, created_at))
        self.roles[role] = mid
        return mid

    def order(self, mid: uuid.UUID, at: datetime, total: str, status: str = "paid") -> None:
        amount = Decimal(total)
        fee = (amount * Decimal("0.035")).quantize(Decimal("0.01"))
        number = f"P{len(self.orders):06d}"
        row = (self.uid(), mid, number, "buyer@example.com", status, "USD", amount, fee, at)
        self.orders.append((*row, at))

    def subscription(
        self,
        mid: uuid.UUID,
        plan: str,
        amount: str,
        started: datetime,
        *,
        interval: str = "month",
        trial_ends: datetime | None = None,
        canceled: datetime | None = None,
    ) -> None:
        status = "canceled" if canceled else ("trialing" if trial_ends else "active")
        created = min(started, self.now)
        self.subscriptions.append(
            (self.uid(), mid, plan, status, interval, Decimal(amount), started, trial_ends,
             canceled, created, created)
        )  # fmt: skip

    def transfer(self, mid: uuid.UUID, at: datetime, amount: Decimal, status: str) -> None:
        self.transfers.append((self.uid(), mid, amount, status, at, at))


def add_platform_rows(conn: psycopg.Connection[Any], info: Any, rng: random.Random) -> None:
    """Add the platform rows to the source behind `conn`, relative to `info.now`.

    `info.merchants` (the orders dataset's merchants) get random plan histories
    and transfers; the new merchants are named `p-<role>` and `info` is left as is.
    """
    rows = PlatformRows(rng, info.now)
    _segment_merchants(rows)
    _subscription_shapes(rows)
    existing = [m for m in info.merchants.values() if m not in rows.roles.values()]
    _random_subscriptions(rows, existing)
    _random_transfers(rows, existing + list(rows.roles.values()))
    _write(conn, rows)


def _segment_merchants(w: PlatformRows) -> None:
    now = w.now
    w.merchant("fresh", month_start(now) + (now - month_start(now)) / 2)
    w.merchant("fresh_last_month", month_start(now, -1) + 3 * DAY)
    w.merchant("dormant", now - 400 * DAY)
    w.merchant("recent_no_orders", now - 89 * DAY)

    sleeping = w.merchant("sleeping", now - 300 * DAY)
    w.order(sleeping, now - 30 * DAY - MICRO, "120.00")
    w.order(sleeping, now - 61 * DAY, "80.00")
    w.order(sleeping, now - 10 * DAY, "55.00", status="pending")
    w.order(sleeping, now - 5 * DAY, "55.00", status="refunded")

    active_edge = w.merchant("active_edge", now - 300 * DAY)
    w.order(active_edge, now - 30 * DAY, "64.00")

    sleeping_edge = w.merchant("sleeping_edge", now - 300 * DAY)
    w.order(sleeping_edge, now - 90 * DAY, "10.00")

    churned = w.merchant("churned", now - 500 * DAY)
    w.order(churned, now - 90 * DAY - MICRO, "300.00")
    w.order(churned, now - 400 * DAY, "20.00")
    w.order(churned, now - 20 * DAY, "99.00", status="cancelled")

    edges = w.merchant("edges", now - 700 * DAY)
    for at, total in [
        (now - 30 * DAY, "100.01"),
        (now - 30 * DAY - MICRO, "40.00"),
        (now - 60 * DAY, "33.33"),
        (now - 60 * DAY - MICRO, "999.99"),
        (now - MICRO, "1.00"),
        (datetime(now.year, now.month, now.day, tzinfo=UTC), "2.50"),
        (now + 2 * 3600 * timedelta(seconds=1), "500.00"),
        (now - 45 * DAY, "17.17"),
    ]:
        w.order(edges, at, total)

    # Equal GMV in both windows: ties on gmv_30d and on growth_pct, broken by id text.
    for role, mid in (("tie_a", TIE_A), ("tie_b", TIE_B)):
        w.merchant(role, now - 200 * DAY, mid)
        w.order(mid, now - 3 * DAY, "250.00")
        w.order(mid, now - 40 * DAY, "200.00")

    growing = w.merchant("growing", now - 200 * DAY)
    for day in range(1, 60, 3):
        w.order(growing, now - day * DAY - w.rng.randrange(86400) * timedelta(seconds=1), "12.34")


def _subscription_shapes(w: PlatformRows) -> None:
    """One merchant per MRR movement, placed around the current and earlier months."""
    m0, m1, m12 = month_start(w.now), month_start(w.now, -1), month_start(w.now, -12)
    r = w.roles

    w.subscription(r["dormant"], "free", "0.00", m0 - 600 * DAY)
    w.subscription(r["fresh"], "pro", "0.00", m0 + DAY)
    w.subscription(r["growing"], "pro", "49.00", m0 - 430 * DAY, canceled=m0 + 20 * DAY)

    # Upgrade and a scheduled cancellation this month, downgrades last month and this month.
    w.subscription(r["edges"], "pro", "49.00", m0 - 150 * DAY, canceled=m0 + 2 * DAY)
    w.subscription(r["edges"], "enterprise", "299.00", m0 + 2 * DAY)
    w.subscription(
        r["sleeping"], "enterprise", "2990.00", m12 - 20 * DAY, interval="year",
        canceled=m1 + 5 * DAY,
    )  # fmt: skip
    w.subscription(r["sleeping"], "pro", "49.00", m1 + 5 * DAY, canceled=m0 + 10 * DAY)
    w.subscription(r["sleeping"], "pro", "29.00", m0 + 10 * DAY)

    # Cancellation last month; cancellation exactly at this month's start.
    w.subscription(r["churned"], "pro", "29.00", m0 - 250 * DAY, canceled=m1 + 15 * DAY)
    w.subscription(r["sleeping_edge"], "pro", "1000.01", m12 + 3 * DAY, interval="year",
                   canceled=m0)  # fmt: skip

    # Reactivation after a gap, and a paid start after a trial canceled during the trial.
    w.subscription(r["tie_a"], "pro", "49.00", m0 - 300 * DAY, canceled=m0 - 180 * DAY)
    w.subscription(r["tie_a"], "pro", "59.00", m0 + 3 * DAY)
    w.subscription(
        r["tie_b"], "pro", "49.00", m0 - 90 * DAY, trial_ends=m0 - 60 * DAY,
        canceled=m0 - 70 * DAY,
    )  # fmt: skip
    w.subscription(r["tie_b"], "pro", "49.00", m0 + 4 * DAY)

    # Trials: one already billing, one still trialing at the month's end, one starting at e.
    w.subscription(r["fresh_last_month"], "pro", "99.00", m1 + 4 * DAY, trial_ends=m1 + 18 * DAY)
    w.subscription(r["recent_no_orders"], "enterprise", "1999.99", m0 - 10 * DAY,
                   interval="year", trial_ends=month_start(w.now, 2))  # fmt: skip
    w.subscription(r["recent_no_orders"], "pro", "10.00", month_start(w.now, 1))
    w.subscription(r["fresh"], "pro", "49.00", m0 + DAY, canceled=m0 + DAY)


def _random_subscriptions(w: PlatformRows, merchants: list[uuid.UUID]) -> None:
    """A plan history per merchant: start, maybe upgrades, downgrades, a gap, a cancel."""
    plans = {"free": ["0.00"], "pro": ["29.00", "49.00"], "enterprise": ["299.00", "2999.99"]}
    for mid in merchants:
        at = w.now - w.rng.uniform(30, 800) * DAY
        for _ in range(w.rng.randint(1, 4)):
            plan = w.rng.choice(list(plans))
            interval = w.rng.choice(["month", "year"])
            amount = w.rng.choice(plans[plan])
            trial = at + 14 * DAY if w.rng.random() < 0.3 else None
            length = w.rng.uniform(20, 300) * DAY
            end = at + length if w.rng.random() < 0.7 else None
            w.subscription(mid, plan, amount, at, interval=interval, trial_ends=trial, canceled=end)
            if end is None:
                break
            at = end if w.rng.random() < 0.7 else end + w.rng.uniform(10, 90) * DAY


def _random_transfers(w: PlatformRows, merchants: list[uuid.UUID]) -> None:
    for mid in merchants:
        for _ in range(w.rng.randint(2, 8)):
            at = w.now - w.rng.uniform(0, 450) * DAY
            amount = Decimal(w.rng.randint(100, 500_000)) / 100
            w.transfer(mid, at, amount, w.rng.choice(["pending", "paid", "paid", "failed"]))
    edges = w.roles["edges"]
    m0 = month_start(w.now)
    w.transfer(edges, m0, Decimal("10.00"), "paid")
    w.transfer(edges, m0 - MICRO, Decimal("20.00"), "failed")


def _write(conn: psycopg.Connection[Any], w: PlatformRows) -> None:
    statements = [
        ("merchants", "id, name, email, country, currency, status, created_at, updated_at", 8),
        (
            "orders",
            "id, merchant_id, order_number, customer_email, status, currency, amount_total, "
            "platform_fee, created_at, updated_at",
            10,
        ),
        (
            "subscriptions",
            "id, merchant_id, plan, status, billing_interval, amount, started_at, trial_ends_at, "
            "canceled_at, created_at, updated_at",
            11,
        ),
        ("transfers", "id, merchant_id, amount, status, created_at, updated_at", 6),
    ]
    with conn.cursor() as cur:
        for table, columns, width in statements:
            marks = ", ".join(["%s"] * width)
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", getattr(w, table))
    if not conn.autocommit:
        conn.commit()
