"""Keeping the order rollups exact by recomputing the keys a batch of changes touched.

`merchant_daily` holds, per merchant and UTC day, the counted orders (METRICS.md)
of the latest state; `merchant_day_orders` lists them (created_at, amount_total,
platform_fee) for splitting a day at an instant; `merchant_monthly` sums them
per merchant and UTC month. Writers call `refresh_merchant_daily` with the keys
a batch of changes touched (both the old and the new day of a changed order);
the day rows of those keys are recomputed from `orders FINAL`, then the month
rows holding those days from `merchant_daily FINAL`, and all are written again
with a new version, zeros and empty lists included, so the result never depends
on how many times or in which order changes arrived.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from loguru import logger

from optima_bi_mcp.store.client import Store

log = logger.bind(module=__name__)

COUNTED_STATUSES = ("paid", "shipped", "delivered", "completed")
COUNTED_SQL = "status IN ('paid', 'shipped', 'delivered', 'completed')"

# Every table Optima BI reads: the latest state (0001_latest_state.sql) and the
# rollups, all read with FINAL; compacted after bulk loads, counted by bi://status.
STORE_TABLES = (
    "merchants",
    "customers",
    "products",
    "orders",
    "order_items",
    "subscriptions",
    "transfers",
    "merchant_daily",
    "merchant_monthly",
    "merchant_day_orders",
)

_COLUMNS = [
    "day",
    "merchant_id",
    "orders",
    "gmv",
    "platform_fees",
    "first_order_at",
    "last_order_at",
    "_version",
]

_RECOMPUTE = f"""
SELECT toDate(created_at) AS day, merchant_id,
       count() AS orders, sum(amount_total) AS gmv, sum(platform_fee) AS platform_fees,
       min(created_at) AS first_order_at, max(created_at) AS last_order_at,
       groupArray((created_at, amount_total, platform_fee)) AS order_list
FROM orders FINAL
WHERE merchant_id IN {{merchants:Array(UUID)}}
  AND created_at >= {{lo:DateTime64(6, 'UTC')}} AND created_at < {{hi:DateTime64(6, 'UTC')}}
  AND {COUNTED_SQL}
GROUP BY day, merchant_id
"""


_MONTHLY_COLUMNS = ["month", *_COLUMNS[1:]]
_DAY_ORDERS_COLUMNS = ["day", "merchant_id", "orders", "_version"]

_RECOMPUTE_MONTHLY = """
SELECT toStartOfMonth(day) AS month, merchant_id,
       sum(orders), sum(gmv), sum(platform_fees), min(first_order_at), max(last_order_at)
FROM merchant_daily FINAL
WHERE merchant_id IN {merchants:Array(UUID)} AND day >= {lo:Date} AND day < {hi:Date}
GROUP BY month, merchant_id
"""


def next_version() -> int:
    """A version larger than any written before by this clock (nanoseconds)."""
    return time.time_ns()


def refresh_merchant_daily(store: Store, keys: Iterable[tuple[UUID, date]]) -> int:
    """Recompute the rollup rows of the given (merchant_id, day) keys; returns rows written.

    The `merchant_day_orders` rows of the same keys are written with them, and
    the `merchant_monthly` rows of the months holding those days are recomputed
    afterwards from the daily rows (neither is included in the count).
    """
    wanted = {(UUID(str(m)), d) for m, d in keys}
    if not wanted:
        return 0
    merchants = sorted({m for m, _ in wanted}, key=str)
    days = [d for _, d in wanted]
    rows = store.query(
        _RECOMPUTE,
        {
            "merchants": merchants,
            "lo": f"{min(days).isoformat()} 00:00:00",
            # Half-open at the next midnight: an order at 23:59:59.999999 belongs to the day.
            "hi": f"{(max(days) + timedelta(days=1)).isoformat()} 00:00:00",
        },
    )
    version = next_version()
    computed = {(UUID(str(r[1])), r[0]): r for r in rows}
    out: list[tuple[Any, ...]] = []
    lists: list[tuple[Any, ...]] = []
    for merchant_id, day in sorted(wanted, key=lambda k: (k[1], str(k[0]))):
        row = computed.get((merchant_id, day))
        if row is None:
            out.append((day, merchant_id, 0, 0, 0, None, None, version))
            lists.append((day, merchant_id, [], version))
        else:
            out.append((day, merchant_id, row[2], row[3], row[4], row[5], row[6], version))
            lists.append((day, merchant_id, row[7], version))
    store.insert("merchant_daily", out, _COLUMNS)
    store.insert("merchant_day_orders", lists, _DAY_ORDERS_COLUMNS)
    _refresh_merchant_monthly(store, {(m, d.replace(day=1)) for m, d in wanted})
    return len(out)


def _refresh_merchant_monthly(store: Store, wanted: set[tuple[UUID, date]]) -> None:
    """Recompute the (merchant_id, month) rows from `merchant_daily FINAL`, zeros included."""
    merchants = sorted({m for m, _ in wanted}, key=str)
    months = [m for _, m in wanted]
    last = max(months)
    rows = store.query(
        _RECOMPUTE_MONTHLY,
        {
            "merchants": merchants,
            "lo": min(months),
            "hi": date(last.year + last.month // 12, last.month % 12 + 1, 1),
        },
    )
    version = next_version()
    computed = {(UUID(str(r[1])), r[0]): r for r in rows}
    out = []
    for merchant_id, month in sorted(wanted, key=lambda k: (k[1], str(k[0]))):
        row = computed.get((merchant_id, month))
        if row is None:
            out.append((month, merchant_id, 0, 0, 0, None, None, version))
        else:
            out.append((month, merchant_id, row[2], row[3], row[4], row[5], row[6], version))
    store.insert("merchant_monthly", out, _MONTHLY_COLUMNS)


def rebuild_merchant_daily(store: Store) -> None:
    """Recompute every order rollup from the latest state (after a backfill or seed).

    `orders FINAL` is scanned once, into `merchant_day_orders`; the daily rows
    are summed from those lists and the monthly rows from the daily rows.
    """
    for table in ("merchant_day_orders", "merchant_daily", "merchant_monthly"):
        store.command(f"TRUNCATE TABLE {table}")
    store.command(
        f"""
        INSERT INTO merchant_day_orders
        SELECT toDate(created_at) AS day, merchant_id,
               groupArray((created_at, amount_total, platform_fee)), {next_version()}
        FROM orders FINAL
        WHERE {COUNTED_SQL}
        GROUP BY day, merchant_id
        """
    )
    store.command(
        f"""
        INSERT INTO merchant_daily
        SELECT day, merchant_id, length(orders), arraySum(o -> o.2, orders),
               arraySum(o -> o.3, orders), arrayMin(o -> o.1, orders),
               arrayMax(o -> o.1, orders), {next_version()}
        FROM merchant_day_orders FINAL
        """
    )
    store.command(
        f"""
        INSERT INTO merchant_monthly
        SELECT toStartOfMonth(day) AS month, merchant_id, sum(orders), sum(gmv),
               sum(platform_fees), min(first_order_at), max(last_order_at), {next_version()}
        FROM merchant_daily FINAL
        GROUP BY month, merchant_id
        """
    )


def compact(store: Store) -> None:
    """Merge every latest-state table and rollup into one part per partition.

    Run after a bulk load (seed, backfill): `FINAL` over a single part needs
    no merge at read time, which roughly halves the merchant tools' latency.
    """
    started = time.perf_counter()
    for table in STORE_TABLES:
        store.command(f"OPTIMIZE TABLE {table} FINAL")
    log.info(
        "compact done tables={} duration_ms={:.0f}",
        len(STORE_TABLES),
        (time.perf_counter() - started) * 1000,
    )
