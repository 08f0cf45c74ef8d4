"""Subscription metrics (METRICS.md "Subscriptions: MRR"): platform_mrr and revenue by plan.

Amounts are summed as exact integers in "annual cents" (12 × the monthly amount
in cents: amount × 1200 for `month` billing, amount × 100 for `year`), so a
yearly price divided by 12 never leaves a remainder to round early. Money is
rounded to the cent, half to even, only when the result is built.

The table holds a few rows per merchant, so it is read whole in one plain query
(instants as integer microseconds) and the definitions are applied in Python:
on this engine a query's cost is mostly planning its expressions, and the
per-merchant sums and movements cost more to plan than the rows cost to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import NamedTuple

from optima_bi_mcp.metrics.models import MrrByPlan, PlatformMrrArgs, PlatformMrrResult
from optima_bi_mcp.metrics.numbers import money, ratio
from optima_bi_mcp.metrics.periods import Period, month_bounds, parse_month
from optima_bi_mcp.store.client import Store

PAID_PLANS = ("pro", "enterprise")
SECONDS_PER_YEAR = 31_536_000
MICROS = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Every subscription of the latest state, instants as microseconds since the epoch
# and amounts in cents; which rows bill, and from when, is decided in `billing_rows`.
_SUBSCRIPTIONS = """
SELECT toString(merchant_id), plan, billing_interval, toInt64(amount * 100),
       toUnixTimestamp64Micro(started_at), toUnixTimestamp64Micro(trial_ends_at),
       toUnixTimestamp64Micro(canceled_at)
FROM subscriptions FINAL
"""


def micros(instant: datetime) -> int:
    """An instant as integer microseconds since the Unix epoch, as the store gives them."""
    return (instant.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


class Billing(NamedTuple):
    """One paid subscription: billing from `billing_from` until `canceled_at` (µs)."""

    merchant_id: str
    plan: str
    billing_from: int
    canceled_at: int | None
    annual_cents: int

    def billing_at(self, t: int) -> bool:
        """Billing at instant t (METRICS.md): started by t and not canceled by t."""
        return self.billing_from <= t and (self.canceled_at is None or self.canceled_at > t)

    def billed_before(self, s: int) -> bool:
        """Billing at some instant before s: its first billing instant is before s."""
        start = self.billing_from
        return start < s and (self.canceled_at is None or self.canceled_at > start)

    def micros_within(self, lo: int, hi: int) -> int:
        """Microseconds it is billing inside [lo, hi)."""
        end = hi if self.canceled_at is None else min(self.canceled_at, hi)
        return max(0, end - max(self.billing_from, lo))


def billing_rows(store: Store) -> list[Billing]:
    """The subscriptions that can bill (plan ≠ free, amount > 0), from coalesce(trial_ends_at,
    started_at), with their amount as annual cents (12 × monthly_amount × 100)."""
    rows = []
    for merchant, plan, interval, cents, started, trial_ends, canceled in store.query(
        _SUBSCRIPTIONS
    ):
        if plan == "free" or cents <= 0:
            continue
        annual = cents * 12 if interval == "month" else cents
        start = started if trial_ends is None else trial_ends
        rows.append(Billing(merchant, plan, start, canceled, annual))
    return rows


def exact_dollars(units: int, divisor: int) -> Decimal:
    """units / divisor with enough digits that rounding to the cent afterwards is exact.

    The divisors here are below 10^20, so a quotient that is not a half-cent tie
    lies at least 10^-20 away from one; 60 significant digits decide it correctly.
    """
    with localcontext() as ctx:
        ctx.prec = 60
        return Decimal(units) / Decimal(divisor)


@dataclass(frozen=True)
class MerchantMrr:
    """One merchant's MRR at s and e, in annual cents, and whether it ever billed before s."""

    at_start: int
    at_end: int
    billed_before: bool


@dataclass
class Movements:
    """The MRR movements of a month summed over merchants, in annual cents."""

    new: int = 0
    reactivation: int = 0
    expansion: int = 0
    contraction: int = 0
    churned: int = 0
    churned_merchants: int = 0
    paying_at_start: int = 0
    paying_at_end: int = 0

    def add(self, m: MerchantMrr) -> None:
        self.paying_at_start += m.at_start > 0
        self.paying_at_end += m.at_end > 0
        if m.at_start == 0 and m.at_end > 0:
            if m.billed_before:
                self.reactivation += m.at_end
            else:
                self.new += m.at_end
        elif m.at_start > 0 and m.at_end == 0:
            self.churned += m.at_start
            self.churned_merchants += 1
        elif m.at_end > m.at_start:
            self.expansion += m.at_end - m.at_start
        elif m.at_end < m.at_start:
            self.contraction += m.at_start - m.at_end


def merchant_mrr(rows: list[Billing], s: int, e: int) -> list[MerchantMrr]:
    """Per merchant with a paid subscription: MRR at s and at e, and billing before s."""
    at_s: dict[str, int] = {}
    at_e: dict[str, int] = {}
    before: set[str] = set()
    for row in rows:
        merchant = row.merchant_id
        at_s[merchant] = at_s.get(merchant, 0) + (row.annual_cents if row.billing_at(s) else 0)
        at_e[merchant] = at_e.get(merchant, 0) + (row.annual_cents if row.billing_at(e) else 0)
        if row.billed_before(s):
            before.add(merchant)
    return [MerchantMrr(at_s[m], at_e[m], m in before) for m in at_s]


def platform_mrr(store: Store, args: PlatformMrrArgs, now: datetime) -> PlatformMrrResult:
    """MRR at the start of the next month, movements per merchant over the month, rates."""
    month = parse_month(args.month, now)
    s, e = (micros(instant) for instant in month_bounds(month))
    rows = billing_rows(store)

    moves = Movements()
    for merchant in merchant_mrr(rows, s, e):
        moves.add(merchant)
    mrr_s = sum(r.annual_cents for r in rows if r.billing_at(s))
    by_plan = dict.fromkeys(PAID_PLANS, 0)
    for row in rows:
        if row.billing_at(e):
            by_plan[row.plan] = by_plan.get(row.plan, 0) + row.annual_cents
    mrr_e = sum(by_plan.values())

    def mrr(units: int) -> Decimal:
        return money(exact_dollars(units, 1200))

    lost = moves.contraction + moves.churned
    return PlatformMrrResult(
        month=month.strftime("%Y-%m"),
        currency="USD",
        mrr=mrr(mrr_e),
        arr=money(exact_dollars(mrr_e, 100)),
        mrr_by_plan=MrrByPlan(pro=mrr(by_plan["pro"]), enterprise=mrr(by_plan["enterprise"])),
        paying_merchants=moves.paying_at_end,
        new_mrr=mrr(moves.new),
        reactivation_mrr=mrr(moves.reactivation),
        expansion_mrr=mrr(moves.expansion),
        contraction_mrr=mrr(moves.contraction),
        churned_mrr=mrr(moves.churned),
        logo_churn_rate=ratio(moves.churned_merchants, moves.paying_at_start),
        revenue_churn_rate=ratio(lost, mrr_s),
        net_revenue_retention=ratio(mrr_s + moves.expansion - lost, mrr_s),
        quick_ratio=ratio(moves.new + moves.reactivation + moves.expansion, lost),
    )


def revenue_by_plan(rows: list[Billing], period: Period) -> dict[str, Decimal]:
    """Exact (unrounded) subscription revenue earned inside the period, per paid plan."""
    lo, hi = micros(period.start), micros(period.end)
    units = dict.fromkeys(PAID_PLANS, 0)
    for row in rows:
        units[row.plan] = units.get(row.plan, 0) + row.annual_cents * row.micros_within(lo, hi)
    # annual cents × µs / (seconds per year × µs per second × cents per dollar)
    divisor = SECONDS_PER_YEAR * MICROS * 100
    return {plan: exact_dollars(value, divisor) for plan, value in units.items()}
