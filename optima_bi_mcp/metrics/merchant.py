"""The merchant metrics of METRICS.md, computed on the store.

Every function takes the merchant it is scoped to (resolved from the principal
by the MCP layer), validated arguments and `now` (an aware UTC instant; metric
functions never read the clock). Sums stay exact Decimals until the result
model rounds them (`numbers.money`, `numbers.ratio`, half to even).

The customer metrics live in `customers.py` and the inventory in
`inventory.py`; they are re-exported here so callers import one module.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from loguru import logger

from optima_bi_mcp.metrics.customers import churned_customers, customer_summary
from optima_bi_mcp.metrics.inventory import inventory_status
from optima_bi_mcp.metrics.models import (
    GetSalesArgs,
    SalesBucket,
    SalesFigures,
    SalesGrowth,
    SalesResult,
    TopProduct,
    TopProductsArgs,
    TopProductsResult,
)
from optima_bi_mcp.metrics.numbers import growth_pct, money, ratio
from optima_bi_mcp.metrics.pagination import decode_cursor, page
from optima_bi_mcp.metrics.periods import Period, bucket_starts, local_midnight, resolve_period
from optima_bi_mcp.metrics.scope import (
    COUNTED,
    COUNTED_ORDER_IDS,
    CUSTOMER_SQL,
    exact,
    instant,
    merchant_info,
    period_out,
    period_params,
    quotient,
)
from optima_bi_mcp.store.client import Store

__all__ = [
    "churned_customers",
    "customer_summary",
    "get_sales",
    "inventory_status",
    "merchant_info",
    "top_products",
]

log = logger.bind(module=__name__)

_ZEROS: tuple[Any, ...] = (0, 0, 0, 0)

# The key of each bucket, cut in the period's zone. Day, week and month keys are
# local dates (turned into the UTC instant of their local midnight in Python);
# the hour key is the epoch second of the local hour start, which stays right
# on both sides of a DST fall-back, when a local hour happens twice.
_BUCKET_KEYS = {
    "hour": "toUnixTimestamp(toStartOfHour(created_at, {tz:String}))",
    "day": "toDate(created_at, {tz:String})",
    "week": "toMonday(created_at, {tz:String})",
    "month": "toStartOfMonth(created_at, {tz:String})",
}

# One pass over [previous start, end), grouped by (current, bucket) where bucket is
# NULL for previous-period orders: one row per filled bucket of the period plus one
# for the previous period. Each row also carries its period's totals, merged by a
# window from the per-bucket sets, so uniqExact stays exact per bucket and per period.
_SALES_SQL = """
SELECT bucket, current, revenue, orders, finalizeAggregation(customers), fees,
       sum(revenue) OVER period, sum(orders) OVER period,
       uniqExactMerge(customers) OVER period, sum(fees) OVER period
FROM (
    SELECT if(current, {key}, NULL) AS bucket, current,
           sum(amount_total) AS revenue, count() AS orders,
           uniqExactState(customer) AS customers, sum(platform_fee) AS fees
    FROM (
        SELECT created_at, amount_total, platform_fee, {customer} AS customer,
               created_at >= {{start:DateTime64(6, 'UTC')}} AS current
        FROM orders FINAL
        WHERE merchant_id = {{merchant:UUID}}
          AND created_at >= {{previous:DateTime64(6, 'UTC')}}
          AND created_at < {{end:DateTime64(6, 'UTC')}}
          AND {counted}
    )
    GROUP BY current, bucket
)
WINDOW period AS (PARTITION BY current)
"""
SALES_SQL = {
    bucket: _SALES_SQL.format(key=key, customer=CUSTOMER_SQL, counted=COUNTED)
    for bucket, key in _BUCKET_KEYS.items()
}

# The page is cut before the JOIN to products, so only its rows are looked up;
# `total` (the revenue of all products) rides on every row of the page.
_PRODUCT_SALES_SQL = """
WITH sales AS (
    SELECT product_id, sum(amount) AS revenue, sum(quantity) AS quantity,
           uniqExact(order_id) AS orders
    FROM order_items FINAL
    WHERE merchant_id = {{merchant:UUID}}
      AND order_id IN ({counted_ids})
    GROUP BY product_id
),
ranked AS (
    SELECT product_id, revenue, quantity, orders, sum(revenue) OVER () AS total
    FROM sales AS s
    ORDER BY {order}, toString(s.product_id) ASC
    LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}
)
SELECT s.product_id, p.sku, p.name, p.category, s.revenue, s.quantity, s.orders, s.total
FROM ranked AS s
LEFT JOIN (
    SELECT id, sku, name, category FROM products FINAL WHERE merchant_id = {{merchant:UUID}}
) AS p ON p.id = s.product_id
ORDER BY {order}, toString(s.product_id) ASC
"""
# Ties between products go to the id's canonical text, not ClickHouse's UUID order.
TOP_PRODUCTS_SQL = {
    by: _PRODUCT_SALES_SQL.format(order=f"s.{by} DESC", counted_ids=COUNTED_ORDER_IDS)
    for by in ("revenue", "quantity")
}

TOTAL_ITEM_REVENUE_SQL = f"""
SELECT sum(amount) FROM order_items FINAL
WHERE merchant_id = {{merchant:UUID}}
  AND order_id IN ({COUNTED_ORDER_IDS})
"""


def get_sales(store: Store, merchant_id: UUID, args: GetSalesArgs, now: datetime) -> SalesResult:
    """Revenue, orders, aov, unique customers and fees of a period, per bucket and in total.

    Every bucket of the period is present, zeros included; more than 400
    buckets is INVALID_ARGUMENT naming `bucket`. `previous` is the period of
    the same length ending where this one starts; `growth_pct` is null where
    the previous figure is 0.
    """
    _, currency = merchant_info(store, merchant_id)
    period = _period(args, 7, now)
    starts = bucket_starts(period, args.bucket)

    params = period_params(merchant_id, period)
    params["previous"] = instant(period.previous().start)
    by_start, totals = _sales_rows(store, params, period, args.bucket)
    series = [_bucket(start, by_start.get(start)) for start in starts]
    log.debug("get_sales bucket={} buckets={} filled={}", args.bucket, len(starts), len(by_start))

    current, previous = _figures(totals[True]), _figures(totals[False])
    return SalesResult(
        **current.model_dump(),
        period=period_out(period),
        currency=currency,
        bucket=args.bucket,
        series=series,
        previous=previous,
        growth_pct=_growth(totals[True], totals[False]),
    )


def _period(args: Any, default_days: int, now: datetime) -> Period:
    return resolve_period(
        start=args.start,
        end=args.end,
        days=args.days,
        timezone=args.timezone,
        default_days=default_days,
        now=now,
    )


def _sales_rows(
    store: Store, params: dict[str, Any], period: Period, bucket: str
) -> tuple[dict[datetime, tuple[Any, ...]], dict[bool, tuple[Any, ...]]]:
    """The series rows keyed by the bucket's UTC start, and the totals keyed by `current`."""
    by_start: dict[datetime, tuple[Any, ...]] = {}
    totals: dict[bool, tuple[Any, ...]] = {True: _ZEROS, False: _ZEROS}
    for key, current, *figures in store.query(SALES_SQL[bucket], params):
        totals[bool(current)] = tuple(figures[4:])
        if not current:
            continue
        if isinstance(key, date):
            by_start[local_midnight(key, period.tz)] = tuple(figures[:4])
        else:
            by_start[datetime.fromtimestamp(int(key), tz=UTC)] = tuple(figures[:4])
    return by_start, totals


def _figures(row: tuple[Any, ...] | None) -> SalesFigures:
    revenue, orders, customers, fees = row if row is not None else (0, 0, 0, 0)
    return SalesFigures(
        revenue=money(revenue),
        orders=int(orders),
        aov=money(quotient(revenue, orders)),
        unique_customers=int(customers),
        platform_fees=money(fees),
    )


def _bucket(start: datetime, row: tuple[Any, ...] | None) -> SalesBucket:
    return SalesBucket(bucket_start=start, **_figures(row).model_dump())


def _growth(current: tuple[Any, ...], previous: tuple[Any, ...]) -> SalesGrowth:
    """growth_pct of each figure, from the exact (unrounded) values."""
    (revenue, orders, customers, fees), (p_revenue, p_orders, p_customers, p_fees) = (
        current,
        previous,
    )
    return SalesGrowth(
        revenue=growth_pct(revenue, p_revenue),
        orders=growth_pct(orders, p_orders),
        aov=growth_pct(quotient(revenue, orders), quotient(p_revenue, p_orders)),
        unique_customers=growth_pct(customers, p_customers),
        platform_fees=growth_pct(fees, p_fees),
    )


def top_products(
    store: Store, merchant_id: UUID, args: TopProductsArgs, now: datetime
) -> TopProductsResult:
    """Products ranked by revenue or quantity over the counted orders of a period.

    Ties go to the product id's canonical text, ascending. `share_of_revenue`
    is the product's revenue over the revenue of all products in the period.
    """
    _, currency = merchant_info(store, merchant_id)
    period = _period(args, 30, now)
    query = args.model_dump(mode="json", exclude={"cursor", "limit"})
    offset = decode_cursor(args.cursor, query)

    params = period_params(merchant_id, period) | {"limit": args.limit + 1, "offset": offset}
    rows = store.query(TOP_PRODUCTS_SQL[args.sort_by], params)
    if rows:
        total = exact(rows[0][-1])
    else:  # a page past the end (or no sales): the total needs its own query
        total = exact(store.query(TOTAL_ITEM_REVENUE_SQL, params)[0][0]) if offset else exact(0)
    items, next_cursor = page([row[:-1] for row in rows], offset, args.limit, query)
    log.debug("top_products sort_by={} offset={} rows={}", args.sort_by, offset, len(items))
    return TopProductsResult(
        period=period_out(period),
        currency=currency,
        sort_by=args.sort_by,
        total_revenue=money(total),
        items=[_top_product(row, total) for row in items],
        next_cursor=next_cursor,
    )


def _top_product(row: tuple[Any, ...], total: Any) -> TopProduct:
    product_id, sku, name, category, revenue, quantity, orders = row
    return TopProduct(
        product_id=UUID(str(product_id)),
        sku=sku or "",
        name=name or "",
        category=category or "",
        revenue=money(revenue),
        quantity=int(quantity),
        orders=int(orders),
        share_of_revenue=ratio(revenue, total),
    )
