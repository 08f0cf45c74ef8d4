"""get_sales against the PostgreSQL oracle, and its edge cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optima_bi_mcp.errors import InvalidArgumentError
from optima_bi_mcp.metrics import merchant as merchant_metrics
from optima_bi_mcp.metrics.merchant import get_sales
from optima_bi_mcp.metrics.models import GetSalesArgs
from tests.metrics.compare import as_json, project
from tests.oracle import merchant as oracle

ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin"]
BUCKETS = ["hour", "day", "week", "month"]
PERIODS: list[dict[str, Any]] = [
    {},
    {"days": 1},
    {"days": 7},
    {"days": 30},
    {"start": date(2026, 10, 1), "end": date(2026, 10, 31)},
    {"start": date(2026, 10, 25), "end": date(2026, 11, 1)},
    {"start": date(2026, 3, 1), "end": date(2026, 3, 31)},
    {"start": date(2025, 1, 1), "end": date(2026, 11, 3)},
    {"start": date(2020, 1, 1), "end": date(2020, 1, 31)},
]
SMALLER = ["medium", "small", "empty", "neighbour"]


def _sales(ds: Any, role: str, **args: Any) -> dict[str, Any]:
    merchant = ds.info.merchants[role]
    return as_json(get_sales(ds.store, merchant, GetSalesArgs(**args), ds.now))


def _check(ds: Any, source: Any, role: str, args: dict[str, Any]) -> None:
    expected = oracle.sales(source, ds.info.merchants[role], now=ds.now, **args)
    try:
        got = _sales(ds, role, **args)
    except InvalidArgumentError as exc:
        # Refused exactly when the series would have more than 400 buckets.
        assert (exc.details["argument"], len(expected["series"]) > 400) == ("bucket", True)
        return
    assert project(got, expected) == expected


@pytest.mark.parametrize("bucket", ["day", "week", "month"])
@pytest.mark.parametrize("period", PERIODS, ids=repr)
@pytest.mark.parametrize("role", ["edge", "large", "medium", "empty"])
def test_daily_rollup_answers_match_oracle(
    metric_dataset: Any,
    source: Any,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
    period: dict[str, Any],
    bucket: str,
) -> None:
    """From the daily rollups plus edge orders (as for large merchants), UTC series match."""
    monkeypatch.setattr(merchant_metrics, "ROLLUP_MIN_ORDERS", -1)
    _check(metric_dataset, source, role, {**period, "timezone": "UTC", "bucket": bucket})


@pytest.mark.parametrize("bucket", BUCKETS)
@pytest.mark.parametrize("timezone", ZONES)
@pytest.mark.parametrize("period", PERIODS, ids=repr)
def test_edge_merchant_matches_oracle(
    metric_dataset: Any, source: Any, period: dict[str, Any], timezone: str, bucket: str
) -> None:
    """The hand-placed boundary rows give the oracle's figures in every zone and bucket."""
    _check(metric_dataset, source, "edge", {**period, "timezone": timezone, "bucket": bucket})


@pytest.mark.parametrize("bucket", BUCKETS)
@pytest.mark.parametrize("timezone", ZONES)
@pytest.mark.parametrize("period", PERIODS, ids=repr)
def test_large_merchant_matches_oracle(
    metric_dataset: Any, source: Any, period: dict[str, Any], timezone: str, bucket: str
) -> None:
    """The largest random merchant gives the oracle's figures in every zone and bucket."""
    _check(metric_dataset, source, "large", {**period, "timezone": timezone, "bucket": bucket})


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Kolkata"])
@pytest.mark.parametrize("period", PERIODS, ids=repr)
@pytest.mark.parametrize("role", SMALLER)
def test_other_merchants_match_oracle(
    metric_dataset: Any, source: Any, role: str, period: dict[str, Any], timezone: str
) -> None:
    """Every other merchant, the empty one included, gives the oracle's daily figures."""
    _check(metric_dataset, source, role, {**period, "timezone": timezone, "bucket": "week"})


def test_empty_merchant_has_every_bucket_at_zero(metric_dataset: Any) -> None:
    """A merchant without orders gets 7 zero buckets and null growth."""
    got = _sales(metric_dataset, "empty", days=7)
    assert [b["orders"] for b in got["series"]] == [0] * 7
    assert got["growth_pct"] == dict.fromkeys(got["growth_pct"])


@pytest.mark.parametrize(
    ("timezone", "day", "hours"),
    [
        ("Europe/Berlin", date(2026, 10, 25), 25),
        ("Europe/Berlin", date(2026, 3, 29), 23),
        ("America/New_York", date(2026, 11, 1), 25),
        ("America/New_York", date(2026, 3, 8), 23),
        ("Asia/Kolkata", date(2026, 10, 25), 24),
    ],
)
def test_dst_day_has_its_real_number_of_hours(
    metric_dataset: Any, timezone: str, day: date, hours: int
) -> None:
    """A local day across a DST switch has 23 or 25 hour buckets."""
    got = _sales(metric_dataset, "edge", start=day, end=day, timezone=timezone, bucket="hour")
    assert len(got["series"]) == hours


def test_repeated_fall_back_hour_keeps_both_orders_apart(metric_dataset: Any) -> None:
    """Berlin's 02:30 CEST and 02:30 CET orders land in two different hour buckets."""
    day = date(2026, 10, 25)
    got = _sales(
        metric_dataset, "edge", start=day, end=day, timezone="Europe/Berlin", bucket="hour"
    )
    by_start = {b["bucket_start"]: b["orders"] for b in got["series"]}
    assert (by_start["2026-10-25T00:00:00Z"], by_start["2026-10-25T01:00:00Z"]) == (1, 1)


def test_order_at_local_midnight_boundary_is_cut_in_the_zone(metric_dataset: Any) -> None:
    """23:30 and 00:30 in Kolkata fall in October and November there, both November in UTC."""
    args = {"start": date(2026, 11, 1), "end": date(2026, 11, 1), "bucket": "day"}
    kolkata = _sales(metric_dataset, "edge", timezone="Asia/Kolkata", **args)
    utc = _sales(metric_dataset, "edge", timezone="UTC", **args)
    assert kolkata["period"]["start"] == "2026-10-31T18:30:00Z"
    assert kolkata["orders"] != utc["orders"]


def test_half_cent_average_rounds_half_to_even(metric_dataset: Any) -> None:
    """(10.00 + 10.05) / 2 = 10.025 is reported as 10.02, not 10.03."""
    day = date(2026, 10, 20)
    got = _sales(metric_dataset, "edge", start=day, end=day)
    assert (got["orders"], got["aov"]) == (2, 10.02)


def test_more_than_400_buckets_is_refused(metric_dataset: Any) -> None:
    """Hourly buckets over 30 days (720) are INVALID_ARGUMENT naming bucket."""
    with pytest.raises(InvalidArgumentError) as caught:
        _sales(metric_dataset, "edge", days=30, bucket="hour")
    assert caught.value.details["argument"] == "bucket"


def test_growth_is_null_when_the_previous_period_is_empty(metric_dataset: Any) -> None:
    """The first days of the data have no previous period to grow from."""
    got = _sales(metric_dataset, "edge", start=date(2026, 3, 8), end=date(2026, 3, 8))
    assert got["orders"] > 0
    assert got["growth_pct"]["revenue"] is None


def test_now_is_never_read_from_the_clock(metric_dataset: Any) -> None:
    """The same arguments at another `now` describe another period."""
    later = datetime(2026, 11, 10, tzinfo=UTC)
    merchant = metric_dataset.info.merchants["edge"]
    got = get_sales(metric_dataset.store, merchant, GetSalesArgs(days=1), later)
    assert got.period.start == datetime(2026, 11, 10, tzinfo=UTC)


@settings(max_examples=30, deadline=None)
@given(
    first=st.dates(min_value=date(2024, 10, 1), max_value=date(2026, 11, 10)),
    length=st.integers(min_value=0, max_value=60),
    timezone=st.sampled_from(ZONES),
    bucket=st.sampled_from(["day", "week", "month"]),
    role=st.sampled_from(["large", "edge"]),
)
def test_any_period_matches_oracle(
    metric_dataset: Any,
    source: Any,
    first: date,
    length: int,
    timezone: str,
    bucket: str,
    role: str,
) -> None:
    """Any start/end period, zone and bucket gives the oracle's figures."""
    args = {"start": first, "end": first + timedelta(days=length), "timezone": timezone}
    _check(metric_dataset, source, role, {**args, "bucket": bucket})
