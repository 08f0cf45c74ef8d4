"""top_products against the PostgreSQL oracle, ties and pagination."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from optima_bi_mcp.errors import InvalidArgumentError
from optima_bi_mcp.metrics.merchant import top_products
from optima_bi_mcp.metrics.models import TopProductsArgs
from tests.metrics.compare import all_pages, as_json, project
from tests.metrics.dataset import TIE_HIGH_TEXT, TIE_LOW_TEXT
from tests.oracle import merchant as oracle

ROLES = ["large", "medium", "small", "empty", "neighbour", "edge"]
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin"]
PERIODS: list[dict[str, Any]] = [
    {},
    {"days": 7},
    {"start": date(2026, 10, 1), "end": date(2026, 10, 31)},
    {"start": date(2025, 1, 1), "end": date(2026, 11, 3)},
    {"start": date(2020, 1, 1), "end": date(2020, 1, 2)},
]


def _pages(ds: Any, role: str, limit: int, **args: Any) -> tuple[list[Any], list[Any]]:
    merchant = ds.info.merchants[role]

    def call(cursor: str | None) -> Any:
        parsed = TopProductsArgs(**args, limit=limit, cursor=cursor)
        return top_products(ds.store, merchant, parsed, ds.now)

    return all_pages(call)


@pytest.mark.parametrize("sort_by", ["revenue", "quantity"])
@pytest.mark.parametrize("timezone", ZONES)
@pytest.mark.parametrize("period", PERIODS, ids=repr)
@pytest.mark.parametrize("role", ROLES)
def test_ranking_matches_oracle(
    metric_dataset: Any, source: Any, role: str, period: dict[str, Any], timezone: str, sort_by: str
) -> None:
    """Every page, followed to the end, gives the oracle's ranking and figures."""
    args = {**period, "timezone": timezone, "sort_by": sort_by}
    expected = oracle.top_products(
        source, metric_dataset.info.merchants[role], now=metric_dataset.now, **args
    )
    items, pages = _pages(metric_dataset, role, 7, **args)
    assert project(items, expected["items"]) == expected["items"]
    assert {p["total_revenue"] for p in pages} == {expected["total_revenue"]}


def _tie_ids(ds: Any, sort_by: str) -> list[str]:
    items, _ = _pages(ds, "edge", 20, days=7, sort_by=sort_by)
    return [i["product_id"] for i in items if i["sku"].startswith("E-TIE-")]


def test_equal_revenue_is_ordered_by_id_text(metric_dataset: Any) -> None:
    """Equal-revenue ties go to the id's text, which ClickHouse's UUID order contradicts."""
    ids = _tie_ids(metric_dataset, "revenue")
    assert len(ids) == 3
    assert ids == sorted(ids)


def test_equal_quantity_is_ordered_by_id_text(metric_dataset: Any) -> None:
    """Equal-quantity ties go to the id's text too, ahead of the product that sold fewer."""
    assert _tie_ids(metric_dataset, "quantity")[:2] == [str(TIE_LOW_TEXT), str(TIE_HIGH_TEXT)]


def test_equal_revenue_products_have_equal_shares(metric_dataset: Any) -> None:
    """The three equal-revenue products report the same revenue and share of it."""
    items, _ = _pages(metric_dataset, "edge", 20, days=7)
    ties = {(i["revenue"], i["share_of_revenue"]) for i in items if i["sku"].startswith("E-TIE")}
    assert len(ties) == 1
    assert ties.pop()[0] == 50.0


def test_last_page_has_no_cursor(metric_dataset: Any) -> None:
    """A page that holds the rest of the list ends with next_cursor null."""
    _, pages = _pages(metric_dataset, "large", 500)
    assert len(pages) == 1
    assert pages[0]["next_cursor"] is None


def test_cursor_from_another_question_is_refused(metric_dataset: Any) -> None:
    """A cursor for sort_by=revenue is not accepted for sort_by=quantity."""
    _, pages = _pages(metric_dataset, "large", 5)
    merchant = metric_dataset.info.merchants["large"]
    args = TopProductsArgs(sort_by="quantity", limit=5, cursor=pages[0]["next_cursor"])
    with pytest.raises(InvalidArgumentError) as caught:
        top_products(metric_dataset.store, merchant, args, metric_dataset.now)
    assert caught.value.details["argument"] == "cursor"


def test_empty_period_has_no_products(metric_dataset: Any) -> None:
    """A period without orders lists nothing and totals zero."""
    merchant = metric_dataset.info.merchants["large"]
    args = TopProductsArgs(start=date(2020, 1, 1), end=date(2020, 1, 31))
    got = as_json(top_products(metric_dataset.store, merchant, args, metric_dataset.now))
    assert (got["items"], got["total_revenue"], got["next_cursor"]) == ([], 0.0, None)
