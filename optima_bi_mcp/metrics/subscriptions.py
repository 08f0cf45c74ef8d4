"""Subscription metrics (METRICS.md "Subscriptions: MRR"): platform_mrr and revenue by plan.

Amounts are summed as exact integers in "annual cents" (12 × the monthly amount
in cents: amount × 1200 for `month` billing, amount × 100 for `year`), so a
yearly price divided by 12 never leaves a remainder to round early. Money is
rounded to the cent, half to even, only when the result is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from optima_bi_mcp.metrics.models import MrrByPlan, PlatformMrrArgs, PlatformMrrResult
from optima_bi_mcp.metrics.numbers import money, ratio
from optima_bi_mcp.metrics.periods import Period, month_bounds, parse_month
from optima_bi_mcp.metrics.platform_sql import ts
from optima_bi_mcp.store.client import Store

PAID_PLANS = ("pro", "enterprise")
SECONDS_PER_YEAR = 31_536_000
MICROS = 1_000_000

# Billing rows only: plan ≠ free and amount > 0. `billing_from` is where revenue starts.
_BILLING_ROWS = """
SELECT merchant_id, plan, canceled_at,
       coalesce(trial_ends_at, started_at) AS billing_from,
       toInt64(amount * 100) * if(billing_interval = 'month', 12, 1) AS annual_cents
FROM subscriptions FINAL
WHERE plan != 'free' AND amount > 0
"""

_MRR_PER_MERCHANT = f"""
WITH {{s:DateTime64(6, 'UTC')}} AS s, {{e:DateTime64(6, 'UTC')}} AS e
SELECT merchant_id,
       sumIf(annual_cents, billing_from <= s AND ifNull(canceled_at > s, 1)),
       sumIf(annual_cents, billing_from <= e AND ifNull(canceled_at > e, 1)),
       sumIf(annual_cents, billing_from <= e AND ifNull(canceled_at > e, 1) AND plan = 'pro'),
       sumIf(annual_cents,
             billing_from <= e AND ifNull(canceled_at > e, 1) AND plan = 'enterprise'),
       countIf(billing_from < s AND ifNull(canceled_at > billing_from, 1)) > 0
FROM ({_BILLING_ROWS})
GROUP BY merchant_id
"""

# Σ annual_cents × microseconds billing inside [lo, hi), per plan.
_REVENUE_BY_PLAN = f"""
WITH {{lo:DateTime64(6, 'UTC')}} AS lo, {{hi:DateTime64(6, 'UTC')}} AS hi
SELECT plan,
       sum(toInt128(annual_cents) * toInt128(greatest(toInt64(0),
           toUnixTimestamp64Micro(least(ifNull(canceled_at, hi), hi))
           - toUnixTimestamp64Micro(greatest(billing_from, lo)))))
FROM ({_BILLING_ROWS})
GROUP BY plan
"""


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


def platform_mrr(store: Store, args: PlatformMrrArgs, now: datetime) -> PlatformMrrResult:
    """MRR at the start of the next month, movements per merchant over the month, rates."""
    month = parse_month(args.month, now)
    s, e = month_bounds(month)
    rows = store.query(_MRR_PER_MERCHANT, {"s": ts(s), "e": ts(e)})

    moves = Movements()
    mrr_s = mrr_e = pro = enterprise = 0
    for _merchant, at_s, at_e, at_e_pro, at_e_enterprise, billed_before in rows:
        moves.add(MerchantMrr(int(at_s), int(at_e), bool(billed_before)))
        mrr_s, mrr_e = mrr_s + int(at_s), mrr_e + int(at_e)
        pro, enterprise = pro + int(at_e_pro), enterprise + int(at_e_enterprise)

    def mrr(units: int) -> Decimal:
        return money(exact_dollars(units, 1200))

    lost = moves.contraction + moves.churned
    return PlatformMrrResult(
        month=month.strftime("%Y-%m"),
        currency="USD",
        mrr=mrr(mrr_e),
        arr=money(exact_dollars(mrr_e, 100)),
        mrr_by_plan=MrrByPlan(pro=mrr(pro), enterprise=mrr(enterprise)),
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


def revenue_by_plan(store: Store, period: Period) -> dict[str, Decimal]:
    """Exact (unrounded) subscription revenue earned inside the period, per paid plan."""
    rows = store.query(_REVENUE_BY_PLAN, {"lo": ts(period.start), "hi": ts(period.end)})
    units = dict.fromkeys(PAID_PLANS, 0)
    for plan, amount in rows:
        units[plan] = units.get(plan, 0) + int(amount)
    # annual cents × µs / (seconds per year × µs per second × cents per dollar)
    divisor = SECONDS_PER_YEAR * MICROS * 100
    return {plan: exact_dollars(value, divisor) for plan, value in units.items()}
