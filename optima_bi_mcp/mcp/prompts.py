"""Prompts: ready-made reviews that tell the assistant which tools to call and what to look for."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer


def register(server: MCPServer) -> None:
    """Add every prompt of Optima BI to `server`."""
    for prompt, title in PROMPTS:
        server.prompt(title=title)(prompt)


def weekly_business_review(merchant_id: str = "") -> str:
    """A merchant's week: sales against the week before, best sellers, customers, stock."""
    who = _merchant_arg(merchant_id)
    return (
        "Prepare a weekly business review of the shop.\n"
        f"1. Call get_sales with days=7, bucket='day'{who}. Report revenue, orders, aov and"
        " unique_customers with growth_pct against the previous 7 days; name the best and"
        " the worst day of the series.\n"
        f"2. Call top_products with days=7, limit=5{who}. Say which products carry the week"
        " (share_of_revenue) and whether one product dominates.\n"
        f"3. Call customer_summary with days=7{who}. Comment on new versus repeat customers.\n"
        f"4. Call inventory_status with status='low'{who}, then status='out'. List products"
        " a top seller could run out of, with suggested_reorder_qty.\n"
        "End with three concrete actions for next week. Quote money with its currency."
    )


def inventory_check(merchant_id: str = "", lead_time_days: int = 14) -> str:
    """Which products to reorder now and which hold too much stock."""
    who = _merchant_arg(merchant_id)
    lead = f", lead_time_days={lead_time_days}"
    return (
        "Check the shop's inventory.\n"
        f"1. Call inventory_status with status='out'{lead}{who} and then status='low'{lead}"
        f"{who}; page with next_cursor until every item is seen.\n"
        "2. For each, give sku, name, stock, days_of_cover and suggested_reorder_qty,"
        " biggest reorder first.\n"
        f"3. Call inventory_status with status='overstock'{who}; list products with more"
        " than 180 days of cover or no sales, and suggest promotions.\n"
        "4. Cross-check with top_products (days=30, sort_by='quantity'"
        f"{who}) that no best seller is among the low or out products without a reorder."
    )


def churn_winback(merchant_id: str = "", churn_days: int = 90) -> str:
    """Find valuable customers who stopped ordering and plan how to win them back."""
    who = _merchant_arg(merchant_id)
    return (
        "Plan a win-back campaign.\n"
        f"1. Call customer_summary with days=30, churn_days={churn_days}{who} to size churn"
        " against the customer base (churned, customers, repeat_rate).\n"
        f"2. Call churned_customers with churn_days={churn_days}, limit=50{who}: they come"
        " highest lifetime value first.\n"
        "3. Group them by value (ltv) and by how long they have been gone"
        " (days_since_last_order); propose an offer per group.\n"
        f"4. Call top_products with days=90{who} to pick products to feature in the offer.\n"
        "Never invent customers: quote only emails the tools returned."
    )


def platform_monthly_review(month: str = "") -> str:
    """The platform's month for administrators: GMV, merchants, MRR and revenue."""
    which = f"month='{month}'" if month else "no month (the current month)"
    return (
        "Prepare the platform's monthly review (administrators only).\n"
        f"1. Call platform_overview with {which}. Report gmv, orders, aov,"
        " active_merchants, new_merchants and take_rate with mom_pct and yoy_pct.\n"
        f"2. Call platform_mrr with {which}. Explain the MRR bridge: new + reactivation +"
        " expansion - contraction - churned, then net_revenue_retention and quick_ratio.\n"
        "3. Call platform_revenue with breakdown=true for the month's dates: fee versus"
        " subscription revenue, and transfers paid.\n"
        "4. Call platform_merchants with segment='top', limit=10, then segment='sleeping'"
        " sorted by gmv_30d: who drives growth, who needs a call.\n"
        "Close with risks and three actions."
    )


PROMPTS = (
    (weekly_business_review, "Weekly business review"),
    (inventory_check, "Inventory check"),
    (churn_winback, "Churn win-back"),
    (platform_monthly_review, "Platform monthly review"),
)


def _merchant_arg(merchant_id: str) -> str:
    return f", merchant_id='{merchant_id}'" if merchant_id else ""
