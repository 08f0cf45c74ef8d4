"""Resources and prompts through the in-memory MCP client."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_support import ADMIN, MERCHANT_A, dataset

A, B = str(dataset.MERCHANT_A), str(dataset.MERCHANT_B)
PROMPTS = ["weekly_business_review", "inventory_check", "churn_winback", "platform_monthly_review"]


async def read(server, uri: str) -> str:
    async with Client(server) as client:
        result = await client.read_resource(uri)
    return result.contents[0].text


async def test_metrics_resource_holds_definitions(make_server):
    """bi://metrics explains counted orders."""
    text = await read(make_server(ADMIN), "bi://metrics")
    assert "Counted order" in text


async def test_schema_resource_lists_tables(make_server):
    """bi://schema lists the latest-state tables and the rollup with their columns."""
    text = await read(make_server(ADMIN), "bi://schema")
    assert "## merchant_daily" in text
    assert "| amount_total | Decimal(12, 2) |" in text


async def test_status_resource(make_server):
    """bi://status counts rows, lists migrations and the cache, without credentials."""
    status = json.loads(await read(make_server(ADMIN), "bi://status"))
    assert status["rows"]["orders"] == 7
    assert status["migrations"]["pending"] == []
    assert status["cache"] == {"enabled": False}


async def test_merchant_overview_template(make_server):
    """A merchant reads its own overview: name, currency and 30 days of sales."""
    overview = json.loads(await read(make_server(MERCHANT_A), f"bi://merchants/{A}/overview"))
    assert (overview["name"], overview["currency"]) == ("Alpha Shop", "USD")
    assert overview["sales_30d"]["orders"] == 3


async def test_merchant_overview_of_another_is_refused(make_server):
    """A merchant cannot read another merchant's overview."""
    async with Client(make_server(MERCHANT_A)) as client:
        with pytest.raises(MCPError, match="FORBIDDEN"):
            await client.read_resource(f"bi://merchants/{B}/overview")


async def test_prompts_are_listed(make_server):
    """The four prompts are offered."""
    async with Client(make_server(ADMIN)) as client:
        names = {p.name for p in (await client.list_prompts()).prompts}
    assert names == set(PROMPTS)


@pytest.mark.parametrize(
    ("prompt", "tools"),
    [
        ("weekly_business_review", ["get_sales", "top_products", "inventory_status"]),
        ("inventory_check", ["inventory_status", "top_products"]),
        ("churn_winback", ["customer_summary", "churned_customers"]),
        ("platform_monthly_review", ["platform_overview", "platform_mrr", "platform_revenue"]),
    ],
)
async def test_prompt_names_its_tools(make_server, prompt, tools):
    """Each prompt tells the assistant which tools to call."""
    async with Client(make_server(ADMIN)) as client:
        result = await client.get_prompt(prompt, {})
    text = result.messages[0].content.text
    assert all(tool in text for tool in tools)


async def test_prompt_passes_merchant_id(make_server):
    """An administrator's prompt carries the merchant_id into every call it suggests."""
    async with Client(make_server(ADMIN)) as client:
        result = await client.get_prompt("weekly_business_review", {"merchant_id": A})
    assert result.messages[0].content.text.count(f"merchant_id='{A}'") >= 3
