"""The merchant metrics of METRICS.md, computed on the store.

Every function takes the merchant it is scoped to (resolved from the principal
by the MCP layer), validated arguments and `now` (an aware UTC instant; metric
functions never read the clock), and optionally where the caller keeps the
merchant's current row (`known`, see `scope.merchant_info`), which saves reading it.
Sums stay exact Decimals until the result model rounds them (`numbers.money`,
`numbers.ratio`, half to even).

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
from optima_bi_mcp.metrics.numbers import growth_pct, money, ratio, utc
from optima_bi_mcp.metrics.pagination import decode_cursor, page
from optima_bi_mcp.metrics.periods import Period, bucket_starts, local_midnight, resolve_period
from optima_bi_mcp.metrics.scope import (
    COUNTED,
    COUNTED_ORDER_IDS,
    CUSTOMER_KEY,
    EDGE_ITEMS,
    KnownRow,
    exact,
    instant,
    merchant_info,
    merchant_orders_since,
    period_out,
    period_params,
    quotient,
    utc_midnight,
)
from optima_bi_mcp.store.client import Store

__all__ = [
    "churned_customers",
    "customer_summary",
    "get_sales",
    "inventory_status",
    "KnownRow",
    "merchant_info",
    "top_products",
]

log = logger.bind(module=__name__)

_ZEROS: tuple[Any, ...] = (0, 0, 0, 0)
# Above this many counted orders in the months a sales question spans, the rollups
# answer faster than the orders (measured at 10M orders: the largest merchant's
# 14 days, about 45k orders, read in 21 ms from orders and 26 ms from rollups;
# its 60 days in 47 and 39 ms; its two years in 350 and 210 ms).
ROLLUP_MIN_ORDERS = 100_000

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
    bucket: _SALES_SQL.format(key=key, customer=CUSTOMER_KEY, counted=COUNTED)
    for bucket, key in _BUCKET_KEYS.items()
}

# The same rows for a period cut in UTC into day, week or month buckets, from the
# rollups of its whole UTC days (`merchant_daily` for the sums,
# `merchant_day_customers` for the customers) plus the orders of the partial days
# at the edges of [previous start, end). In UTC the period starts at a midnight,
# so a day is current exactly when it is on or after the period's first day.
_DAY_BUCKET_KEYS = {"day": "d", "week": "toMonday(d)", "month": "toStartOfMonth(d)"}
_SALES_DAYS_SQL = """
SELECT bucket, current, revenue, orders, finalizeAggregation(customers), fees,
       sum(revenue) OVER period, sum(orders) OVER period,
       uniqExactArrayMerge(customers) OVER period, sum(fees) OVER period
FROM (
    SELECT if(current, {key}, NULL) AS bucket,
           d >= toDate({{start:DateTime64(6, 'UTC')}}) AS current,
           sum(revenue) AS revenue, sum(orders) AS orders,
           uniqExactArrayState(customers) AS customers, sum(fees) AS fees
    FROM (
        SELECT day AS d, gmv AS revenue, orders, platform_fees AS fees,
               CAST([], 'Array(UInt128)') AS customers
        FROM merchant_daily FINAL
        WHERE merchant_id = {{merchant:UUID}}
          AND day >= toDate({{days_start:DateTime64(6, 'UTC')}})
          AND day < toDate({{days_end:DateTime64(6, 'UTC')}})
        UNION ALL
        SELECT day, toDecimal128(0, 2), toUInt64(0), toDecimal128(0, 2),
               customers.key
        FROM merchant_day_customers FINAL
        WHERE merchant_id = {{merchant:UUID}}
          AND day >= toDate({{days_start:DateTime64(6, 'UTC')}})
          AND day < toDate({{days_end:DateTime64(6, 'UTC')}})
        UNION ALL
        SELECT toDate(created_at), toDecimal128(amount_total, 2), toUInt64(1),
               toDecimal128(platform_fee, 2), [{customer}]
        FROM orders FINAL
        WHERE merchant_id = {{merchant:UUID}}
          AND ((created_at >= {{previous:DateTime64(6, 'UTC')}}
                AND created_at < {{days_start:DateTime64(6, 'UTC')}})
            OR (created_at >= {{days_end:DateTime64(6, 'UTC')}}
                AND created_at < {{end:DateTime64(6, 'UTC')}}))
          AND {counted}
    )
    GROUP BY current, bucket
)
WINDOW period AS (PARTITION BY current)
"""
SALES_DAYS_SQL = {
    bucket: _SALES_DAYS_SQL.format(key=key, customer=CUSTOMER_KEY, counted=COUNTED)
    for bucket, key in _DAY_BUCKET_KEYS.items()
}

# Daily buckets need no set per bucket: a whole day's customers are its list in
# `merchant_day_customers`, whose length is read from the array offsets alone
# (`customers.size0`; `length(customers)` under FINAL decodes every tuple). Only a
# partial day at the edges counts its orders' keys. One row per day of [previous
# start, end) with data, then one row per period (day NULL) with its unique
# customers: each period's union of keys is its own branch, so the sets are built
# side by side rather than merged one after the other by a window.
#
# The current period's customers come from `customer_facts` when they can: with no
# counted order at or after `end`, a customer ordered in [start, end) exactly when
# its last order is at or after `start` (the largest merchant's year: a count over
# its facts instead of a set of about 650,000 keys). `newest` (the merchant's last
# counted order) rides on that row; when it is at or after `end`, the keys answer
# (SALES_DAILY_KEYS_SQL).
_PERIOD_EDGES = """((created_at >= {previous:DateTime64(6, 'UTC')}
              AND created_at < {days_start:DateTime64(6, 'UTC')})
          OR (created_at >= {days_end:DateTime64(6, 'UTC')}
              AND created_at < {end:DateTime64(6, 'UTC')}))"""
_PERIOD_KEYS = f"""
    SELECT k FROM merchant_day_customers FINAL ARRAY JOIN customers.key AS k
    WHERE merchant_id = {{merchant:UUID}}
      AND day >= toDate({{days_start:DateTime64(6, 'UTC')}})
      AND day < toDate({{days_end:DateTime64(6, 'UTC')}})
      AND day {{cmp}} toDate({{start:DateTime64(6, 'UTC')}})
    UNION ALL
    SELECT {CUSTOMER_KEY} FROM orders FINAL
    WHERE merchant_id = {{merchant:UUID}} AND {_PERIOD_EDGES} AND {COUNTED}
      AND created_at {{cmp}} {{start:DateTime64(6, 'UTC')}}
"""
_SALES_DAILY_SQL = f"""
SELECT d, d >= toDate({{start:DateTime64(6, 'UTC')}}) AS current,
       sum(revenue), sum(orders), sum(listed) + uniqExact(edge_customer), sum(fees),
       NULL AS newest
FROM (
    SELECT day AS d, gmv AS revenue, orders, platform_fees AS fees, toUInt64(0) AS listed,
           CAST(NULL, 'Nullable(UInt128)') AS edge_customer
    FROM merchant_daily FINAL
    WHERE merchant_id = {{merchant:UUID}}
      AND day >= toDate({{days_start:DateTime64(6, 'UTC')}})
      AND day < toDate({{days_end:DateTime64(6, 'UTC')}})
    UNION ALL
    SELECT day, 0, 0, 0, customers.size0, NULL
    FROM merchant_day_customers FINAL
    WHERE merchant_id = {{merchant:UUID}}
      AND day >= toDate({{days_start:DateTime64(6, 'UTC')}})
      AND day < toDate({{days_end:DateTime64(6, 'UTC')}})
    UNION ALL
    SELECT toDate(created_at), amount_total, 1, platform_fee, 0, {CUSTOMER_KEY}
    FROM orders FINAL
    WHERE merchant_id = {{merchant:UUID}} AND {_PERIOD_EDGES} AND {COUNTED}
)
GROUP BY d
UNION ALL
{{current}}
UNION ALL
SELECT NULL, false, 0, 0, uniqExact(k), 0, NULL FROM ({_PERIOD_KEYS.replace("{cmp}", "<")})
"""
_CURRENT_FROM_FACTS = """
SELECT NULL, true, 0, 0, count(), 0,
       (SELECT max(last_order_at) FROM merchant_monthly FINAL WHERE merchant_id = {merchant:UUID})
FROM customer_facts FINAL
WHERE merchant_id = {merchant:UUID} AND last_order_at >= {start:DateTime64(6, 'UTC')}
"""
_CURRENT_FROM_KEYS = (
    f"SELECT NULL, true, 0, 0, uniqExact(k), 0, NULL FROM ({_PERIOD_KEYS.replace('{cmp}', '>=')})"
)
SALES_DAILY_SQL = _SALES_DAILY_SQL.replace("{current}", _CURRENT_FROM_FACTS)
SALES_DAILY_KEYS_SQL = _SALES_DAILY_SQL.replace("{current}", _CURRENT_FROM_KEYS)
# Which rollup query answers a UTC daily series (measured at 10M orders on the largest
# merchant, milliseconds of SALES_DAYS_SQL / SALES_DAILY_KEYS_SQL / SALES_DAILY_SQL):
# 30 days 37 / 42 / 50, 90 days 87 / 56 / 66, 365 days 236 / 149 / 90. Its more
# branches cost a short period more than the sets they save; reading every customer
# fact pays once the year's keys outnumber them.
DAILY_MIN_DAYS = 60
FACTS_MIN_DAYS = 180

# Product sales of a period, from one of three sources: the items of the period's
# counted orders; the `product_daily` rollup (0007_product_daily.sql) when the
# period is whole UTC days; or that rollup for its whole UTC days plus the
# `merchant_day_items` lists (0008) of the partial days at its edges. An order
# lies in one day, so distinct orders per product add up across the parts.
_ITEM_SALES = f"""
SELECT product_id, sum(amount) AS revenue, sum(quantity) AS quantity,
       uniqExact(order_id) AS orders
FROM order_items FINAL
WHERE merchant_id = {{merchant:UUID}} AND order_id IN ({COUNTED_ORDER_IDS})
GROUP BY product_id
"""
_DAY_SALES = """
SELECT product_id, revenue, quantity, orders FROM product_daily FINAL
WHERE merchant_id = {merchant:UUID}
  AND day >= toDate({days_start:DateTime64(6, 'UTC')})
  AND day < toDate({days_end:DateTime64(6, 'UTC')})
"""
_EDGE_SALES = f"""
SELECT t.product_id AS product_id, sum(t.amount) AS revenue, sum(t.quantity) AS quantity,
       uniqExact(t.order_id) AS orders
{EDGE_ITEMS}
GROUP BY product_id
"""
_SUMMED = """
SELECT product_id, sum(revenue) AS revenue, sum(quantity) AS quantity, sum(orders) AS orders
FROM ({parts})
GROUP BY product_id
"""
SALES_SOURCES = {
    "orders": _ITEM_SALES,
    "days": _SUMMED.format(parts=_DAY_SALES),
    "days_and_edges": _SUMMED.format(parts=_DAY_SALES + "UNION ALL" + _EDGE_SALES),
}

# The page is cut before the JOIN to products, so only its rows are looked up;
# `total` (the revenue of all products) rides on every row of the page.
_PRODUCT_SALES_SQL = """
WITH sales AS ({sales}),
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
    (by, source): _PRODUCT_SALES_SQL.format(order=f"s.{by} DESC", sales=sales)
    for by in ("revenue", "quantity")
    for source, sales in SALES_SOURCES.items()
}

TOTAL_ITEM_REVENUE_SQL = {
    source: f"SELECT sum(revenue) FROM ({sales})" for source, sales in SALES_SOURCES.items()
}


def get_sales(
    store: Store,
    merchant_id: UUID,
    args: GetSalesArgs,
    now: datetime,
    *,
    known: KnownRow | None = None,
) -> SalesResult:
    """Revenue, orders, aov, unique customers and fees of a period, per bucket and in total.

    Every bucket of the period is present, zeros included; more than 400
    buckets is INVALID_ARGUMENT naming `bucket`. `previous` is the period of
    the same length ending where this one starts; `growth_pct` is null where
    the previous figure is 0.
    """
    period = _period(args, 7, now)
    currency, orders = merchant_orders_since(store, merchant_id, period.previous().start, known)
    starts = bucket_starts(period, args.bucket)

    params = period_params(merchant_id, period)
    params["previous"] = instant(period.previous().start)
    sql = _sales_sql(period, args.bucket, params) if orders > ROLLUP_MIN_ORDERS else None
    if sql in (SALES_DAILY_SQL, SALES_DAILY_KEYS_SQL):
        by_start, totals = _daily_rows(store, sql, params, period)
    else:
        by_start, totals = _sales_rows(store, sql, params, period, args.bucket)
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


def _sales_sql(period: Period, bucket: str, params: dict[str, Any]) -> str:
    """The rollup query when the period is cut in UTC by days or longer, else the orders one.

    Adds the whole UTC days of [previous start, end) to `params` for the rollup query.
    """
    days_start = utc_midnight(period.previous().start, up=True)
    days_end = utc_midnight(period.end)
    if period.timezone != "UTC" or bucket not in SALES_DAYS_SQL or days_start >= days_end:
        return SALES_SQL[bucket]
    params["days_start"], params["days_end"] = instant(days_start), instant(days_end)
    days = (period.end - period.start).days
    if bucket != "day" or days < DAILY_MIN_DAYS:
        return SALES_DAYS_SQL[bucket]
    return SALES_DAILY_SQL if days >= FACTS_MIN_DAYS else SALES_DAILY_KEYS_SQL


def _sales_rows(
    store: Store, sql: str | None, params: dict[str, Any], period: Period, bucket: str
) -> tuple[dict[datetime, tuple[Any, ...]], dict[bool, tuple[Any, ...]]]:
    """The series rows keyed by the bucket's UTC start, and the totals keyed by `current`."""
    by_start: dict[datetime, tuple[Any, ...]] = {}
    totals: dict[bool, tuple[Any, ...]] = {True: _ZEROS, False: _ZEROS}
    for key, current, *figures in store.query(sql or SALES_SQL[bucket], params):
        totals[bool(current)] = tuple(figures[4:])
        if not current:
            continue
        if isinstance(key, date):
            by_start[local_midnight(key, period.tz)] = tuple(figures[:4])
        else:
            by_start[datetime.fromtimestamp(int(key), tz=UTC)] = tuple(figures[:4])
    return by_start, totals


def _daily_rows(
    store: Store, sql: str, params: dict[str, Any], period: Period
) -> tuple[dict[datetime, tuple[Any, ...]], dict[bool, tuple[Any, ...]]]:
    """`_sales_rows` from SALES_DAILY_SQL or SALES_DAILY_KEYS_SQL: the periods' sums
    added up here, exactly."""
    rows = store.query(sql, params)
    if any(newest is not None and utc(newest) >= period.end for *_, newest in rows):
        rows = store.query(SALES_DAILY_KEYS_SQL, params)
    by_start: dict[datetime, tuple[Any, ...]] = {}
    sums: dict[bool, list[Any]] = {True: [0, 0, 0], False: [0, 0, 0]}
    customers: dict[bool, Any] = {True: 0, False: 0}
    for day, current, revenue, orders, count, fees, _ in rows:
        if day is None:
            customers[bool(current)] = count
            continue
        total = sums[bool(current)]
        total[0] += exact(revenue)
        total[1] += int(orders)
        total[2] += exact(fees)
        if current:
            by_start[local_midnight(day, period.tz)] = (revenue, orders, count, fees)
    totals = {
        current: (revenue, orders, customers[current], fees)
        for current, (revenue, orders, fees) in sums.items()
    }
    return by_start, totals


def _figure_fields(row: tuple[Any, ...] | None) -> dict[str, Any]:
    revenue, orders, customers, fees = row if row is not None else _ZEROS
    return {
        "revenue": money(revenue),
        "orders": int(orders),
        "aov": money(quotient(revenue, orders)),
        "unique_customers": int(customers),
        "platform_fees": money(fees),
    }


def _figures(row: tuple[Any, ...] | None) -> SalesFigures:
    return SalesFigures(**_figure_fields(row))


def _bucket(start: datetime, row: tuple[Any, ...] | None) -> SalesBucket:
    # Built straight from the fields: a year of daily buckets is 365 of them.
    return SalesBucket(bucket_start=start, **_figure_fields(row))


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
    store: Store,
    merchant_id: UUID,
    args: TopProductsArgs,
    now: datetime,
    *,
    known: KnownRow | None = None,
) -> TopProductsResult:
    """Products ranked by revenue or quantity over the counted orders of a period.

    Ties go to the product id's canonical text, ascending. `share_of_revenue`
    is the product's revenue over the revenue of all products in the period.
    """
    _, currency = merchant_info(store, merchant_id, known)
    period = _period(args, 30, now)
    query = args.model_dump(mode="json", exclude={"cursor", "limit"})
    offset = decode_cursor(args.cursor, query)

    params = period_params(merchant_id, period) | {"limit": args.limit + 1, "offset": offset}
    source = _sales_source(period, params)
    rows = store.query(TOP_PRODUCTS_SQL[args.sort_by, source], params)
    if rows:
        total = exact(rows[0][-1])
    else:  # a page past the end (or no sales): the total needs its own query
        sql = TOTAL_ITEM_REVENUE_SQL[source]
        total = exact(store.query(sql, params)[0][0]) if offset else exact(0)
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


def _sales_source(period: Period, params: dict[str, Any]) -> str:
    """Which product sales source answers the period; adds the whole UTC days it spans."""
    days_start = utc_midnight(period.start, up=True)
    days_end = utc_midnight(period.end)
    if days_start >= days_end:
        return "orders"
    params["days_start"], params["days_end"] = instant(days_start), instant(days_end)
    return "days" if (days_start, days_end) == (period.start, period.end) else "days_and_edges"


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
