"""Platform metrics (METRICS.md, administrators only): overview, merchants, MRR, revenue.

Platform-wide scans of `orders FINAL` are too slow (the table is sorted by
merchant, so even one day of every merchant touches every granule of its
month), so these read only rollups kept exact by `store.rollups`: whole UTC
months from `merchant_monthly`, whole UTC days from `merchant_daily`, and the
days cut by an instant (`now`, `now − 30 days`, …) from `merchant_day_orders`,
which lists each merchant-day's counted orders. Subscriptions and transfers
are small (a few rows per merchant) and are read from their latest state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any
from uuid import UUID

from loguru import logger

from optima_bi_mcp.metrics import subscriptions
from optima_bi_mcp.metrics.models import (
    MonthFees,
    PeriodOut,
    PlatformGrowth,
    PlatformMerchant,
    PlatformMerchantsArgs,
    PlatformMerchantsResult,
    PlatformMrrArgs,
    PlatformMrrResult,
    PlatformOverviewArgs,
    PlatformOverviewResult,
    PlatformRevenueArgs,
    PlatformRevenueResult,
)
from optima_bi_mcp.metrics.numbers import growth_pct, money, ratio, utc
from optima_bi_mcp.metrics.pagination import decode_cursor, page
from optima_bi_mcp.metrics.periods import (
    Period,
    add_months,
    month_bounds,
    parse_month,
    resolve_period,
)
from optima_bi_mcp.metrics.platform_sql import instants, midnight, ts
from optima_bi_mcp.store.client import Store

log = logger.bind(module=__name__)

CURRENCY = "USD"
TRANSFER_STATUSES = ("pending", "paid", "failed")
DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- platform_overview

_MONTHS_FROM_ROLLUP = """
SELECT month, sum(orders), sum(gmv), sum(platform_fees), uniqExactIf(merchant_id, orders > 0)
FROM merchant_monthly FINAL
WHERE month IN ({m0:Date}, {m1:Date}, {m12:Date})
GROUP BY month
"""

_NEW_MERCHANTS = """
SELECT count() FROM merchants FINAL
WHERE created_at >= {lo:DateTime64(6, 'UTC')} AND created_at < {hi:DateTime64(6, 'UTC')}
"""


@dataclass(frozen=True)
class MonthTotals:
    orders: int = 0
    gmv: Decimal = Decimal(0)
    platform_fees: Decimal = Decimal(0)
    active_merchants: int = 0


def platform_overview(
    store: Store, args: PlatformOverviewArgs, now: datetime
) -> PlatformOverviewResult:
    """GMV, orders, AOV, active and new merchants, fees and take rate of a UTC month."""
    month = parse_month(args.month, now)
    previous, year_ago = add_months(month, -1), add_months(month, -12)
    params = {"m0": month, "m1": previous, "m12": year_ago}
    totals = {
        row[0]: MonthTotals(int(row[1]), Decimal(row[2]), Decimal(row[3]), int(row[4]))
        for row in store.query(_MONTHS_FROM_ROLLUP, params)
    }
    current = totals.get(month, MonthTotals())
    lo, hi = month_bounds(month)
    new = store.query(_NEW_MERCHANTS, {"lo": ts(lo), "hi": ts(hi)})[0][0]

    return PlatformOverviewResult(
        month=month.strftime("%Y-%m"),
        currency=CURRENCY,
        gmv=money(current.gmv),
        orders=current.orders,
        aov=money(current.gmv / current.orders if current.orders else 0),
        active_merchants=current.active_merchants,
        new_merchants=int(new),
        platform_fees=money(current.platform_fees),
        take_rate=ratio(current.platform_fees, current.gmv),
        mom_pct=_growth(current, totals.get(previous, MonthTotals())),
        yoy_pct=_growth(current, totals.get(year_ago, MonthTotals())),
    )


def _growth(current: MonthTotals, before: MonthTotals) -> PlatformGrowth:
    return PlatformGrowth(
        gmv=growth_pct(current.gmv, before.gmv),
        orders=growth_pct(current.orders, before.orders),
        active_merchants=growth_pct(current.active_merchants, before.active_merchants),
    )


# ---------------------------------------------------------------- platform_merchants

# Every merchant with its figures as of t, in one query: the whole days strictly
# between the edge days from `merchant_daily`, last_order_at of the months before
# the current one from `merchant_monthly`, and the edge days (t's, t30's, t60's)
# split at the window bounds from their lists of counted orders. Rollups are
# filtered in PREWHERE on their sorting key: with FINAL a WHERE is applied after
# merging whole granules (for the lists, many days' worth), and a condition on
# the sorting key keeps or drops every version of a row together, so FINAL still
# picks the latest one.
_MERCHANTS = f"""
WITH {instants("t", "t30", "t60")}
SELECT m.id, toString(m.id), m.name, m.created_at,
       f.orders_30d, f.gmv_30d, f.gmv_prev_30d, f.last_order_at
FROM (SELECT id, name, created_at FROM merchants FINAL WHERE created_at < t) AS m
LEFT JOIN (
    SELECT merchant_id, sum(n) AS orders_30d, sum(g) AS gmv_30d,
           sum(g_prev) AS gmv_prev_30d, max(last) AS last_order_at
    FROM (
        SELECT merchant_id, sumIf(orders, day > {{d30:Date}}) AS n,
               sumIf(gmv, day > {{d30:Date}}) AS g, sumIf(gmv, day < {{d30:Date}}) AS g_prev,
               max(last_order_at) AS last
        FROM merchant_daily FINAL
        PREWHERE day > {{d60:Date}} AND day < {{d0:Date}} AND day != {{d30:Date}}
        GROUP BY merchant_id
        UNION ALL
        SELECT merchant_id, 0, toDecimal128(0, 2), toDecimal128(0, 2), max(last_order_at)
        FROM merchant_monthly FINAL PREWHERE month < {{m0:Date}}
        GROUP BY merchant_id
        UNION ALL
        SELECT merchant_id, countIf(o.1 >= t30), sumIf(o.2, o.1 >= t30),
               sumIf(o.2, o.1 >= t60 AND o.1 < t30), max(o.1)
        FROM (
            SELECT merchant_id, orders FROM merchant_day_orders FINAL
            PREWHERE day IN ({{d0:Date}}, {{d30:Date}}, {{d60:Date}})
        )
        ARRAY JOIN orders AS o
        WHERE o.1 < t
        GROUP BY merchant_id
    )
    GROUP BY merchant_id
) AS f ON f.merchant_id = m.id
"""


@dataclass
class MerchantFigures:
    """One merchant's 30-day figures as of T, exact until the result is built."""

    merchant_id: UUID
    key: str
    name: str
    created_at: datetime
    orders_30d: int = 0
    gmv_30d: Decimal = Decimal(0)
    gmv_prev_30d: Decimal = Decimal(0)
    last_order_at: datetime | None = None

    def add(self, orders: int, gmv: Decimal, gmv_prev: Decimal, last: datetime | None) -> None:
        self.orders_30d += int(orders)
        self.gmv_30d += Decimal(gmv)
        self.gmv_prev_30d += Decimal(gmv_prev)
        if last is not None:
            last = utc(last)
            if self.last_order_at is None or last > self.last_order_at:
                self.last_order_at = last

    @property
    def growth_pct(self) -> Decimal | None:
        return growth_pct(self.gmv_30d, self.gmv_prev_30d)

    def segment(self, now: datetime) -> str:
        last = self.last_order_at
        if last is not None and last >= now - 30 * DAY:
            return "active"
        if last is not None and last >= now - 90 * DAY:
            return "sleeping"
        if self.created_at < now - 90 * DAY:
            return "churned"
        return "other"


def platform_merchants(
    store: Store, args: PlatformMerchantsArgs, now: datetime
) -> PlatformMerchantsResult:
    """Merchants with 30-day GMV, growth and last order, by segment, sorted and paginated."""
    query = {"segment": args.segment, "sort_by": args.sort_by}
    offset = decode_cursor(args.cursor, query)

    figures = merchant_figures(store, now)
    chosen = [f for f in figures if args.segment == "top" or f.segment(now) == args.segment]
    chosen.sort(key=_SORT_KEYS[args.sort_by])
    window = chosen[offset : offset + args.limit + 1]
    items, next_cursor = page(window, offset, args.limit, query)

    return PlatformMerchantsResult(
        as_of=now,
        segment=args.segment,
        sort_by=args.sort_by,
        currency=CURRENCY,
        total=len(chosen),
        items=[_merchant_item(f, now) for f in items],
        next_cursor=next_cursor,
    )


def merchant_figures(store: Store, now: datetime) -> list[MerchantFigures]:
    """Every merchant created before `now`, with its figures over the two 30-day windows."""
    t30, t60 = now - 30 * DAY, now - 60 * DAY
    params = {
        "t": ts(now),
        "t30": ts(t30),
        "t60": ts(t60),
        "d0": now.date(),
        "d30": t30.date(),
        "d60": t60.date(),
        "m0": now.date().replace(day=1),
    }
    figures = []
    for merchant_id, key, name, created_at, *sums in store.query(_MERCHANTS, params):
        one = MerchantFigures(UUID(str(merchant_id)), key, name, utc(created_at))
        one.add(*sums)
        figures.append(one)
    return figures


def _nulls_last_desc(value: Any) -> tuple[int, Any]:
    """A sort key placing larger values first and None after every value."""
    if value is None:
        return (1, 0)
    if isinstance(value, datetime):
        return (0, -((value - EPOCH) // timedelta(microseconds=1)))
    return (0, -value)


_SORT_KEYS = {
    "gmv_30d": lambda f: (-f.gmv_30d, f.key),
    "growth_pct": lambda f: (*_nulls_last_desc(f.growth_pct), f.key),
    "last_order_at": lambda f: (*_nulls_last_desc(f.last_order_at), f.key),
}


def _merchant_item(figures: MerchantFigures, now: datetime) -> PlatformMerchant:
    return PlatformMerchant(
        merchant_id=figures.merchant_id,
        name=figures.name,
        segment=figures.segment(now),  # type: ignore[arg-type]
        gmv_30d=money(figures.gmv_30d),
        orders_30d=figures.orders_30d,
        gmv_prev_30d=money(figures.gmv_prev_30d),
        growth_pct=figures.growth_pct,
        last_order_at=figures.last_order_at,
    )


# ---------------------------------------------------------------- platform_mrr


def platform_mrr(store: Store, args: PlatformMrrArgs, now: datetime) -> PlatformMrrResult:
    """MRR at the end of a UTC month, its movements over the month, and the rates."""
    return subscriptions.platform_mrr(store, args, now)


# ---------------------------------------------------------------- platform_revenue

# Fees of counted orders per UTC month, each stretch of the period from the
# coarsest rollup that covers it, and transfers per status: the branches a period
# needs are joined into one query (one planning, one round trip). Rollups are
# filtered in PREWHERE on their sorting key, as in `_MERCHANTS`.
_FEES_WHOLE_MONTHS = """
SELECT 'fees', month, '', sum(platform_fees) FROM merchant_monthly FINAL
PREWHERE month IN {months:Array(Date)}
GROUP BY month
"""

_FEES_WHOLE_DAYS = """
SELECT 'fees', toStartOfMonth(day) AS month, '', sum(platform_fees)
FROM merchant_daily FINAL
PREWHERE (day >= {lo1:Date} AND day < {hi1:Date}) OR (day >= {lo2:Date} AND day < {hi2:Date})
GROUP BY month
"""

_FEES_PARTIAL_DAY = """
SELECT 'fees', toStartOfMonth({day:Date}), '', sum(o.3)
FROM (SELECT orders FROM merchant_day_orders FINAL PREWHERE day = {day:Date})
ARRAY JOIN orders AS o
WHERE o.1 >= {cut:DateTime64(6, 'UTC')} AND o.1 < {end:DateTime64(6, 'UTC')}
"""

_TRANSFERS = """
SELECT 'transfers', toDate(0), toString(status), sum(amount) FROM transfers FINAL
WHERE created_at >= {start:DateTime64(6, 'UTC')} AND created_at < {end:DateTime64(6, 'UTC')}
GROUP BY status
"""


def platform_revenue(
    store: Store, args: PlatformRevenueArgs, now: datetime
) -> PlatformRevenueResult:
    """Fee and subscription revenue and paid transfers over a UTC period."""
    period = resolve_period(
        start=args.start, end=args.end, days=args.days, timezone="UTC", default_days=30, now=now
    )
    fees, transfers = fees_and_transfers(store, period)
    by_plan = subscriptions.revenue_by_plan(subscriptions.billing_rows(store), period)
    with localcontext() as exact:
        # Subscription revenue has up to 60 significant digits; keep them all.
        exact.prec = 60
        fee_revenue = sum(fees.values(), Decimal(0))
        subscription_revenue = sum(by_plan.values(), Decimal(0))
        total = fee_revenue + subscription_revenue

    result = PlatformRevenueResult(
        period=PeriodOut(
            start=period.start,
            end=period.end,
            timezone=period.timezone,
            start_date=period.start_date,
            end_date=period.end_date,
        ),
        fee_revenue=money(fee_revenue),
        subscription_revenue=money(subscription_revenue),
        transfers_paid=money(transfers["paid"]),
        total=money(total),
        currency=CURRENCY,
    )
    if args.breakdown:
        result.fees_by_month = [
            MonthFees(month=m.strftime("%Y-%m"), fee_revenue=money(v)) for m, v in fees.items()
        ]
        result.subscriptions_by_plan = {plan: money(v) for plan, v in by_plan.items()}
        result.transfers_by_status = {status: money(v) for status, v in transfers.items()}
    return result


def fees_and_transfers(
    store: Store, period: Period
) -> tuple[dict[date, Decimal], dict[str, Decimal]]:
    """Σ platform_fee of counted orders per UTC month the period overlaps (in order),
    and Σ amount of transfers created in the period per status (every status present)."""
    months: dict[date, Decimal] = {}
    month = period.start.date().replace(day=1)
    while midnight(month) < period.end:
        months[month] = Decimal(0)
        month = add_months(month, 1)
    transfers = dict.fromkeys(TRANSFER_STATUSES, Decimal(0))

    branches, params = _revenue_branches(period)
    for kind, month_start, status, amount in store.query("\nUNION ALL\n".join(branches), params):
        if kind == "fees":
            months[month_start] += Decimal(amount)
        else:
            transfers[status] = transfers.get(status, Decimal(0)) + Decimal(amount)
    return months, transfers


def _revenue_branches(period: Period) -> tuple[list[str], dict[str, Any]]:
    """The branches of the fees-and-transfers query this period needs, with their parameters.

    Whole months, then the whole days around them; a period ending at `now` ends
    inside a day, which is split with that day's list of orders.
    """
    whole_end = period.end.date()
    inside, (head, tail) = split_months(period.start.date(), whole_end)
    branches = [_TRANSFERS]
    params: dict[str, Any] = {"start": ts(period.start), "end": ts(period.end)}
    if inside:
        branches.append(_FEES_WHOLE_MONTHS)
        params["months"] = inside
    if head[0] < head[1] or tail[0] < tail[1]:
        branches.append(_FEES_WHOLE_DAYS)
        params.update(lo1=head[0], hi1=head[1], lo2=tail[0], hi2=tail[1])
    if period.end > midnight(whole_end):
        branches.append(_FEES_PARTIAL_DAY)
        params.update(day=whole_end, cut=ts(midnight(whole_end)))
    return branches, params


def split_months(
    lo: date, hi: date
) -> tuple[list[date], tuple[tuple[date, date], tuple[date, date]]]:
    """The whole months inside the days [lo, hi), and the day ranges before and after them."""
    first = lo if lo.day == 1 else add_months(lo.replace(day=1), 1)
    inside: list[date] = []
    while add_months(first, len(inside) + 1) <= hi:
        inside.append(add_months(first, len(inside)))
    if not inside:
        return [], ((lo, max(lo, hi)), (lo, lo))
    return inside, ((lo, inside[0]), (add_months(inside[-1], 1), hi))
