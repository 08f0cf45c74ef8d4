"""The four platform metrics computed independently on the PostgreSQL source.

Written from METRICS.md, not from the store's SQL: plain filters over the source
tables, exact `Fraction` arithmetic in Python, and rounding half to even at the
very end. Each function returns what `result.model_dump(mode="json")` of the
matching tool would be (lists unpaginated), so tests and benchmarks can compare.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import psycopg

COUNTED = ("paid", "shipped", "delivered", "completed")
DAY = timedelta(days=1)


# ---------------------------------------------------------------- rounding and formats


def _round(value: Fraction, places: int) -> float:
    """value rounded half to even at `places` decimals, as the JSON number the tools emit."""
    scaled = value * 10**places
    whole = scaled.numerator // scaled.denominator
    rest = scaled - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    return float(Decimal(whole).scaleb(-places))


def cents(value: Any) -> float:
    return _round(Fraction(value), 2)


def quotient(numerator: Any, denominator: Any) -> float | None:
    """A ratio to 4 decimals, None when the denominator is 0."""
    if Fraction(denominator) == 0:
        return None
    return _round(Fraction(numerator) / Fraction(denominator), 4)


def growth(current: Any, previous: Any) -> float | None:
    if Fraction(previous) == 0:
        return None
    return _round((Fraction(current) - Fraction(previous)) * 100 / Fraction(previous), 4)


def iso(instant: datetime | None) -> str | None:
    if instant is None:
        return None
    instant = instant.astimezone(UTC)
    if instant.microsecond:
        return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_start(month: str | None, now: datetime) -> datetime:
    if month is None:
        return datetime(now.year, now.month, 1, tzinfo=UTC)
    year, number = (int(p) for p in month.split("-"))
    return datetime(year, number, 1, tzinfo=UTC)


def _shift_months(start: datetime, n: int) -> datetime:
    index = start.year * 12 + start.month - 1 + n
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _one(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row


# ---------------------------------------------------------------- platform_overview


def _month_orders(conn: psycopg.Connection[Any], start: datetime) -> dict[str, Any]:
    gmv, orders, fees, active = _one(
        conn,
        """
        SELECT coalesce(sum(amount_total), 0), count(*), coalesce(sum(platform_fee), 0),
               count(DISTINCT merchant_id)
        FROM orders
        WHERE status = ANY(%(counted)s) AND created_at >= %(lo)s AND created_at < %(hi)s
        """,
        {"counted": list(COUNTED), "lo": start, "hi": _shift_months(start, 1)},
    )
    return {"gmv": gmv, "orders": orders, "fees": fees, "active_merchants": active}


def platform_overview(
    conn: psycopg.Connection[Any], month: str | None, now: datetime
) -> dict[str, Any]:
    start = _month_start(month, now)
    this = _month_orders(conn, start)
    before = _month_orders(conn, _shift_months(start, -1))
    year_ago = _month_orders(conn, _shift_months(start, -12))
    (new_merchants,) = _one(
        conn,
        "SELECT count(*) FROM merchants WHERE created_at >= %(lo)s AND created_at < %(hi)s",
        {"lo": start, "hi": _shift_months(start, 1)},
    )

    def change(other: dict[str, Any]) -> dict[str, float | None]:
        return {k: growth(this[k], other[k]) for k in ("gmv", "orders", "active_merchants")}

    return {
        "month": start.strftime("%Y-%m"),
        "currency": "USD",
        "gmv": cents(this["gmv"]),
        "orders": this["orders"],
        "aov": cents(Fraction(this["gmv"]) / this["orders"]) if this["orders"] else 0.0,
        "active_merchants": this["active_merchants"],
        "new_merchants": new_merchants,
        "platform_fees": cents(this["fees"]),
        "take_rate": quotient(this["fees"], this["gmv"]),
        "mom_pct": change(before),
        "yoy_pct": change(year_ago),
    }


# ---------------------------------------------------------------- platform_merchants


def _merchant_rows(conn: psycopg.Connection[Any], now: datetime) -> list[dict[str, Any]]:
    cur = conn.execute(
        """
        SELECT m.id::text AS merchant_id, m.name, m.created_at,
               count(o.id) FILTER (WHERE o.created_at >= %(t30)s AND o.created_at < %(t)s)
                   AS orders_30d,
               coalesce(sum(o.amount_total)
                   FILTER (WHERE o.created_at >= %(t30)s AND o.created_at < %(t)s), 0) AS gmv_30d,
               coalesce(sum(o.amount_total)
                   FILTER (WHERE o.created_at >= %(t60)s AND o.created_at < %(t30)s), 0)
                   AS gmv_prev_30d,
               max(o.created_at) FILTER (WHERE o.created_at < %(t)s) AS last_order_at,
               count(o.id) FILTER (WHERE o.created_at >= %(t90)s AND o.created_at < %(t)s)
                   AS orders_90d
        FROM merchants m
        LEFT JOIN orders o ON o.merchant_id = m.id AND o.status = ANY(%(counted)s)
        WHERE m.created_at < %(t)s
        GROUP BY m.id, m.name, m.created_at
        """,
        {
            "t": now,
            "t30": now - 30 * DAY,
            "t60": now - 60 * DAY,
            "t90": now - 90 * DAY,
            "counted": list(COUNTED),
        },
    )
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _segment(row: dict[str, Any], now: datetime) -> str:
    last = row["last_order_at"]
    if last is not None and last >= now - 30 * DAY:
        return "active"
    if last is not None and now - 90 * DAY <= last < now - 30 * DAY:
        return "sleeping"
    if row["orders_90d"] == 0 and row["created_at"] < now - 90 * DAY:
        return "churned"
    return "other"


def _sort_key(sort_by: str, row: dict[str, Any]) -> tuple[Any, ...]:
    value = row[sort_by]
    if value is None:
        return (1, 0, row["merchant_id"])
    if isinstance(value, datetime):
        value = (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return (0, -Fraction(value), row["merchant_id"])


def platform_merchants(
    conn: psycopg.Connection[Any], segment: str, sort_by: str, now: datetime
) -> dict[str, Any]:
    """Every page of platform_merchants at once (`items` is the whole sorted list)."""
    rows = _merchant_rows(conn, now)
    for row in rows:
        row["segment"] = _segment(row, now)
        row["growth_pct"] = (
            None
            if row["gmv_prev_30d"] == 0
            else (Fraction(row["gmv_30d"]) - Fraction(row["gmv_prev_30d"]))
            * 100
            / Fraction(row["gmv_prev_30d"])
        )
    chosen = [r for r in rows if segment == "top" or r["segment"] == segment]
    chosen.sort(key=lambda r: _sort_key(sort_by, r))
    items = [
        {
            "merchant_id": r["merchant_id"],
            "name": r["name"],
            "segment": r["segment"],
            "gmv_30d": cents(r["gmv_30d"]),
            "orders_30d": r["orders_30d"],
            "gmv_prev_30d": cents(r["gmv_prev_30d"]),
            "growth_pct": None if r["growth_pct"] is None else _round(r["growth_pct"], 4),
            "last_order_at": iso(r["last_order_at"]),
        }
        for r in chosen
    ]
    return {
        "as_of": iso(now),
        "segment": segment,
        "sort_by": sort_by,
        "currency": "USD",
        "total": len(items),
        "items": items,
    }


# ---------------------------------------------------------------- subscriptions


def _monthly(amount: Decimal, interval: str) -> Fraction:
    return Fraction(amount) if interval == "month" else Fraction(amount) / 12


_BILLING_AT = """
    plan <> 'free' AND amount > 0
    AND coalesce(trial_ends_at, started_at) <= %(at)s
    AND (canceled_at IS NULL OR canceled_at > %(at)s)
"""


def _mrr_at(conn: psycopg.Connection[Any], at: datetime) -> dict[str, dict[str, Fraction]]:
    """merchant → plan → MRR at instant `at`."""
    out: dict[str, dict[str, Fraction]] = {}
    rows = conn.execute(
        f"SELECT merchant_id::text, plan, amount, billing_interval FROM subscriptions "
        f"WHERE {_BILLING_AT}",
        {"at": at},
    ).fetchall()
    for merchant, plan, amount, interval in rows:
        plans = out.setdefault(merchant, {})
        plans[plan] = plans.get(plan, Fraction(0)) + _monthly(amount, interval)
    return out


def _billed_before(conn: psycopg.Connection[Any], s: datetime) -> set[str]:
    """Merchants with a subscription billing at some instant t < s."""
    rows = conn.execute(
        """
        SELECT DISTINCT merchant_id::text FROM subscriptions
        WHERE plan <> 'free' AND amount > 0
          AND coalesce(trial_ends_at, started_at) < %(s)s
          AND (canceled_at IS NULL OR canceled_at > coalesce(trial_ends_at, started_at))
        """,
        {"s": s},
    ).fetchall()
    return {r[0] for r in rows}


def platform_mrr(conn: psycopg.Connection[Any], month: str | None, now: datetime) -> dict[str, Any]:
    s = _month_start(month, now)
    e = _shift_months(s, 1)
    at_s, at_e = _mrr_at(conn, s), _mrr_at(conn, e)
    before = _billed_before(conn, s)
    zero = Fraction(0)
    moves = dict.fromkeys(("new", "reactivation", "expansion", "contraction", "churned"), zero)
    churned_logos = 0
    for merchant in set(at_s) | set(at_e):
        old = sum(at_s.get(merchant, {}).values(), zero)
        new = sum(at_e.get(merchant, {}).values(), zero)
        if old == 0 and new > 0:
            moves["reactivation" if merchant in before else "new"] += new
        elif old > 0 and new == 0:
            moves["churned"] += old
            churned_logos += 1
        elif old > 0 and new > old:
            moves["expansion"] += new - old
        elif old > 0 and new < old:
            moves["contraction"] += old - new

    mrr_s = sum((sum(p.values(), zero) for p in at_s.values()), zero)
    mrr_e = sum((sum(p.values(), zero) for p in at_e.values()), zero)
    paying_s = sum(1 for p in at_s.values() if sum(p.values(), zero) > 0)
    lost = moves["contraction"] + moves["churned"]
    return {
        "month": s.strftime("%Y-%m"),
        "currency": "USD",
        "mrr": cents(mrr_e),
        "arr": cents(12 * mrr_e),
        "mrr_by_plan": {
            plan: cents(sum((p.get(plan, zero) for p in at_e.values()), zero))
            for plan in ("pro", "enterprise")
        },
        "paying_merchants": sum(1 for p in at_e.values() if sum(p.values(), zero) > 0),
        **{f"{k}_mrr": cents(v) for k, v in moves.items()},
        "logo_churn_rate": quotient(churned_logos, paying_s),
        "revenue_churn_rate": quotient(lost, mrr_s),
        "net_revenue_retention": quotient(mrr_s + moves["expansion"] - lost, mrr_s),
        "quick_ratio": quotient(moves["new"] + moves["reactivation"] + moves["expansion"], lost),
    }


# ---------------------------------------------------------------- platform_revenue


def resolve(
    start: date | None, end: date | None, days: int | None, now: datetime
) -> tuple[datetime, datetime]:
    """The UTC period of METRICS.md: dates inclusive, or the last N days up to now."""
    if start is not None and end is not None:
        return (
            datetime(start.year, start.month, start.day, tzinfo=UTC),
            datetime(end.year, end.month, end.day, tzinfo=UTC) + DAY,
        )
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    return today - ((days or 30) - 1) * DAY, now


def _fees_by_month(conn: psycopg.Connection[Any], lo: datetime, hi: datetime) -> list[Any]:
    return conn.execute(
        """
        SELECT to_char(m, 'YYYY-MM'),
               (SELECT coalesce(sum(platform_fee), 0) FROM orders
                WHERE status = ANY(%(counted)s)
                  AND created_at >= greatest(m, %(lo)s)
                  AND created_at < least(m + interval '1 month', %(hi)s))
        FROM generate_series(date_trunc('month', %(lo)s::timestamptz),
                             %(hi)s::timestamptz - interval '1 microsecond',
                             interval '1 month') AS m
        ORDER BY m
        """,
        {"lo": lo, "hi": hi, "counted": list(COUNTED)},
    ).fetchall()


def _subscription_revenue(
    conn: psycopg.Connection[Any], lo: datetime, hi: datetime
) -> dict[str, Fraction]:
    rows = conn.execute(
        """
        SELECT plan, amount, billing_interval,
               extract(epoch FROM least(coalesce(canceled_at, 'infinity'), %(hi)s)
                                  - greatest(coalesce(trial_ends_at, started_at), %(lo)s))
        FROM subscriptions
        WHERE plan <> 'free' AND amount > 0
          AND coalesce(trial_ends_at, started_at) < %(hi)s
          AND (canceled_at IS NULL OR canceled_at > %(lo)s)
        """,
        {"lo": lo, "hi": hi},
    ).fetchall()
    out = {"pro": Fraction(0), "enterprise": Fraction(0)}
    for plan, amount, interval, seconds in rows:
        if seconds > 0:
            annual = 12 * _monthly(amount, interval)
            out[plan] += annual * Fraction(seconds) / 31_536_000
    return out


def platform_revenue(
    conn: psycopg.Connection[Any],
    start: date | None,
    end: date | None,
    days: int | None,
    breakdown: bool,
    now: datetime,
) -> dict[str, Any]:
    conn.execute("SET TIME ZONE 'UTC'")
    lo, hi = resolve(start, end, days, now)
    months = _fees_by_month(conn, lo, hi)
    fees = sum((Fraction(v) for _, v in months), Fraction(0))
    plans = _subscription_revenue(conn, lo, hi)
    subs = sum(plans.values(), Fraction(0))
    transfers = dict(
        conn.execute(
            """
            SELECT s, coalesce((SELECT sum(amount) FROM transfers
                                WHERE status = s AND created_at >= %(lo)s
                                  AND created_at < %(hi)s), 0)
            FROM unnest(ARRAY['pending', 'paid', 'failed']) AS s
            """,
            {"lo": lo, "hi": hi},
        ).fetchall()
    )
    out: dict[str, Any] = {
        "period": {
            "start": iso(lo),
            "end": iso(hi),
            "timezone": "UTC",
            "start_date": lo.date().isoformat(),
            "end_date": (hi - timedelta(microseconds=1)).date().isoformat(),
        },
        "fee_revenue": cents(fees),
        "subscription_revenue": cents(subs),
        "transfers_paid": cents(transfers["paid"]),
        "total": cents(fees + subs),
        "currency": "USD",
        "fees_by_month": None,
        "subscriptions_by_plan": None,
        "transfers_by_status": None,
    }
    if breakdown:
        out["fees_by_month"] = [{"month": m, "fee_revenue": cents(v)} for m, v in months]
        out["subscriptions_by_plan"] = {p: cents(v) for p, v in plans.items()}
        out["transfers_by_status"] = {s: cents(v) for s, v in transfers.items()}
    return out
