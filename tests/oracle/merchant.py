"""The merchant metrics of METRICS.md computed on the PostgreSQL source, independently.

Written from METRICS.md, not from the ClickHouse SQL: periods and buckets are cut
with PostgreSQL's `AT TIME ZONE`, `date_trunc` and `generate_series`, and every
ratio is an exact `Fraction` rounded half to even at the end. Each function takes
a psycopg connection, the merchant, plain argument values and `now`, and returns
plain values shaped like the tool result's `model_dump(mode="json")`, so tests
can compare field by field and a benchmark can time the same question here.

`statuses` is the set of counted order statuses; only tests that show a wrong
definition would be caught pass anything else.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

import psycopg

COUNTED = ("paid", "shipped", "delivered", "completed")


# ---------------------------------------------------------------- values out


def money(value: Any) -> float:
    """Round half to even to the cent, as a JSON number."""
    return float(round(Fraction(value or 0), 2))


def ratio(numerator: Any, denominator: Any) -> float | None:
    if not denominator:
        return None
    return float(round(Fraction(numerator or 0) / Fraction(denominator), 4))


def growth(current: Any, previous: Any) -> float | None:
    if not previous:
        return None
    return float(round((Fraction(current) - Fraction(previous)) * 100 / Fraction(previous), 4))


def iso(value: datetime) -> str:
    value = value.astimezone(UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return value.strftime(pattern)


def _rows(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[Any]:
    # Day arithmetic on timestamptz follows the session zone; UTC makes a day 24 hours.
    conn.execute("SET TIME ZONE 'UTC'")
    return conn.execute(sql, params).fetchall()


# ---------------------------------------------------------------- periods

PERIOD_DATES = """
SELECT %(start)s::date::timestamp AT TIME ZONE %(tz)s,
       (%(end)s::date + 1)::timestamp AT TIME ZONE %(tz)s
"""
PERIOD_DAYS = """
SELECT ((%(now)s::timestamptz AT TIME ZONE %(tz)s)::date - (%(days)s - 1))::timestamp
           AT TIME ZONE %(tz)s,
       %(now)s::timestamptz
"""


def period(
    conn: psycopg.Connection[Any],
    start: date | None,
    end: date | None,
    days: int | None,
    tz: str,
    default_days: int,
    now: datetime,
) -> tuple[datetime, datetime]:
    """[start, end) as UTC instants: dates inclusive, or the last N local days up to now."""
    if start is not None:
        return tuple(_rows(conn, PERIOD_DATES, {"start": start, "end": end, "tz": tz})[0])
    params = {"now": now, "tz": tz, "days": days or default_days}
    return tuple(_rows(conn, PERIOD_DAYS, params)[0])


# ---------------------------------------------------------------- get_sales

FIGURES = """
SELECT coalesce(sum(amount_total), 0), count(*),
       count(DISTINCT lower(trim(customer_email))), coalesce(sum(platform_fee), 0)
FROM orders
WHERE merchant_id = %(merchant)s AND status = ANY(%(statuses)s)
  AND created_at >= %(lo)s AND created_at < %(hi)s
"""

# Each order's bucket start: the local hour start is the order's instant minus
# the local minutes and seconds (right in both repeated hours of a fall-back);
# days, weeks and months start at a local midnight.
ORDER_BUCKET = {
    "hour": "created_at - ((created_at AT TIME ZONE %(tz)s)"
    " - date_trunc('hour', created_at AT TIME ZONE %(tz)s))",
    "local": "date_trunc(%(unit)s, created_at AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s",
}
BUCKETS = {
    "hour": """
        SELECT g FROM generate_series(
            %(lo)s::timestamptz - ((%(lo)s::timestamptz AT TIME ZONE %(tz)s)
                - date_trunc('hour', %(lo)s::timestamptz AT TIME ZONE %(tz)s)),
            %(hi)s::timestamptz, interval '1 hour') AS g""",
    "local": """
        SELECT g AT TIME ZONE %(tz)s FROM generate_series(
            date_trunc(%(unit)s, %(lo)s::timestamptz AT TIME ZONE %(tz)s),
            %(hi)s::timestamptz AT TIME ZONE %(tz)s,
            ('1 ' || %(unit)s)::interval) AS g""",
}
SERIES = """
WITH buckets(bucket_start) AS ({buckets}),
sold AS (
    SELECT {bucket} AS bucket_start, amount_total, platform_fee,
           lower(trim(customer_email)) AS customer
    FROM orders
    WHERE merchant_id = %(merchant)s AND status = ANY(%(statuses)s)
      AND created_at >= %(lo)s AND created_at < %(hi)s
)
SELECT b.bucket_start, coalesce(sum(s.amount_total), 0), count(s.amount_total),
       count(DISTINCT s.customer), coalesce(sum(s.platform_fee), 0)
FROM buckets b LEFT JOIN sold s USING (bucket_start)
WHERE b.bucket_start < %(hi)s
GROUP BY b.bucket_start
ORDER BY b.bucket_start
"""


def _figures(revenue: Any, orders: int, customers: int, fees: Any) -> dict[str, Any]:
    aov = Fraction(revenue) / orders if orders else 0
    return {
        "revenue": money(revenue),
        "orders": orders,
        "aov": money(aov),
        "unique_customers": customers,
        "platform_fees": money(fees),
    }


def sales(
    conn: psycopg.Connection[Any],
    merchant_id: UUID,
    *,
    start: date | None = None,
    end: date | None = None,
    days: int | None = None,
    timezone: str = "UTC",
    bucket: str = "day",
    now: datetime,
    statuses: tuple[str, ...] = COUNTED,
) -> dict[str, Any]:
    """get_sales: figures of the period, its series, the previous period and growth."""
    lo, hi = period(conn, start, end, days, timezone, 7, now)
    base = {"merchant": merchant_id, "statuses": list(statuses), "tz": timezone}
    current = _rows(conn, FIGURES, base | {"lo": lo, "hi": hi})[0]
    previous = _rows(conn, FIGURES, base | {"lo": lo - (hi - lo), "hi": lo})[0]

    kind = "hour" if bucket == "hour" else "local"
    sql = SERIES.format(buckets=BUCKETS[kind], bucket=ORDER_BUCKET[kind])
    series = _rows(conn, sql, base | {"lo": lo, "hi": hi, "unit": bucket})

    growth_pct = {
        name: growth(cur, prev) for name, cur, prev in zip(_NAMES, current, previous, strict=True)
    }
    cur_aov = Fraction(current[0]) / current[1] if current[1] else 0
    prev_aov = Fraction(previous[0]) / previous[1] if previous[1] else 0
    growth_pct["aov"] = growth(cur_aov, prev_aov)
    return {
        "period": {"start": iso(lo), "end": iso(hi), "timezone": timezone},
        **_figures(*current),
        "series": [{"bucket_start": iso(row[0]), **_figures(*row[1:])} for row in series],
        "previous": _figures(*previous),
        "growth_pct": growth_pct,
    }


_NAMES = ("revenue", "orders", "unique_customers", "platform_fees")


# ---------------------------------------------------------------- top_products

TOP_PRODUCTS = """
SELECT i.product_id::text, p.sku, p.name, p.category,
       sum(i.amount) AS revenue, sum(i.quantity) AS quantity, count(DISTINCT i.order_id)
FROM order_items i
JOIN orders o ON o.id = i.order_id
LEFT JOIN products p ON p.id = i.product_id
WHERE o.merchant_id = %(merchant)s AND o.status = ANY(%(statuses)s)
  AND o.created_at >= %(lo)s AND o.created_at < %(hi)s
GROUP BY i.product_id, p.sku, p.name, p.category
ORDER BY {measure} DESC, i.product_id::text COLLATE "C" ASC
"""


def top_products(
    conn: psycopg.Connection[Any],
    merchant_id: UUID,
    *,
    start: date | None = None,
    end: date | None = None,
    days: int | None = None,
    timezone: str = "UTC",
    sort_by: str = "revenue",
    now: datetime,
    statuses: tuple[str, ...] = COUNTED,
) -> dict[str, Any]:
    """top_products: every product sold in the period, ranked (all pages at once)."""
    lo, hi = period(conn, start, end, days, timezone, 30, now)
    measure = {"revenue": "revenue", "quantity": "quantity"}[sort_by]
    params = {"merchant": merchant_id, "statuses": list(statuses), "lo": lo, "hi": hi}
    rows = _rows(conn, TOP_PRODUCTS.format(measure=measure), params)
    total = sum((r[4] for r in rows), Decimal(0))
    items = [
        {
            "product_id": pid,
            "sku": sku or "",
            "name": name or "",
            "category": category or "",
            "revenue": money(revenue),
            "quantity": int(quantity),
            "orders": int(orders),
            "share_of_revenue": ratio(revenue, total),
        }
        for pid, sku, name, category, revenue, quantity, orders in rows
    ]
    return {"total_revenue": money(total), "items": items}


# ---------------------------------------------------------------- customers

FACTS = """
SELECT lower(trim(customer_email)) AS customer,
       min(created_at) AS first_order_at, max(created_at) AS last_order_at,
       count(*) AS orders_count, sum(amount_total) AS ltv,
       count(*) FILTER (WHERE created_at >= %(lo)s) AS in_period
FROM orders
WHERE merchant_id = %(merchant)s AND status = ANY(%(statuses)s) AND created_at < %(t)s
GROUP BY 1
"""
SUMMARY = f"""
WITH facts AS ({FACTS}),
ranked AS (
    SELECT *, row_number() OVER (ORDER BY ltv DESC, customer COLLATE "C") AS place,
           count(*) FILTER (WHERE ltv > 0) OVER () AS paying
    FROM facts
)
SELECT count(*) FILTER (WHERE orders_count >= 1),
       count(*) FILTER (WHERE first_order_at >= %(lo)s),
       count(*) FILTER (WHERE in_period > 0 AND orders_count >= 2),
       count(*) FILTER (WHERE last_order_at < %(t)s - make_interval(days => %(churn_days)s)),
       count(*) FILTER (WHERE ltv > 0 AND place <= ceil(paying * 0.1)),
       count(*) FILTER (WHERE orders_count >= 2),
       coalesce(sum(ltv), 0)
FROM ranked
"""


def customer_summary(
    conn: psycopg.Connection[Any],
    merchant_id: UUID,
    *,
    start: date | None = None,
    end: date | None = None,
    days: int | None = None,
    timezone: str = "UTC",
    churn_days: int = 90,
    now: datetime,
    statuses: tuple[str, ...] = COUNTED,
) -> dict[str, Any]:
    """customer_summary as of T = the end of the period."""
    lo, hi = period(conn, start, end, days, timezone, 30, now)
    params = {
        "merchant": merchant_id,
        "statuses": list(statuses),
        "lo": lo,
        "t": hi,
        "churn_days": churn_days,
    }
    customers, new, repeat, churned, vip, returning, ltv = _rows(conn, SUMMARY, params)[0]
    return {
        "customers": customers,
        "new": new,
        "repeat": repeat,
        "churned": churned,
        "vip": vip,
        "repeat_rate": ratio(returning, customers),
        "avg_ltv": money(Fraction(ltv) / customers if customers else 0),
    }


CHURN_T = """
SELECT (coalesce(%(as_of)s::date, (%(now)s::timestamptz AT TIME ZONE %(tz)s)::date) + 1)
       ::timestamp AT TIME ZONE %(tz)s
"""
CHURNED = f"""
WITH facts AS ({FACTS})
SELECT customer, last_order_at,
       floor(extract(epoch FROM %(t)s - last_order_at) / 86400)::int,
       orders_count, ltv
FROM facts
WHERE last_order_at < %(t)s - make_interval(days => %(churn_days)s)
ORDER BY ltv DESC, customer COLLATE "C" ASC
"""


def churned_customers(
    conn: psycopg.Connection[Any],
    merchant_id: UUID,
    *,
    as_of: date | None = None,
    churn_days: int = 90,
    timezone: str = "UTC",
    now: datetime,
    statuses: tuple[str, ...] = COUNTED,
) -> dict[str, Any]:
    """churned_customers at T = the start of the day after as_of (all pages at once)."""
    t = _rows(conn, CHURN_T, {"as_of": as_of, "now": now, "tz": timezone})[0][0]
    params = {
        "merchant": merchant_id,
        "statuses": list(statuses),
        "lo": t,
        "t": t,
        "churn_days": churn_days,
    }
    items = [
        {
            "email": email,
            "last_order_at": iso(last),
            "days_since_last_order": since,
            "orders_count": count,
            "ltv": money(ltv),
        }
        for email, last, since, count, ltv in _rows(conn, CHURNED, params)
    ]
    return {"as_of": iso(t), "total": len(items), "items": items}


# ---------------------------------------------------------------- inventory

INVENTORY = """
WITH sold AS (
    SELECT i.product_id, sum(i.quantity) AS units
    FROM order_items i JOIN orders o ON o.id = i.order_id
    WHERE o.merchant_id = %(merchant)s AND o.status = ANY(%(statuses)s)
      AND o.created_at >= %(now)s::timestamptz - interval '30 days'
      AND o.created_at < %(now)s::timestamptz
    GROUP BY i.product_id
)
SELECT p.id::text, p.sku, p.name, p.stock_quantity, coalesce(s.units, 0), p.low_stock_threshold
FROM products p LEFT JOIN sold s ON s.product_id = p.id
WHERE p.merchant_id = %(merchant)s AND p.status = 'active'
"""
STATUS_ORDER = ("out", "low", "overstock", "healthy")


def _stock_item(row: tuple[Any, ...], lead: int, cover: int) -> dict[str, Any]:
    pid, sku, name, stock, units, threshold = row
    velocity = Fraction(int(units), 30)
    days_of_cover = Fraction(stock) / velocity if velocity else None
    if stock <= 0:
        status = "out"
    elif stock <= threshold:
        status = "low"
    elif (days_of_cover is not None and days_of_cover > 180) or (
        velocity == 0 and stock > threshold
    ):
        status = "overstock"
    else:
        status = "healthy"
    return {
        "product_id": pid,
        "sku": sku,
        "name": name,
        "stock": stock,
        "units_sold_30d": int(units),
        "daily_velocity": float(round(velocity, 4)),
        "days_of_cover": None if days_of_cover is None else float(round(days_of_cover, 4)),
        "turnover_30d": ratio(units, stock) if stock > 0 else None,
        "status": status,
        "suggested_reorder_qty": max(0, math.ceil(velocity * (lead + cover)) - stock),
    }


def inventory_status(
    conn: psycopg.Connection[Any],
    merchant_id: UUID,
    *,
    lead_time_days: int = 14,
    cover_days: int = 30,
    now: datetime,
    statuses: tuple[str, ...] = COUNTED,
) -> dict[str, Any]:
    """inventory_status of every active product as of now, sorted (all pages at once)."""
    params = {"merchant": merchant_id, "statuses": list(statuses), "now": now}
    items = [_stock_item(r, lead_time_days, cover_days) for r in _rows(conn, INVENTORY, params)]
    items.sort(
        key=lambda i: (
            STATUS_ORDER.index(i["status"]),
            -i["suggested_reorder_qty"],
            i["sku"].encode(),
        )
    )
    counts = {s: sum(1 for i in items if i["status"] == s) for s in STATUS_ORDER}
    return {"as_of": iso(now), "items": items, "counts": counts}
