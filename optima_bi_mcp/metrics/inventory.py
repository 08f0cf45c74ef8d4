"""inventory_status: stock, 30-day velocity, cover and reorder advice per active product.

Status and reorder quantity are decided with integer arithmetic only, so no
rounded velocity ever decides a status: with u units sold in 30 days,
days_of_cover > 180 ⇔ stock × 30 / u > 180 ⇔ stock > 6u, and
⌈u / 30 × (lead + cover)⌉ = (u × (lead + cover) + 29) div 30 (u ≥ 0: quantities
are positive).

The store returns each active product with its units sold; statuses, counts,
order and page are decided here. A merchant has hundreds of products, a few
thousand at most: ranking them in Python costs well under a millisecond, while
the same steps in SQL (a join, four window counts, a sort) cost the store about
ten milliseconds of planning and pipeline per call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from optima_bi_mcp.metrics.models import (
    InventoryCounts,
    InventoryItem,
    InventoryState,
    InventoryStatusArgs,
    InventoryStatusResult,
)
from optima_bi_mcp.metrics.numbers import ratio
from optima_bi_mcp.metrics.pagination import decode_cursor, page
from optima_bi_mcp.metrics.scope import KnownRow, instant, merchant_info
from optima_bi_mcp.store.client import Store

STATES: Final[tuple[InventoryState, ...]] = ("out", "low", "overstock", "healthy")
WINDOW = timedelta(days=30)

# A state is the index of its status in STATES, which is also the order the list
# is sorted in.
# Units sold per product in the window, from the day item lists of `merchant_day_items`
# (0008_merchant_day_items.sql: the items of each day's counted orders, with their
# order's created_at): the window's 31 UTC days, cut at its two instants. Measured at
# 10M orders, against the items of the counted orders (order_items FINAL filtered by
# orders FINAL) and against `product_daily` plus the edge days: the fastest for small,
# median and the largest merchants alike.
_SOLD = """
    SELECT t.product_id AS product_id, sum(t.quantity) AS units
    FROM merchant_day_items FINAL ARRAY JOIN items AS t
    WHERE merchant_id = {merchant:UUID}
      AND day >= toDate({start:DateTime64(6, 'UTC')}) AND day <= toDate({end:DateTime64(6, 'UTC')})
      AND t.created_at >= {start:DateTime64(6, 'UTC')} AND t.created_at < {end:DateTime64(6, 'UTC')}
    GROUP BY product_id
"""
# Every active product of the merchant with its units sold in the window (0 if none).
PRODUCTS_SQL = f"""
SELECT p.id, p.sku, p.name, toInt64(p.stock_quantity), toInt64(p.low_stock_threshold),
       toInt64(s.units)
FROM (
    SELECT id, sku, name, stock_quantity, low_stock_threshold, status
    FROM products FINAL WHERE merchant_id = {{merchant:UUID}}
) AS p
LEFT JOIN ({_SOLD}) AS s ON s.product_id = p.id
WHERE p.status = 'active'
"""


def inventory_status(
    store: Store,
    merchant_id: UUID,
    args: InventoryStatusArgs,
    now: datetime,
    *,
    known: KnownRow | None = None,
) -> InventoryStatusResult:
    """Every active product's stock position as of now, most urgent first.

    Sorted by status (out, low, overstock, healthy), then suggested_reorder_qty
    descending, then sku. `status` filters the items only: `counts` always
    counts every active product of the merchant by status, so one call shows
    both the page asked for and the whole picture.
    """
    merchant_info(store, merchant_id, known)  # NOT_FOUND for an unknown merchant
    query = args.model_dump(mode="json", exclude={"cursor", "limit"})
    offset = decode_cursor(args.cursor, query)
    params = {"merchant": str(merchant_id), "start": instant(now - WINDOW), "end": instant(now)}

    stock = [
        _ranked(row, args.lead_time_days + args.cover_days)
        for row in store.query(PRODUCTS_SQL, params)
    ]
    counts = dict.fromkeys(STATES, 0)
    for row in stock:
        counts[STATES[row[0]]] += 1
    wanted = STATES.index(args.status) if args.status else None
    stock.sort(key=lambda row: (row[0], -row[1], row[2], row[3]))
    shown = [row for row in stock if wanted is None or row[0] == wanted]
    rows, next_cursor = page(shown[offset : offset + args.limit + 1], offset, args.limit, query)
    return InventoryStatusResult(
        as_of=now,
        items=[_item(row[4]) for row in rows],
        counts=InventoryCounts(**counts),
        next_cursor=next_cursor,
    )


def _ranked(row: tuple[Any, ...], days: int) -> tuple[int, int, str, str, tuple[Any, ...]]:
    """(state, reorder, sku, id text, item row) of a product row: its sort key and its item.

    Ties on state, reorder and sku go to the id's text.
    """
    product_id, sku, name, stock, threshold, units = row
    stock, threshold, units = int(stock), int(threshold), int(units or 0)
    if stock <= 0:
        state = 0
    elif stock <= threshold:
        state = 1
    elif (units > 0 and stock > 6 * units) or (units == 0 and stock > threshold):
        state = 2
    else:
        state = 3
    reorder = max(0, (units * days + 29) // 30 - stock)
    item = (product_id, sku, name, stock, units, state, reorder)
    return state, reorder, sku, str(product_id), item


def _item(row: tuple[Any, ...]) -> InventoryItem:
    product_id, sku, name, stock, units, state, reorder = row
    stock, units = int(stock), int(units)
    return InventoryItem(
        product_id=UUID(str(product_id)),
        sku=sku,
        name=name,
        stock=stock,
        units_sold_30d=units,
        daily_velocity=ratio(units, 30) or Decimal(0),
        days_of_cover=ratio(stock * 30, units),
        turnover_30d=ratio(units, stock) if stock > 0 else None,
        status=STATES[int(state)],
        suggested_reorder_qty=int(reorder),
    )
