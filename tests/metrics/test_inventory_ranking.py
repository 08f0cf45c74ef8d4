"""inventory_status ranks the store's product rows itself: statuses, order, counts, pages.

The oracle comparisons (test_merchant_inventory.py) cover real data; these pin
what random data rarely shows: ties on every sort key, products without sales,
and pages cut inside a status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from optima_bi_mcp.metrics import inventory
from optima_bi_mcp.metrics.models import InventoryStatusArgs

MERCHANT = UUID("00000000-0000-4000-8000-000000000001")
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


class _Store:
    """Answers the merchant lookup, then the product rows given."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def query(self, sql: str, parameters: Any = None, **_: Any) -> list[tuple[Any, ...]]:
        if "FROM merchants" in sql:
            return [("Shop", "EUR")]
        assert sql == inventory.PRODUCTS_SQL
        return self.rows


def _id(n: int) -> UUID:
    return UUID(f"{n:08x}-0000-4000-8000-000000000000")


def _status(rows: list[tuple[Any, ...]], **args: Any) -> Any:
    parsed = InventoryStatusArgs(merchant_id=MERCHANT, **args)
    return inventory.inventory_status(_Store(rows), MERCHANT, parsed, NOW)  # type: ignore[arg-type]


# (id, sku, name, stock, threshold, units sold in 30 days; None = no sales row)
ROWS = [
    (_id(9), "B", "tied b, higher id", 5, 10, 30),  # low, reorder 44 - 5 = 39
    (_id(3), "B", "tied b, lower id", 5, 10, 30),  # low, reorder 39
    (_id(4), "A", "low, less to order", 8, 10, 30),  # low, reorder 36
    (_id(5), "C", "out", 0, 10, 0),  # out, reorder 0
    (_id(6), "D", "overstock, no sales", 50, 10, None),  # overstock
    (_id(7), "E", "healthy", 50, 10, 30),  # 50 <= 6 × 30: healthy, reorder 0
    (_id(8), "F", "overstock by cover", 181, 10, 30),  # 181 > 180: overstock
]


def test_order_is_status_reorder_sku_then_id() -> None:
    got = _status(ROWS, limit=500)
    assert [i.name for i in got.items] == [
        "out",
        "tied b, lower id",
        "tied b, higher id",
        "low, less to order",
        "overstock, no sales",
        "overstock by cover",
        "healthy",
    ]
    assert [i.suggested_reorder_qty for i in got.items[1:4]] == [39, 39, 36]
    assert got.counts.model_dump() == {"out": 1, "low": 3, "overstock": 2, "healthy": 1}
    no_sales = got.items[4]
    assert (no_sales.units_sold_30d, no_sales.days_of_cover) == (0, None)


def test_pages_of_one_status_keep_the_order_and_all_counts() -> None:
    first = _status(ROWS, status="low", limit=2)
    assert [i.name for i in first.items] == ["tied b, lower id", "tied b, higher id"]
    assert first.next_cursor is not None
    second = _status(ROWS, status="low", limit=2, cursor=first.next_cursor)
    assert [i.name for i in second.items] == ["low, less to order"]
    assert second.next_cursor is None
    assert second.counts == first.counts
    assert first.counts.model_dump() == {"out": 1, "low": 3, "overstock": 2, "healthy": 1}


def test_no_active_product_gives_zero_counts_and_no_items() -> None:
    got = _status([], limit=20)
    assert got.items == [] and got.next_cursor is None
    assert got.counts.model_dump() == dict.fromkeys(("out", "low", "overstock", "healthy"), 0)
