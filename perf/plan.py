"""What the benchmark asks: merchants of different sizes, periods, and every tool.

Merchants are picked from the data itself: the largest, the median and a small
one (the 10th percentile from the bottom) by number of orders. Periods of 7,
30, 90 and 365 days end on the last day with orders; tools without a period
get the argument that plays its part (a month, a segment, churn days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

PERIOD_DAYS = (7, 30, 90, 365)
PERIODIC_MERCHANT_TOOLS = ("get_sales", "top_products", "customer_summary")
SEGMENTS = ("top", "active", "sleeping", "churned")

_ORDERS_PER_MERCHANT = """
SELECT merchant_id::text, count(*) AS n FROM orders
GROUP BY merchant_id ORDER BY n DESC, merchant_id::text
"""


@dataclass(frozen=True)
class Merchants:
    """Merchants by size, and every merchant for the HTTP mix."""

    sizes: dict[str, tuple[str, int]]  # large/median/small -> (id, orders)
    all_ids: list[str]
    total_orders: int

    @property
    def largest_share(self) -> float:
        return self.sizes["large"][1] / self.total_orders if self.total_orders else 0.0


def pick_merchants(source_dsn: str) -> Merchants:
    """The largest, median and a small merchant by orders (merchants without orders left out)."""
    with psycopg.connect(source_dsn) as conn:
        rows = [(str(m), int(n)) for m, n in conn.execute(_ORDERS_PER_MERCHANT).fetchall()]
    if not rows:
        raise RuntimeError("the benchmark source has no orders")
    sizes = {
        "large": rows[0],
        "median": rows[len(rows) // 2],
        "small": rows[min(len(rows) - 1, (len(rows) * 9) // 10)],
    }
    return Merchants(sizes, [m for m, _ in rows], sum(n for _, n in rows))


def month_of(day: date, back: int = 0) -> str:
    """The month `back` months before the month of `day`, as YYYY-MM."""
    index = day.year * 12 + day.month - 1 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def span(end: date, days: int) -> dict[str, str]:
    """start/end dates (end inclusive) of `days` days ending on `end`."""
    return {"start": (end - timedelta(days=days - 1)).isoformat(), "end": end.isoformat()}


def build_cases(merchants: Merchants, end: date) -> list[dict[str, Any]]:
    """Every tool, for every merchant size and period it takes."""
    cases = []
    for size, (merchant_id, _) in merchants.sizes.items():
        cases.extend(_merchant_cases(size, merchant_id, end))
    cases.extend(_platform_cases(end))
    cases.append(_case("whoami", "-", "-", {}))
    return cases


def _merchant_cases(size: str, merchant_id: str, end: date) -> list[dict[str, Any]]:
    who = {"merchant_id": merchant_id}
    cases = [
        _case(tool, size, f"{days}d", who | span(end, days))
        for days in PERIOD_DAYS
        for tool in PERIODIC_MERCHANT_TOOLS
    ]
    cases.extend(
        _case("churned_customers", size, f"churn {days}d", who | _churn(end, days))
        for days in PERIOD_DAYS
    )
    cases.append(_case("inventory_status", size, "now", who))
    return cases


def _churn(end: date, days: int) -> dict[str, Any]:
    return {"as_of": end.isoformat(), "churn_days": days}


def _platform_cases(end: date) -> list[dict[str, Any]]:
    months = [month_of(end, back) for back in (0, 1, 6, 12)]
    cases = [
        _case(tool, "platform", month, {"month": month})
        for month in months
        for tool in ("platform_overview", "platform_mrr")
    ]
    cases.extend(
        _case("platform_merchants", "platform", segment, {"segment": segment})
        for segment in SEGMENTS
    )
    cases.extend(
        _case("platform_revenue", "platform", f"{days}d", span(end, days) | {"breakdown": True})
        for days in PERIOD_DAYS
    )
    return cases


def _case(tool: str, size: str, period: str, arguments: dict[str, Any]) -> dict[str, Any]:
    kind = {"platform": "platform", "-": "identity"}.get(size, "merchant")
    return {"tool": tool, "kind": kind, "size": size, "period": period, "arguments": arguments}
