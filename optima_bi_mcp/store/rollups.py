"""Keeping the `merchant_daily` rollup exact by recomputing touched keys.

The rollup holds, per merchant and UTC day, the counted orders (METRICS.md) of
the latest state. Writers call `refresh_merchant_daily` with the keys a batch
of changes touched (both the old and the new day of a changed order); the rows
of those keys are recomputed from `orders FINAL` and written again with a new
version, zeros included, so the result never depends on how many times or in
which order changes arrived.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import date
from uuid import UUID

from optima_bi_mcp.store.client import Store

COUNTED_STATUSES = ("paid", "shipped", "delivered", "completed")
COUNTED_SQL = "status IN ('paid', 'shipped', 'delivered', 'completed')"

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
       min(created_at) AS first_order_at, max(created_at) AS last_order_at
FROM orders FINAL
WHERE merchant_id IN {{merchants:Array(UUID)}}
  AND created_at >= {{lo:DateTime64(6, 'UTC')}} AND created_at < {{hi:DateTime64(6, 'UTC')}}
  AND {COUNTED_SQL}
GROUP BY day, merchant_id
"""


def next_version() -> int:
    """A version larger than any written before by this clock (nanoseconds)."""
    return time.time_ns()


def refresh_merchant_daily(store: Store, keys: Iterable[tuple[UUID, date]]) -> int:
    """Recompute the rollup rows of the given (merchant_id, day) keys; returns rows written."""
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
            "hi": f"{max(days).isoformat()} 23:59:59.999999",
        },
    )
    version = next_version()
    computed = {(UUID(str(r[1])), r[0]): r for r in rows}
    out = []
    for merchant_id, day in sorted(wanted, key=lambda k: (k[1], str(k[0]))):
        row = computed.get((merchant_id, day))
        if row is None:
            out.append((day, merchant_id, 0, 0, 0, None, None, version))
        else:
            out.append((day, merchant_id, row[2], row[3], row[4], row[5], row[6], version))
    store.insert("merchant_daily", out, _COLUMNS)
    return len(out)


def rebuild_merchant_daily(store: Store) -> None:
    """Recompute the whole rollup from the latest state (after a backfill or seed)."""
    store.command("TRUNCATE TABLE merchant_daily")
    store.command(
        f"""
        INSERT INTO merchant_daily
        SELECT toDate(created_at) AS day, merchant_id, count(), sum(amount_total),
               sum(platform_fee), min(created_at), max(created_at), {next_version()}
        FROM orders FINAL
        WHERE {COUNTED_SQL}
        GROUP BY day, merchant_id
        """
    )
