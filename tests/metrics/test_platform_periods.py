"""How platform_revenue splits a period between the monthly and daily rollups."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from optima_bi_mcp.metrics.platform import split_months

DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


def _days(lo: date, hi: date) -> list[date]:
    return [lo + timedelta(days=i) for i in range((hi - lo).days)]


@given(DAYS, st.integers(min_value=0, max_value=800))
def test_split_months_covers_every_day_once(lo: date, length: int) -> None:
    """Whole months plus the head and tail ranges hold each day of [lo, hi) exactly once."""
    hi = lo + timedelta(days=length)
    months, ranges = split_months(lo, hi)
    covered = [d for a, b in ranges for d in _days(a, b)]
    covered += [d for m in months for d in _days(m, (m + timedelta(days=32)).replace(day=1))]
    assert sorted(covered) == _days(lo, hi)


def test_split_months_keeps_a_month_inside_one_month_as_days() -> None:
    """A period inside one month uses no monthly row."""
    assert split_months(date(2026, 10, 2), date(2026, 10, 30))[0] == []
