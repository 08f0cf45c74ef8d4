"""Every tool through the in-memory MCP client, against the metric functions and by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from mcp import Client
from mcp_support import ADMIN, MERCHANT_A, call, dataset

from optima_bi_mcp.mcp.render import MAX_CHARS, render
from optima_bi_mcp.mcp.tools import TOOLS
from optima_bi_mcp.metrics import merchant, platform
from optima_bi_mcp.metrics import models as m

A = str(dataset.MERCHANT_A)
TODAY = datetime.now(UTC).date()
# Explicit dates make the answers independent of the instant they are computed at.
LAST_40 = {"start": str(TODAY - timedelta(days=39)), "end": str(TODAY)}
INSTANTS = {"as_of", "period"}

MERCHANT_CASES = [
    ("get_sales", m.GetSalesArgs, {**LAST_40, "bucket": "week"}),
    ("top_products", m.TopProductsArgs, {**LAST_40, "sort_by": "quantity"}),
    ("customer_summary", m.CustomerSummaryArgs, {**LAST_40, "churn_days": 30}),
    ("churned_customers", m.ChurnedCustomersArgs, {"as_of": str(TODAY), "churn_days": 60}),
    ("inventory_status", m.InventoryStatusArgs, {"lead_time_days": 7}),
]
PLATFORM_CASES = [
    ("platform_overview", m.PlatformOverviewArgs, {"month": TODAY.strftime("%Y-%m")}),
    ("platform_merchants", m.PlatformMerchantsArgs, {"segment": "active"}),
    ("platform_mrr", m.PlatformMrrArgs, {"month": TODAY.strftime("%Y-%m")}),
    ("platform_revenue", m.PlatformRevenueArgs, {**LAST_40, "breakdown": True}),
]


def _without_instants(content: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in content.items() if k not in INSTANTS}


@pytest.mark.parametrize(("tool", "model", "arguments"), MERCHANT_CASES)
async def test_merchant_tool_equals_metric(make_server, data_store, tool, model, arguments):
    """A merchant tool answers what its metric function computes for the principal's shop."""
    result = await call(make_server(MERCHANT_A), tool, arguments)
    function = getattr(merchant, tool)
    expected = function(data_store[0], dataset.MERCHANT_A, model(**arguments), datetime.now(UTC))
    assert not result.is_error, result.content
    assert _without_instants(result.structured_content) == _without_instants(
        expected.model_dump(mode="json")
    )


@pytest.mark.parametrize(("tool", "model", "arguments"), PLATFORM_CASES)
async def test_platform_tool_equals_metric(make_server, data_store, tool, model, arguments):
    """A platform tool answers what its metric function computes."""
    result = await call(make_server(ADMIN), tool, arguments)
    function = getattr(platform, tool)
    expected = function(data_store[0], model(**arguments), datetime.now(UTC))
    assert not result.is_error, result.content
    assert _without_instants(result.structured_content) == _without_instants(
        expected.model_dump(mode="json")
    )


async def test_get_sales_week_by_hand(make_server):
    """Merchant A's last 7 days: two counted orders; pending and refunded ones left out."""
    result = await call(make_server(MERCHANT_A), "get_sales", {"days": 7})
    figures = {k: result.structured_content[k] for k in dataset.A_WEEK}
    assert figures == dataset.A_WEEK
    assert len(result.structured_content["series"]) == 7


async def test_admin_names_the_merchant(make_server):
    """An administrator gets the named merchant's figures."""
    result = await call(make_server(ADMIN), "get_sales", {"days": 7, "merchant_id": A})
    assert result.structured_content["revenue"] == dataset.A_WEEK["revenue"]


async def test_merchant_may_name_itself(make_server):
    """A merchant naming its own merchant_id is answered."""
    result = await call(make_server(MERCHANT_A), "get_sales", {"days": 7, "merchant_id": A})
    assert result.structured_content["orders"] == dataset.A_WEEK["orders"]


async def test_inventory_counts_by_hand(make_server):
    """Plate is out, Lamp is low, Mug is healthy or overstocked."""
    result = await call(make_server(MERCHANT_A), "inventory_status", {})
    counts = result.structured_content["counts"]
    assert (counts["out"], counts["low"]) == (1, 1)
    assert result.structured_content["items"][0]["sku"] == "SKU-2"


async def test_pagination_follows_cursor(make_server):
    """limit=1 pages through the products one at a time with next_cursor."""
    server = make_server(MERCHANT_A)
    first = await call(server, "top_products", {**LAST_40, "limit": 1})
    cursor = first.structured_content["next_cursor"]
    second = await call(server, "top_products", {**LAST_40, "limit": 1, "cursor": cursor})
    assert cursor is not None
    assert first.structured_content["items"] != second.structured_content["items"]


async def test_whoami_merchant(make_server):
    """whoami names the merchant the session acts as."""
    result = await call(make_server(MERCHANT_A), "whoami", {})
    assert result.structured_content["role"] == "merchant"
    assert result.structured_content["merchant_id"] == A


async def test_meta_says_cache_source_duration_freshness(make_server):
    """_meta carries the cache layer, data source, duration and freshness."""
    result = await call(make_server(MERCHANT_A), "get_sales", {"days": 7})
    meta = result.meta or {}
    assert (meta["cache"], meta["source"]) == ("none", "latest_state")
    assert meta["duration_ms"] >= 0
    assert date.fromisoformat(meta["freshness"][:10]) >= TODAY - timedelta(days=1)


async def test_platform_meta_source_is_rollup(make_server):
    """platform_overview reads the rollup and says so."""
    result = await call(make_server(ADMIN), "platform_overview", {})
    assert (result.meta or {})["source"] == "rollup"


async def test_cache_layer_reaches_meta(make_server):
    """The layer the cache reports is the layer in _meta, with the tool's data scopes
    (the last 7 days read up to now, so today's date in the answer's zone too)."""
    seen: list[tuple[str, tuple[str, ...]]] = []

    class RecordingCache:
        async def get_or_compute(self, tool, arguments, scope, data_scopes, compute):
            seen.append((scope, data_scopes))
            return await compute(), "L1"

        def known_versions(self, data_scopes):
            return None

        def stats(self):
            return {}

        async def aclose(self):
            return None

    server = make_server(MERCHANT_A, cache=RecordingCache())
    result = await call(server, "get_sales", {"days": 7})
    assert (result.meta or {})["cache"] == "L1"
    today = f"day:UTC:{datetime.now(UTC).date().isoformat()}"
    assert seen == [(MERCHANT_A, (f"merchants:{A}", f"orders:{A}", today))]


async def test_text_rendering_accompanies_structure(make_server):
    """The text content is a short reading of the structured answer."""
    result = await call(make_server(MERCHANT_A), "get_sales", {"days": 7})
    text = result.content[0].text
    assert "revenue: 150.50" in text


def test_text_rendering_is_capped():
    """A huge answer is rendered in at most MAX_CHARS characters."""
    items = [{"email": f"{i}@x.test", "ltv": 1.0} for i in range(20_000)]
    text = render("churned_customers", {"items": items})
    assert len(text) <= MAX_CHARS
    assert "cut short" in text


async def test_tools_are_listed_with_schemas(make_server):
    """Every tool is listed read-only with input and output schemas."""
    async with Client(make_server(ADMIN)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    assert set(listed) == {spec.name for spec in TOOLS}
    assert all(t.annotations and t.annotations.read_only_hint for t in listed.values())
    assert all(t.output_schema and "properties" in t.input_schema for t in listed.values())


async def test_input_schema_has_enums_bounds_defaults(make_server):
    """get_sales publishes the bucket enum and its default; lists bound limit to 1-500."""
    async with Client(make_server(ADMIN)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    bucket = listed["get_sales"].input_schema["properties"]["bucket"]
    limit = listed["top_products"].input_schema["properties"]["limit"]
    assert (bucket["enum"], bucket["default"]) == (["hour", "day", "week", "month"], "day")
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 500, 20)
