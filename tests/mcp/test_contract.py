"""Meta-tests: every tool keeps the TOOLS.md contract, is described, and is tested."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp_support import ADMIN, call

from optima_bi_mcp.mcp.tools import TOOLS, TOOLS_BY_NAME

# The structured-result fields TOOLS.md promises (add, never rename or remove).
CONTRACT = {
    "get_sales": "period currency revenue orders aov unique_customers platform_fees series"
    " previous growth_pct",
    "top_products": "items next_cursor",
    "customer_summary": "customers new repeat churned vip repeat_rate avg_ltv currency",
    "churned_customers": "items next_cursor",
    "inventory_status": "items counts next_cursor",
    "platform_overview": "month gmv orders aov active_merchants new_merchants platform_fees"
    " take_rate mom_pct yoy_pct",
    "platform_merchants": "items next_cursor",
    "platform_mrr": "month mrr arr mrr_by_plan paying_merchants new_mrr reactivation_mrr"
    " expansion_mrr contraction_mrr churned_mrr logo_churn_rate revenue_churn_rate"
    " net_revenue_retention quick_ratio",
    "platform_revenue": "fee_revenue subscription_revenue transfers_paid total currency"
    " fees_by_month subscriptions_by_plan transfers_by_status",
    "whoami": "role merchant_id subject email environment",
}
ARGUMENTS = {
    "get_sales": "start end days bucket timezone merchant_id",
    "top_products": "start end days sort_by limit cursor merchant_id",
    "customer_summary": "start end days churn_days merchant_id",
    "churned_customers": "as_of churn_days limit cursor merchant_id",
    "inventory_status": "status lead_time_days cover_days limit cursor merchant_id",
    "platform_overview": "month",
    "platform_merchants": "segment sort_by limit cursor",
    "platform_mrr": "month",
    "platform_revenue": "start end days breakdown",
    "whoami": "",
}
TESTS = Path(__file__).parent


def test_every_contract_tool_is_served():
    """The server offers exactly the tools of the contract."""
    assert set(TOOLS_BY_NAME) == set(CONTRACT)


@pytest.mark.parametrize("tool", sorted(CONTRACT))
def test_result_fields_follow_contract(tool):
    """The output schema holds every field TOOLS.md names for the tool."""
    properties = TOOLS_BY_NAME[tool].output_schema()["properties"]
    assert set(CONTRACT[tool].split()) <= set(properties)


@pytest.mark.parametrize("tool", sorted(ARGUMENTS))
def test_arguments_follow_contract(tool):
    """The input schema takes every argument TOOLS.md names (more may be added)."""
    properties = TOOLS_BY_NAME[tool].input_schema().get("properties", {})
    assert set(ARGUMENTS[tool].split()) <= set(properties)


@pytest.mark.parametrize("spec", TOOLS, ids=lambda s: s.name)
def test_every_tool_is_described_for_the_model(spec):
    """Every tool has a description that says what it answers, and a docstring'd schema."""
    assert len(spec.description) > 150
    assert all("description" in p for p in spec.input_schema().get("properties", {}).values())


@pytest.mark.parametrize("tool", sorted(CONTRACT))
def test_every_tool_is_called_by_a_test(tool):
    """Some test in tests/mcp calls the tool through an MCP client."""
    sources = "".join(
        p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name
    )
    assert f'"{tool}"' in sources


async def test_platform_revenue_breakdown_only_when_asked(make_server):
    """Without breakdown the breakdown fields are null."""
    result = await call(make_server(ADMIN), "platform_revenue", {"days": 30})
    assert result.structured_content["fees_by_month"] is None
