"""The platform metrics stay exact when orders change after the rollup was built."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from optima_bi_mcp.data.backfill import backfill
from optima_bi_mcp.data.tables import BY_NAME
from optima_bi_mcp.metrics import platform
from optima_bi_mcp.metrics.models import (
    PlatformMerchantsArgs,
    PlatformMrrArgs,
    PlatformOverviewArgs,
    PlatformRevenueArgs,
)
from optima_bi_mcp.store import Store
from optima_bi_mcp.store.rollups import refresh_rollups
from tests.metrics.dataset import NOW, build_dataset
from tests.metrics.dataset_platform import add_platform_rows
from tests.oracle import platform as oracle

ORDER_COLUMNS = BY_NAME["orders"].columns
LAST_MONTH = (NOW.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
# Two whole months back to yesterday: monthly and daily rollup rows both answer.
SPAN = ((NOW - timedelta(days=70)).date().replace(day=1), (NOW - timedelta(days=1)).date())
SELECT_ORDERS = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE id = ANY(%s)"


@dataclass
class Env:
    store: Store
    dsn: str
    pg: psycopg.Connection[Any]
    now: datetime
    version: int


@pytest.fixture
def env(make_source: Any, make_store: Any) -> Iterator[Env]:
    """A fresh source and store per test, since these tests change both."""
    dsn = make_source("platform_rollup")
    info = build_dataset(dsn, seed=11, scale=0.3)
    with psycopg.connect(dsn, autocommit=True) as conn:
        add_platform_rows(conn, info, random.Random(12))
    store = make_store("platform_rollup")
    report = backfill(store, dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield Env(store, dsn, conn, info.now, report.version)


def _answers(env: Env) -> list[dict[str, Any]]:
    """Overview of this and last month, every merchant, and revenue periods, as JSON."""
    overview = [
        platform.platform_overview(env.store, PlatformOverviewArgs(month=m), env.now)
        for m in (None, LAST_MONTH)
    ]
    merchants = platform.platform_merchants(env.store, PlatformMerchantsArgs(limit=500), env.now)
    revenue = [
        platform.platform_revenue(env.store, PlatformRevenueArgs(breakdown=True, **p), env.now)
        for p in ({"days": 45}, {"start": SPAN[0], "end": SPAN[1]})
    ]
    answers = [r.model_dump(mode="json") for r in (*overview, merchants, *revenue)]
    answers[2].pop("next_cursor")
    return answers


def _oracle(env: Env) -> list[dict[str, Any]]:
    return [
        oracle.platform_overview(env.pg, None, env.now),
        oracle.platform_overview(env.pg, LAST_MONTH, env.now),
        oracle.platform_merchants(env.pg, "top", "gmv_30d", env.now),
        oracle.platform_revenue(env.pg, None, None, 45, True, env.now),
        oracle.platform_revenue(env.pg, *SPAN, None, True, env.now),
    ]


def _pick(env: Env, status_sql: str, lo: datetime, hi: datetime, n: int) -> list[tuple[Any, ...]]:
    """n orders in [lo, hi) matching a status condition, as full source rows."""
    rows = env.pg.execute(
        f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders "
        f"WHERE {status_sql} AND created_at >= %s AND created_at < %s ORDER BY id LIMIT %s",
        (lo, hi, n),
    ).fetchall()
    assert len(rows) == n
    return rows


def _change_source(env: Env) -> tuple[list[UUID], list[tuple[Any, ...]]]:
    """Pay, refund, delete and insert orders in PostgreSQL on edge and whole days.

    Returns the ids updated or inserted and the rows deleted (as they were), so
    the same change can be written to the store as the CDC sink would.
    """
    now = env.now
    pending = _pick(env, "status = 'pending'", now - 70 * timedelta(days=1), now, 4)
    paid = _pick(env, "status = 'paid'", now - 40 * timedelta(days=1), now, 3)
    doomed = _pick(env, "status = 'completed'", now - 60 * timedelta(days=1), now, 3)
    merchant = pending[0][1]

    env.pg.execute(
        "UPDATE orders SET status = 'paid' WHERE id = ANY(%s)", ([r[0] for r in pending],)
    )
    env.pg.execute(
        "UPDATE orders SET status = 'refunded' WHERE id = ANY(%s)", ([r[0] for r in paid],)
    )
    env.pg.execute("DELETE FROM orders WHERE id = ANY(%s)", ([r[0] for r in doomed],))
    new_ids = [uuid4() for _ in range(3)]
    for oid, at in zip(
        new_ids,
        [now - timedelta(minutes=5), now - timedelta(days=30), now - timedelta(days=45)],
        strict=True,
    ):
        env.pg.execute(
            "INSERT INTO orders (id, merchant_id, order_number, customer_email, status, currency, "
            "amount_total, platform_fee, created_at, updated_at) "
            "VALUES (%s, %s, %s, 'x@example.com', 'paid', 'USD', %s, %s, %s, %s)",
            (oid, merchant, f"CDC-{oid.hex[:8]}", Decimal("777.77"), Decimal("7.77"), at, at),
        )
    changed = [r[0] for r in pending + paid] + new_ids
    return changed, doomed


def _apply_to_store(env: Env, changed: list[UUID], deleted: list[tuple[Any, ...]]) -> set[Any]:
    """Write the source's new rows and deletions as newer versions; returns touched keys."""
    version = env.version + 1_000
    rows = env.pg.execute(SELECT_ORDERS, (changed,)).fetchall()
    store_rows = [(*r, version, 0) for r in rows] + [(*r, version, 1) for r in deleted]
    env.store.insert("orders", store_rows, BY_NAME["orders"].store_columns)
    return {(r[1], r[8].astimezone(UTC).date()) for r in store_rows}


def test_platform_metrics_exact_after_changes_and_another_backfill(env: Env) -> None:
    """Updates, deletes and inserts in the source, then a backfill: answers equal the oracle."""
    _change_source(env)
    backfill(env.store, env.dsn)
    assert _answers(env) == _oracle(env)


def test_platform_metrics_wrong_until_touched_keys_are_refreshed(env: Env) -> None:
    """New latest-state versions alone leave the rollup stale; refreshing their keys fixes it."""
    changed, deleted = _change_source(env)
    keys = _apply_to_store(env, changed, deleted)
    assert _answers(env) != _oracle(env)

    refresh_rollups(env.store, keys)
    assert _answers(env) == _oracle(env)


def test_platform_metrics_exact_after_redelivered_changes(env: Env) -> None:
    """The same change batch applied and refreshed twice leaves the answers exact."""
    changed, deleted = _change_source(env)
    for _ in range(2):
        keys = _apply_to_store(env, changed, deleted)
        refresh_rollups(env.store, keys)
    assert _answers(env) == _oracle(env)


_SOURCE_COUNTED = """
SELECT merchant_id::text, {bucket}::date, count(*), sum(amount_total), sum(platform_fee)
FROM orders WHERE status IN ('paid', 'shipped', 'delivered', 'completed')
GROUP BY 1, 2
"""
_SOURCE_DAYS = _SOURCE_COUNTED.format(bucket="(created_at AT TIME ZONE 'UTC')")
_SOURCE_MONTHS = _SOURCE_COUNTED.format(bucket="date_trunc('month', created_at AT TIME ZONE 'UTC')")


def _rollup(env: Env, table: str, key: str) -> set[tuple[Any, ...]]:
    rows = env.store.query(
        f"SELECT toString(merchant_id), {key}, orders, gmv, platform_fees "
        f"FROM {table} FINAL WHERE orders > 0"
    )
    return {tuple(r) for r in rows}


def test_rollups_equal_the_source_after_refreshing_touched_keys(env: Env) -> None:
    """merchant_daily and merchant_monthly equal the source's counts after a refreshed change."""
    changed, deleted = _change_source(env)
    refresh_rollups(env.store, _apply_to_store(env, changed, deleted))
    days = {tuple(r) for r in env.pg.execute(_SOURCE_DAYS).fetchall()}
    months = {tuple(r) for r in env.pg.execute(_SOURCE_MONTHS).fetchall()}
    assert _rollup(env, "merchant_daily", "day") == days
    assert _rollup(env, "merchant_monthly", "month") == months


SUBSCRIPTION_COLUMNS = BY_NAME["subscriptions"].columns
SELECT_SUBSCRIPTIONS = (
    f"SELECT {', '.join(SUBSCRIPTION_COLUMNS)} FROM subscriptions WHERE id = ANY(%s)"
)


def _subscription_answers(env: Env) -> list[dict[str, Any]]:
    """MRR of this and last month and 45 days of revenue, as JSON."""
    mrr = [
        platform.platform_mrr(env.store, PlatformMrrArgs(month=m), env.now)
        for m in (None, LAST_MONTH)
    ]
    revenue = platform.platform_revenue(
        env.store, PlatformRevenueArgs(days=45, breakdown=True), env.now
    )
    return [r.model_dump(mode="json") for r in (*mrr, revenue)]


def _subscription_oracle(env: Env) -> list[dict[str, Any]]:
    return [
        oracle.platform_mrr(env.pg, None, env.now),
        oracle.platform_mrr(env.pg, LAST_MONTH, env.now),
        oracle.platform_revenue(env.pg, None, None, 45, True, env.now),
    ]


def _change_subscriptions(env: Env) -> tuple[list[UUID], list[tuple[Any, ...]]]:
    """Cancel, re-price, delete and add paid subscriptions in PostgreSQL.

    Returns the ids updated or inserted and the rows deleted (as they were).
    """
    cancel, reprice, doomed = env.pg.execute(
        f"SELECT {', '.join(SUBSCRIPTION_COLUMNS)} FROM subscriptions "
        "WHERE plan <> 'free' AND amount > 0 AND canceled_at IS NULL "
        "ORDER BY started_at, id LIMIT 3"
    ).fetchall()
    env.pg.execute(
        "UPDATE subscriptions SET status = 'canceled', canceled_at = %s WHERE id = %s",
        (env.now - timedelta(days=10), cancel[0]),
    )
    env.pg.execute(
        "UPDATE subscriptions SET amount = amount + 50, billing_interval = 'year' WHERE id = %s",
        (reprice[0],),
    )
    env.pg.execute("DELETE FROM subscriptions WHERE id = %s", (doomed[0],))
    added = uuid4()
    started = env.now - timedelta(days=20)
    env.pg.execute(
        "INSERT INTO subscriptions (id, merchant_id, plan, status, billing_interval, amount, "
        "started_at, created_at, updated_at) "
        "VALUES (%s, %s, 'enterprise', 'active', 'month', 499.99, %s, %s, %s)",
        (added, cancel[1], started, started, started),
    )
    return [cancel[0], reprice[0], added], [doomed]


def test_subscription_metrics_exact_after_changes(env: Env) -> None:
    """Canceled, re-priced, deleted and new subscriptions as newer versions: MRR and revenue
    equal the oracle (a read that missed FINAL would count the old versions too)."""
    before = _subscription_answers(env)
    changed, deleted = _change_subscriptions(env)
    version = env.version + 1_000
    rows = env.pg.execute(SELECT_SUBSCRIPTIONS, (changed,)).fetchall()
    store_rows = [(*r, version, 0) for r in rows] + [(*r, version, 1) for r in deleted]
    env.store.insert("subscriptions", store_rows, BY_NAME["subscriptions"].store_columns)

    after = _subscription_answers(env)
    assert after == _subscription_oracle(env)
    assert after != before
