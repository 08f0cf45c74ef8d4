"""customer_summary and churned_customers against the PostgreSQL oracle."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from optima_bi_mcp.metrics.merchant import churned_customers, customer_summary
from optima_bi_mcp.metrics.models import ChurnedCustomersArgs, CustomerSummaryArgs
from tests.metrics.compare import all_pages, as_json, project
from tests.oracle import merchant as oracle

ROLES = ["large", "medium", "small", "empty", "neighbour", "edge"]
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin"]
PERIODS: list[dict[str, Any]] = [
    {},
    {"days": 7},
    {"days": 90},
    {"start": date(2026, 10, 1), "end": date(2026, 10, 31)},
    {"start": date(2025, 6, 1), "end": date(2025, 12, 31)},
    {"start": date(2020, 1, 1), "end": date(2020, 1, 31)},
]
AS_OF = [None, date(2026, 11, 2), date(2026, 8, 1), date(2025, 12, 31), date(2024, 1, 1)]


def _summary(ds: Any, role: str, **args: Any) -> dict[str, Any]:
    merchant = ds.info.merchants[role]
    return as_json(customer_summary(ds.store, merchant, CustomerSummaryArgs(**args), ds.now))


def _churned(ds: Any, role: str, limit: int = 20, **args: Any) -> tuple[list[Any], list[Any]]:
    merchant = ds.info.merchants[role]

    def call(cursor: str | None) -> Any:
        parsed = ChurnedCustomersArgs(**args, limit=limit, cursor=cursor)
        return churned_customers(ds.store, merchant, parsed, ds.now)

    return all_pages(call)


@pytest.mark.parametrize("churn_days", [90, 30])
@pytest.mark.parametrize("timezone", ZONES)
@pytest.mark.parametrize("period", PERIODS, ids=repr)
@pytest.mark.parametrize("role", ROLES)
def test_summary_matches_oracle(
    metric_dataset: Any,
    source: Any,
    role: str,
    period: dict[str, Any],
    timezone: str,
    churn_days: int,
) -> None:
    """Segment counts, repeat_rate and avg_ltv equal the oracle's."""
    args = {**period, "timezone": timezone, "churn_days": churn_days}
    merchant = metric_dataset.info.merchants[role]
    expected = oracle.customer_summary(source, merchant, now=metric_dataset.now, **args)
    assert project(_summary(metric_dataset, role, **args), expected) == expected


@pytest.mark.parametrize("churn_days", [90, 365])
@pytest.mark.parametrize("timezone", ZONES)
@pytest.mark.parametrize("as_of", AS_OF, ids=repr)
@pytest.mark.parametrize("role", ROLES)
def test_churned_list_matches_oracle(
    metric_dataset: Any, source: Any, role: str, as_of: date | None, timezone: str, churn_days: int
) -> None:
    """Every page of churned customers, followed to the end, equals the oracle's list."""
    args = {"as_of": as_of, "timezone": timezone, "churn_days": churn_days}
    merchant = metric_dataset.info.merchants[role]
    expected = oracle.churned_customers(source, merchant, now=metric_dataset.now, **args)
    items, pages = _churned(metric_dataset, role, 9, **args)
    assert project(items, expected["items"]) == expected["items"]
    assert {(p["total"], p["as_of"]) for p in pages} == {(expected["total"], expected["as_of"])}


def _edge_churned(ds: Any) -> dict[str, dict[str, Any]]:
    items, _ = _churned(ds, "edge", 500)
    return {i["email"]: i for i in items}


def test_spellings_of_one_email_are_one_customer(metric_dataset: Any) -> None:
    """'tie1@', ' TIE1@Edge.test ' and 'Tie1@' are one customer with three orders."""
    churned = _edge_churned(metric_dataset)
    assert (churned["tie1@edge.test"]["orders_count"], churned["tie1@edge.test"]["ltv"]) == (
        3,
        100.0,
    )


def test_equal_ltv_is_ordered_by_email(metric_dataset: Any) -> None:
    """tie1 and tie2 both have ltv 100.00; tie1 comes first."""
    emails = list(_edge_churned(metric_dataset))
    assert emails.index("tie1@edge.test") + 1 == emails.index("tie2@edge.test")


def test_churn_cut_off_is_strict(metric_dataset: Any) -> None:
    """A last order exactly at T − 90 days is not churned; a microsecond earlier is."""
    churned = _edge_churned(metric_dataset)
    assert "cut.exact@edge.test" not in churned
    assert churned["cut.before@edge.test"]["days_since_last_order"] == 90


def test_refunded_orders_make_no_customer(metric_dataset: Any) -> None:
    """A customer whose only order was refunded is never listed."""
    assert "refunded@edge.test" not in _edge_churned(metric_dataset)


def test_empty_merchant_has_no_customers(metric_dataset: Any) -> None:
    """No orders: zero customers, null repeat_rate and a zero avg_ltv."""
    got = _summary(metric_dataset, "empty")
    assert (got["customers"], got["repeat_rate"], got["avg_ltv"]) == (0, None, 0.0)


def test_vip_is_a_tenth_rounded_up(metric_dataset: Any, source: Any) -> None:
    """vip is ⌈10 % × C⌉ of the customers with ltv > 0."""
    got = _summary(metric_dataset, "large", days=30)
    assert got["vip"] == -(-got["customers"] // 10)
