"""Customer facts as of T and the segments built on them (METRICS.md, "Customer facts").

A customer is lower(trim(customer_email)) within one merchant; its facts come
from the merchant's counted orders created before T. When the merchant has no
counted order at or after T (T is now, or the end of today, as most questions
ask), those are all its orders and the `customer_facts` rollup answers; for an
earlier T the orders are read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from optima_bi_mcp.metrics.models import (
    ChurnedCustomer,
    ChurnedCustomersArgs,
    ChurnedCustomersResult,
    CustomerSummaryArgs,
    CustomerSummaryResult,
)
from optima_bi_mcp.metrics.numbers import money, ratio, utc
from optima_bi_mcp.metrics.pagination import decode_cursor, page
from optima_bi_mcp.metrics.periods import local_midnight, resolve_period, zone
from optima_bi_mcp.metrics.scope import (
    COUNTED,
    CUSTOMER_KEY,
    KnownRow,
    instant,
    merchant_info,
    period_out,
    period_params,
    quotient,
)
from optima_bi_mcp.store.client import Store

# Per customer, over counted orders before T; `in_period` counts those at or after
# `start`. Grouped by the customer's key; its text is computed once per customer.
_FACTS_SQL = f"""
SELECT lowerUTF8(trimBoth(any(customer_email))) AS email,
       min(created_at) AS first_order_at, max(created_at) AS last_order_at,
       count() AS orders_count, sum(amount_total) AS ltv,
       countIf(created_at >= {{start:DateTime64(6, 'UTC')}}) AS in_period
FROM orders FINAL
WHERE merchant_id = {{merchant:UUID}} AND created_at < {{end:DateTime64(6, 'UTC')}}
  AND {COUNTED}
GROUP BY {CUSTOMER_KEY}
"""

SUMMARY_SQL = f"""
SELECT count(),
       countIf(first_order_at >= {{start:DateTime64(6, 'UTC')}}),
       countIf(in_period > 0 AND orders_count >= 2),
       countIf(last_order_at < {{churn_before:DateTime64(6, 'UTC')}}),
       countIf(ltv > 0),
       countIf(orders_count >= 2),
       sum(ltv)
FROM ({_FACTS_SQL})
"""

_CHURNED = f"""
FROM ({_FACTS_SQL})
WHERE last_order_at < {{churn_before:DateTime64(6, 'UTC')}}
"""
CHURNED_TOTAL_SQL = "SELECT count() " + _CHURNED
# `total` rides on every row of the page (the window sees all rows before LIMIT);
# only a page past the end needs CHURNED_TOTAL_SQL.
CHURNED_PAGE_SQL = f"""
SELECT email, last_order_at, orders_count, ltv, count() OVER () AS total {_CHURNED}
ORDER BY ltv DESC, email ASC
LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}
"""

# The same answers from `customer_facts` (0006_customer_facts.sql), which holds
# every customer's facts over all counted orders: they are the facts as of T
# whenever the merchant has no counted order at or after T, which `newest` (the
# merchant's last counted order) tells. With every order before T, "an order in
# [start, T)" is last_order_at >= start.
ROLLUP_SUMMARY_SQL = """
SELECT count(),
       countIf(first_order_at >= {start:DateTime64(6, 'UTC')}),
       countIf(last_order_at >= {start:DateTime64(6, 'UTC')} AND orders_count >= 2),
       countIf(last_order_at < {churn_before:DateTime64(6, 'UTC')}),
       countIf(ltv > 0),
       countIf(orders_count >= 2),
       sum(ltv),
       max(last_order_at)
FROM customer_facts FINAL
WHERE merchant_id = {merchant:UUID}
"""

_NEWEST = """
(SELECT max(last_order_at) FROM merchant_monthly FINAL WHERE merchant_id = {merchant:UUID})
"""
NEWEST_SQL = "SELECT " + _NEWEST
_ROLLUP_CHURNED = """
FROM customer_facts FINAL
WHERE merchant_id = {merchant:UUID} AND last_order_at < {churn_before:DateTime64(6, 'UTC')}
"""
ROLLUP_CHURNED_TOTAL_SQL = "SELECT count() " + _ROLLUP_CHURNED
ROLLUP_CHURNED_PAGE_SQL = f"""
SELECT email, last_order_at, orders_count, ltv, count() OVER () AS total, {_NEWEST} AS newest
{_ROLLUP_CHURNED}
ORDER BY ltv DESC, email ASC
LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}
"""

DAY = timedelta(days=1)


def customer_summary(
    store: Store,
    merchant_id: UUID,
    args: CustomerSummaryArgs,
    now: datetime,
    *,
    known: KnownRow | None = None,
) -> CustomerSummaryResult:
    """Counts of the customer segments as of T = the end of the period.

    `customers` are those with at least one counted order before T; `new`,
    `repeat`, `churned` and `vip` follow METRICS.md. vip is exactly
    ⌈10 % × C⌉ for C customers with ltv > 0 (ties only decide who, not how many).
    """
    _, currency = merchant_info(store, merchant_id, known)
    period = resolve_period(
        start=args.start,
        end=args.end,
        days=args.days,
        timezone=args.timezone,
        default_days=30,
        now=now,
    )
    params = period_params(merchant_id, period)
    params["churn_before"] = instant(period.end - args.churn_days * DAY)

    row = store.query(ROLLUP_SUMMARY_SQL, params)[0]
    if _after(row[-1], period.end):
        row = store.query(SUMMARY_SQL, params)[0]
    customers, new, repeat, churned, paying, returning, ltv = row[:7]
    return CustomerSummaryResult(
        period=period_out(period),
        customers=int(customers),
        new=int(new),
        repeat=int(repeat),
        churned=int(churned),
        vip=-(-int(paying) // 10),
        repeat_rate=ratio(returning, customers),
        avg_ltv=money(quotient(ltv, customers)),
        currency=currency,
    )


def churned_customers(
    store: Store,
    merchant_id: UUID,
    args: ChurnedCustomersArgs,
    now: datetime,
    *,
    known: KnownRow | None = None,
) -> ChurnedCustomersResult:
    """Customers whose last counted order is before T − churn_days, ltv descending.

    T is the start of the day after `as_of` (default: today) in `timezone`.
    Ties go to the e-mail, ascending. `total` counts every page.
    """
    _, currency = merchant_info(store, merchant_id, known)
    tz = zone(args.timezone)
    as_of = args.as_of or now.astimezone(tz).date()
    t = local_midnight(as_of + DAY, tz)
    query = args.model_dump(mode="json", exclude={"cursor", "limit"})
    offset = decode_cursor(args.cursor, query)

    params = {
        "merchant": str(merchant_id),
        "start": instant(t),
        "end": instant(t),
        "churn_before": instant(t - args.churn_days * DAY),
    }
    page_params = params | {"limit": args.limit + 1, "offset": offset}
    found = store.query(ROLLUP_CHURNED_PAGE_SQL, page_params)
    total_sql = ROLLUP_CHURNED_TOTAL_SQL
    newest = found[0][-1] if found else store.query(NEWEST_SQL, params)[0][0]
    if _after(newest, t):
        found = store.query(CHURNED_PAGE_SQL, page_params)
        total_sql = CHURNED_TOTAL_SQL
    if found:
        total = int(found[0][4])
    else:
        total = int(store.query(total_sql, params)[0][0]) if offset else 0
    rows, next_cursor = page([row[:4] for row in found], offset, args.limit, query)
    return ChurnedCustomersResult(
        as_of=t,
        churn_days=args.churn_days,
        currency=currency,
        total=total,
        items=[_churned(row, t) for row in rows],
        next_cursor=next_cursor,
    )


def _after(newest: datetime | None, t: datetime) -> bool:
    """True when the merchant has a counted order at or after T (so the rollup cannot answer)."""
    return newest is not None and utc(newest) >= t


def _churned(row: tuple[Any, ...], t: datetime) -> ChurnedCustomer:
    email, last_order_at, orders_count, ltv = row
    last = utc(last_order_at)
    return ChurnedCustomer(
        email=email,
        last_order_at=last,
        days_since_last_order=(t - last) // DAY,
        orders_count=int(orders_count),
        ltv=money(ltv),
    )
