"""inventory_status against the PostgreSQL oracle, and the status boundaries."""

from __future__ import annotations

from typing import Any

import pytest

from optima_bi_mcp.metrics.merchant import inventory_status
from optima_bi_mcp.metrics.models import InventoryStatusArgs
from tests.metrics.compare import all_pages, project
from tests.oracle import merchant as oracle

ROLES = ["large", "medium", "small", "empty", "neighbour", "edge"]
PLANS = [(14, 30), (0, 0), (7, 90)]


def _pages(ds: Any, role: str, limit: int = 500, **args: Any) -> tuple[list[Any], list[Any]]:
    merchant = ds.info.merchants[role]

    def call(cursor: str | None) -> Any:
        parsed = InventoryStatusArgs(**args, limit=limit, cursor=cursor)
        return inventory_status(ds.store, merchant, parsed, ds.now)

    return all_pages(call)


@pytest.mark.parametrize("status", [None, "out", "low", "overstock", "healthy"])
@pytest.mark.parametrize(("lead", "cover"), PLANS)
@pytest.mark.parametrize("role", ROLES)
def test_inventory_matches_oracle(
    metric_dataset: Any, source: Any, role: str, lead: int, cover: int, status: str | None
) -> None:
    """Every page, the status filter and the counts equal the oracle's."""
    merchant = metric_dataset.info.merchants[role]
    expected = oracle.inventory_status(
        source, merchant, lead_time_days=lead, cover_days=cover, now=metric_dataset.now
    )
    wanted = [i for i in expected["items"] if status in (None, i["status"])]
    args = {"lead_time_days": lead, "cover_days": cover, "status": status}
    items, pages = _pages(metric_dataset, role, 4, **args)
    assert project(items, wanted) == wanted
    assert all(p["counts"] == expected["counts"] for p in pages)


def _edge(ds: Any) -> dict[str, dict[str, Any]]:
    items, _ = _pages(ds, "edge")
    return {i["sku"]: i for i in items}


@pytest.mark.parametrize(
    ("sku", "status"),
    [
        ("E-OUT-NEG", "out"),
        ("E-OUT-ZERO", "out"),
        ("E-LOW-EQ", "low"),
        ("E-OVER-IDLE", "overstock"),
        ("E-COVER-180", "healthy"),
        ("E-COVER-181", "overstock"),
        ("E-REORDER", "healthy"),
    ],
)
def test_status_boundaries(metric_dataset: Any, sku: str, status: str) -> None:
    """Stock ≤ 0, stock = threshold, no sales, and cover of exactly 180 days land right."""
    assert _edge(metric_dataset)[sku]["status"] == status


def test_negative_stock_has_no_turnover(metric_dataset: Any) -> None:
    """Oversold stock (−5) is reported as is, with turnover null."""
    item = _edge(metric_dataset)["E-OUT-NEG"]
    assert (item["stock"], item["turnover_30d"]) == (-5, None)


def test_reorder_quantity_rounds_up(metric_dataset: Any) -> None:
    """29 units in 30 days over 44 days is 42.53 units: reorder 43 − 3 in stock = 40."""
    item = _edge(metric_dataset)["E-REORDER"]
    assert (item["suggested_reorder_qty"], item["daily_velocity"]) == (40, 0.9667)


def test_window_is_half_open(metric_dataset: Any) -> None:
    """Units sold at NOW − 30 days count; at NOW and in pending orders they do not."""
    assert _edge(metric_dataset)["E-WINDOW"]["units_sold_30d"] == 5


def test_archived_products_are_left_out(metric_dataset: Any) -> None:
    """Archived products are neither listed nor counted."""
    items = _edge(metric_dataset)
    assert "E-ARCHIVED" not in items
    assert "E-BOUND" not in items


def test_counts_ignore_the_status_filter(metric_dataset: Any) -> None:
    """counts cover every active product whatever `status` asks for."""
    _, everything = _pages(metric_dataset, "edge")
    _, only_low = _pages(metric_dataset, "edge", status="low")
    assert only_low[0]["counts"] == everything[0]["counts"]
    assert all(i["status"] == "low" for i in only_low[0]["items"])


def test_order_is_status_then_reorder_then_sku(metric_dataset: Any) -> None:
    """Items come out, low, overstock, healthy; then larger reorders first; then sku."""
    items, _ = _pages(metric_dataset, "large", 3)
    rank = ["out", "low", "overstock", "healthy"]
    keys = [(rank.index(i["status"]), -i["suggested_reorder_qty"], i["sku"]) for i in items]
    assert keys == sorted(keys)
