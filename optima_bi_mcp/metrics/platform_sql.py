"""SQL pieces shared by the platform metrics: instants as parameters, latest orders.

`latest_counted_orders` reads the latest state of the orders in a narrow
`created_at` range without `FINAL`: the table is sorted by merchant first, so a
day of every merchant touches every granule of its month, and `FINAL` would
merge-sort the whole partition (hundreds of ms at 10M orders). Grouping the
range's rows by the sorting key and taking each column at the highest
`_version` is the same latest state (an order's merchant and created_at never
change), at the cost of reading only the rows in range.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from optima_bi_mcp.store.rollups import COUNTED_STATUSES


def ts(instant: datetime) -> str:
    """An instant as a `DateTime64(6, 'UTC')` parameter, microseconds kept."""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def midnight(day: date) -> datetime:
    """The UTC instant `day` starts."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def instants(*names: str) -> str:
    """A WITH list binding each name to a `DateTime64(6, 'UTC')` query parameter."""
    return ", ".join(f"{{{name}:DateTime64(6, 'UTC')}} AS {name}" for name in names)


def latest_counted_orders(where: str) -> str:
    """A subquery of the counted orders (latest state) whose raw rows match `where`.

    It yields merchant_id, created_at, amount_total and platform_fee; `where`
    must restrict created_at (and may restrict merchant_id) only, since other
    columns differ between versions.
    """
    counted = ", ".join(f"'{s}'" for s in COUNTED_STATUSES)
    return f"""(
        SELECT merchant_id, created_at,
               argMax(status, _version) AS status, argMax(_is_deleted, _version) AS deleted,
               argMax(amount_total, _version) AS amount_total,
               argMax(platform_fee, _version) AS platform_fee
        FROM orders
        WHERE {where}
        GROUP BY merchant_id, created_at, id
        HAVING deleted = 0 AND status IN ({counted})
    )"""
