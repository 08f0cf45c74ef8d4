"""inventory_status: stock, 30-day velocity, cover and reorder advice per active product.

Status and reorder quantity are decided in SQL with integer arithmetic only, so
no rounded velocity ever decides a status: with u units sold in 30 days,
days_of_cover > 180 ⇔ stock × 30 / u > 180 ⇔ stock > 6u, and
⌈u / 30 × (lead + cover)⌉ = (u × (lead + cover) + 29) div 30.
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
from optima_bi_mcp.metrics.scope import (
    COUNTED_ORDER_IDS,
    EDGE_ITEMS,
    instant,
    merchant_orders_since,
    utc_midnight,
)
from optima_bi_mcp.store.client import Store

STATES: Final[tuple[InventoryState, ...]] = ("out", "low", "overstock", "healthy")
WINDOW = timedelta(days=30)

# One row per active product; `state` is the index of its status in STATES,
# which is also the order the list is sorted in.
# Units sold per product in the window: from the items of its counted orders, or
# (for a merchant with many orders, where reading every item costs most) from
# `product_daily` for the window's whole UTC days plus the day item lists of its
# two partial days.
_SOLD = {
    "orders": f"""
    SELECT product_id, sum(quantity) AS units
    FROM order_items FINAL
    WHERE merchant_id = {{merchant:UUID}}
      AND order_id IN ({COUNTED_ORDER_IDS})
    GROUP BY product_id
    """,
    "days": f"""
    SELECT product_id, sum(quantity) AS units
    FROM (
        SELECT product_id, quantity FROM product_daily FINAL
        WHERE merchant_id = {{merchant:UUID}}
          AND day >= toDate({{days_start:DateTime64(6, 'UTC')}})
          AND day < toDate({{days_end:DateTime64(6, 'UTC')}})
        UNION ALL
        SELECT t.product_id, t.quantity {EDGE_ITEMS}
    )
    GROUP BY product_id
    """,
}
_PRODUCTS = """
WITH sold AS ({sold}),
stock AS (
    SELECT p.id AS id, p.sku AS sku, p.name AS name,
           toInt64(p.stock_quantity) AS stock, toInt64(p.low_stock_threshold) AS threshold,
           toInt64(s.units) AS units
    FROM (SELECT * FROM products FINAL WHERE merchant_id = {merchant:UUID}) AS p
    LEFT JOIN sold AS s ON s.product_id = p.id
    WHERE p.status = 'active'
),
states AS (
    SELECT id, sku, name, stock, units,
           multiIf(
               stock <= 0, 0,
               stock <= threshold, 1,
               (units > 0 AND stock > 6 * units) OR (units = 0 AND stock > threshold), 2,
               3
           ) AS state,
           greatest(
               0,
               intDiv(units * ({lead:UInt32} + {cover:UInt32}) + 29, 30) - stock
           ) AS reorder
    FROM stock
)
"""

_COUNTS = "SELECT state, count() FROM states GROUP BY state"
# The counts of every status ride on each row of the page (the window sees every
# active product, before the status filter); only an empty page needs COUNTS_SQL.
_PAGE = """
SELECT id, sku, name, stock, units, state, reorder, counts FROM (
    SELECT id, sku, name, stock, units, state, reorder,
           [countIf(state = 0) OVER (), countIf(state = 1) OVER (),
            countIf(state = 2) OVER (), countIf(state = 3) OVER ()] AS counts
    FROM states
)
WHERE {state:Int8} < 0 OR state = {state:Int8}
ORDER BY state ASC, reorder DESC, sku ASC
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
"""
COUNTS_SQL = {source: _PRODUCTS.replace("{sold}", sold) + _COUNTS for source, sold in _SOLD.items()}
PAGE_SQL = {source: _PRODUCTS.replace("{sold}", sold) + _PAGE for source, sold in _SOLD.items()}
# Above this many counted orders in the months the window spans, the rollups answer faster.
ROLLUP_MIN_ORDERS = 20_000


def inventory_status(
    store: Store, merchant_id: UUID, args: InventoryStatusArgs, now: datetime
) -> InventoryStatusResult:
    """Every active product's stock position as of now, most urgent first.

    Sorted by status (out, low, overstock, healthy), then suggested_reorder_qty
    descending, then sku. `status` filters the items only: `counts` always
    counts every active product of the merchant by status, so one call shows
    both the page asked for and the whole picture.
    """
    _, orders = merchant_orders_since(store, merchant_id, now - WINDOW)
    source = "days" if orders > ROLLUP_MIN_ORDERS else "orders"
    query = args.model_dump(mode="json", exclude={"cursor", "limit"})
    offset = decode_cursor(args.cursor, query)
    params = {
        "merchant": str(merchant_id),
        "start": instant(now - WINDOW),
        "end": instant(now),
        # The window's whole UTC days come from product_daily, its two edges from item lists.
        "days_start": instant(utc_midnight(now - WINDOW, up=True)),
        "days_end": instant(utc_midnight(now)),
        "lead": args.lead_time_days,
        "cover": args.cover_days,
    }

    state = STATES.index(args.status) if args.status else -1
    page_params = params | {"state": state, "limit": args.limit + 1, "offset": offset}
    found = store.query(PAGE_SQL[source], page_params)
    counts = dict.fromkeys(STATES, 0)
    if found:
        counts.update(zip(STATES, map(int, found[0][-1]), strict=True))
    else:
        for status, count in store.query(COUNTS_SQL[source], params):
            counts[STATES[int(status)]] = int(count)
    rows, next_cursor = page([row[:-1] for row in found], offset, args.limit, query)
    return InventoryStatusResult(
        as_of=now,
        items=[_item(row) for row in rows],
        counts=InventoryCounts(**counts),
        next_cursor=next_cursor,
    )


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
