"""The four platform metrics against the PostgreSQL oracle on one dataset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optima_bi_mcp.errors import InvalidArgumentError
from optima_bi_mcp.metrics import platform
from optima_bi_mcp.metrics.models import (
    PlatformMerchantsArgs,
    PlatformMrrArgs,
    PlatformOverviewArgs,
    PlatformRevenueArgs,
)
from optima_bi_mcp.store import Store
from tests.metrics.dataset import NOW
from tests.oracle import platform as oracle


@dataclass
class Env:
    store: Store
    pg: psycopg.Connection[Any]
    now: datetime


@pytest.fixture(scope="module")
def env(metric_dataset: Any, source: psycopg.Connection[Any]) -> Env:
    """The shared metric dataset (with the platform rows) and its source."""
    return Env(metric_dataset.store, source, metric_dataset.now)


def month_of(offset: int) -> str:
    """The dataset's current month shifted by `offset` months, as YYYY-MM."""
    index = NOW.year * 12 + NOW.month - 1 + offset
    return f"{index // 12}-{index % 12 + 1:02d}"


def day_of(offset: int) -> date:
    return (NOW + timedelta(days=offset)).date()


# Current, previous, a few back, a year back and the month before it, no data.
MONTHS = [None, *(month_of(k) for k in (-1, -2, -5, -12, -13, -23, -46))]


@pytest.mark.parametrize("month", MONTHS)
def test_platform_overview_matches_oracle(env: Env, month: str | None) -> None:
    """Overview of current, past, year-back and empty months equals the oracle."""
    result = platform.platform_overview(env.store, PlatformOverviewArgs(month=month), env.now)
    assert result.model_dump(mode="json") == oracle.platform_overview(env.pg, month, env.now)


def test_platform_overview_counts_new_merchants(env: Env) -> None:
    """Merchants created this month and last month are counted in their months."""
    now = platform.platform_overview(env.store, PlatformOverviewArgs(), env.now)
    args = PlatformOverviewArgs(month=month_of(-1))
    last = platform.platform_overview(env.store, args, env.now)
    assert (now.new_merchants, last.new_merchants) == (1, 1)


def _all_pages(env: Env, segment: str, sort_by: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        args = PlatformMerchantsArgs(segment=segment, sort_by=sort_by, limit=limit, cursor=cursor)
        result = platform.platform_merchants(env.store, args, env.now)
        items += result.model_dump(mode="json")["items"]
        cursor = result.next_cursor
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("segment", ["top", "active", "sleeping", "churned"])
@pytest.mark.parametrize("sort_by", ["gmv_30d", "growth_pct", "last_order_at"])
def test_platform_merchants_first_page_matches_oracle(env: Env, segment: str, sort_by: str) -> None:
    """The first page and the total equal the oracle's sorted segment."""
    args = PlatformMerchantsArgs(segment=segment, sort_by=sort_by, limit=500)
    got = platform.platform_merchants(env.store, args, env.now).model_dump(mode="json")
    want = oracle.platform_merchants(env.pg, segment, sort_by, env.now)
    assert got.pop("next_cursor") is None
    assert got == want


@pytest.mark.parametrize("segment", ["top", "active", "sleeping", "churned"])
@pytest.mark.parametrize("sort_by", ["gmv_30d", "growth_pct", "last_order_at"])
def test_platform_merchants_pages_concatenate(env: Env, segment: str, sort_by: str) -> None:
    """Pages of 3 concatenate to the oracle's whole list, without duplicates."""
    items = _all_pages(env, segment, sort_by, limit=3)
    want = oracle.platform_merchants(env.pg, segment, sort_by, env.now)["items"]
    assert items == want
    assert len({i["merchant_id"] for i in items}) == len(items)


def test_platform_merchants_segments_are_all_present(env: Env) -> None:
    """The dataset puts merchants in every segment, `other` included."""
    result = platform.platform_merchants(env.store, PlatformMerchantsArgs(limit=500), env.now)
    assert {i.segment for i in result.items} == {"active", "sleeping", "churned", "other"}


def test_platform_merchants_breaks_gmv_ties_by_id_text(env: Env) -> None:
    """Two merchants with equal GMV come in the order of their ids as text."""
    result = platform.platform_merchants(env.store, PlatformMerchantsArgs(limit=500), env.now)
    tied = [str(i.merchant_id) for i in result.items if i.name in ("p-tie_a", "p-tie_b")]
    assert tied == sorted(tied)


def test_platform_merchants_refuses_cursor_of_other_sort(env: Env) -> None:
    """A cursor from another sort order is INVALID_ARGUMENT, not a wrong page."""
    first = platform.platform_merchants(env.store, PlatformMerchantsArgs(limit=2), env.now)
    args = PlatformMerchantsArgs(limit=2, sort_by="growth_pct", cursor=first.next_cursor)
    with pytest.raises(InvalidArgumentError):
        platform.platform_merchants(env.store, args, env.now)


MRR_MONTHS = [None, *(month_of(k) for k in (1, -1, -2, -6, -12, -13, -58))]


@pytest.mark.parametrize("month", MRR_MONTHS)
def test_platform_mrr_matches_oracle(env: Env, month: str | None) -> None:
    """MRR, movements and rates of a month equal the oracle."""
    result = platform.platform_mrr(env.store, PlatformMrrArgs(month=month), env.now)
    assert result.model_dump(mode="json") == oracle.platform_mrr(env.pg, month, env.now)


@pytest.mark.parametrize("offset", [0, -1, -5, -12])
def test_platform_mrr_movements_explain_the_change(env: Env, offset: int) -> None:
    """mrr(e) − mrr(s) = new + reactivation + expansion − contraction − churned (to rounding)."""
    this = platform.platform_mrr(env.store, PlatformMrrArgs(month=month_of(offset)), env.now)
    before_args = PlatformMrrArgs(month=month_of(offset - 1))
    before = platform.platform_mrr(env.store, before_args, env.now)
    moves = (
        this.new_mrr
        + this.reactivation_mrr
        + this.expansion_mrr
        - this.contraction_mrr
        - this.churned_mrr
    )
    # Seven figures each rounded to the cent: at most 3.5 cents apart.
    assert abs((this.mrr - before.mrr) - moves) <= Decimal("0.035")
    assert moves != 0


def test_platform_mrr_sees_every_movement_this_month(env: Env) -> None:
    """The dataset's current month has new, reactivation, expansion, contraction and churn."""
    result = platform.platform_mrr(env.store, PlatformMrrArgs(), env.now)
    figures = [
        result.new_mrr,
        result.reactivation_mrr,
        result.expansion_mrr,
        result.contraction_mrr,
        result.churned_mrr,
    ]
    assert all(f > 0 for f in figures)


PERIODS = [
    {"days": None, "start": None, "end": None},
    {"days": 1, "start": None, "end": None},
    {"days": 7, "start": None, "end": None},
    {"days": 45, "start": None, "end": None},
    {"days": 400, "start": None, "end": None},
    {"days": None, "start": date.fromisoformat(f"{month_of(-1)}-01"), "end": day_of(-NOW.day)},
    {"days": None, "start": day_of(-323), "end": day_of(-273)},
    {"days": None, "start": day_of(-400), "end": day_of(-31)},
    {"days": None, "start": day_of(0), "end": day_of(0)},
    {"days": None, "start": day_of(-NOW.day + 1), "end": day_of(58)},
    {"days": None, "start": date(2021, 1, 1), "end": date(2021, 3, 1)},
]


@pytest.mark.parametrize("breakdown", [False, True])
@pytest.mark.parametrize("period", PERIODS)
def test_platform_revenue_matches_oracle(env: Env, period: dict[str, Any], breakdown: bool) -> None:
    """Fees, subscription revenue, transfers and the breakdowns equal the oracle."""
    args = PlatformRevenueArgs(**period, breakdown=breakdown)
    got = platform.platform_revenue(env.store, args, env.now).model_dump(mode="json")
    assert got == oracle.platform_revenue(env.pg, **period, breakdown=breakdown, now=env.now)


def test_platform_revenue_breakdown_lists_every_month_plan_and_status(env: Env) -> None:
    """A 400-day breakdown lists every month it overlaps, both paid plans and all statuses."""
    args = PlatformRevenueArgs(days=400, breakdown=True)
    result = platform.platform_revenue(env.store, args, env.now)
    first = day_of(-399)
    months = (NOW.year - first.year) * 12 + NOW.month - first.month + 1
    listed = [m.month for m in result.fees_by_month or []]
    assert (len(listed), listed[0], listed[-1]) == (months, first.strftime("%Y-%m"), month_of(0))
    assert set(result.subscriptions_by_plan or {}) == {"pro", "enterprise"}
    assert set(result.transfers_by_status or {}) == {"pending", "paid", "failed"}


def test_platform_revenue_today_ends_at_now(env: Env) -> None:
    """days=1 excludes the order placed two hours after now on the same day."""
    result = platform.platform_revenue(env.store, PlatformRevenueArgs(days=1), env.now)
    later = env.now + timedelta(hours=3)
    assert (
        result.fee_revenue
        < platform.platform_revenue(env.store, PlatformRevenueArgs(days=1), later).fee_revenue
    )


INSTANTS = st.datetimes(
    min_value=datetime(2025, 6, 1), max_value=datetime(2026, 11, 8), timezones=st.just(UTC)
)


@settings(max_examples=12, deadline=None)
@given(now=INSTANTS | INSTANTS.map(lambda t: t.replace(hour=0, minute=0, second=0, microsecond=0)))
def test_platform_merchants_matches_oracle_at_any_instant(env: Env, now: datetime) -> None:
    """As of any instant (midnights included), the merchant list equals the oracle."""
    args = PlatformMerchantsArgs(sort_by="last_order_at", limit=500)
    got = platform.platform_merchants(env.store, args, now).model_dump(mode="json")
    got.pop("next_cursor")
    assert got == oracle.platform_merchants(env.pg, "top", "last_order_at", now)


@settings(max_examples=12, deadline=None)
@given(now=INSTANTS, days=st.integers(min_value=1, max_value=120))
def test_platform_revenue_matches_oracle_at_any_instant(env: Env, now: datetime, days: int) -> None:
    """The last N days up to any instant give the oracle's revenue and breakdown."""
    args = PlatformRevenueArgs(days=days, breakdown=True)
    got = platform.platform_revenue(env.store, args, now).model_dump(mode="json")
    assert got == oracle.platform_revenue(env.pg, None, None, days, True, now)
