"""The tools: names, descriptions for the model, and argument and result schemas.

Names and fields follow TOOLS.md (a contract: add, never rename). Arguments are
validated by the server itself with the models of `metrics.models`, so a bad
argument gets our INVALID_ARGUMENT error rather than the SDK's plain text; the
input schema published to clients is generated from the same models.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict

from optima_bi_mcp.metrics import models as m

Kind = Literal["merchant", "platform", "identity"]

_MERCHANT_NOTE = (
    " Merchants always get their own shop; administrators must pass merchant_id."
    " Money is in the merchant's currency (field `currency`), 2 decimals;"
    " only counted orders (paid, shipped, delivered, completed) take part."
)
_PERIOD_NOTE = (
    " Period: either start+end dates (YYYY-MM-DD, end inclusive) or days=N"
    " (the last N days up to now, today included), never both; days are cut in `timezone`."
)
_LIST_NOTE = " Paginated: limit 1-500 (default 20); pass next_cursor back as cursor for more."
_PLATFORM_NOTE = " Administrators only (merchants get FORBIDDEN). Months and days are UTC."


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what the model reads about it and how the server runs it."""

    name: str
    title: str
    description: str
    arguments: type[m.Arguments]
    result: type[BaseModel]
    kind: Kind
    # Where the answer is read from: the rollup or the latest-state tables.
    source: str

    def input_schema(self) -> dict[str, Any]:
        return self.arguments.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        """The result's schema, also admitting the `{"error": …}` of a tool error.

        Some clients (the TypeScript SDK) validate structured content against the
        output schema even when `isError` is set, so the error shape is declared
        as a second branch rather than left to break them.
        """
        schema = flat_schema(self.result.model_json_schema(mode="serialization"))
        required = schema.pop("required", [])
        schema["properties"]["error"] = ERROR_SCHEMA
        schema["anyOf"] = [{"required": required}, {"required": ["error"]}]
        return schema


def flat_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every `$ref` inlined, nullable types as type lists, no generated titles.

    Clients validate every structured result against the output schema, and
    the Python SDK's validator pays per keyword it visits: a `$ref` costs a
    registry lookup per object it checks, an `anyOf [T, null]` two subschemas
    where `type: [T, "null"]` is one keyword. The same shapes, cheaper to check
    (a 7-day get_sales result: about half the validation time).
    """
    defs = schema.pop("$defs", {})

    def walk(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if ref is not None:
            node = {**defs[ref.rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title":
                continue
            if key in {"properties", "patternProperties"}:
                out[key] = {name: walk(sub) for name, sub in value.items()}
            elif key in {"items", "additionalProperties"} and isinstance(value, dict):
                out[key] = walk(value)
            elif key in {"anyOf", "oneOf", "allOf", "prefixItems"}:
                out[key] = [walk(sub) for sub in value]
            else:
                out[key] = value
        return _nullable(out)

    return walk(schema)


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf [{type: T, …}, {type: null}]` as `{type: [T, null], …}`."""
    branches = node.get("anyOf")
    if not branches or len(branches) != 2 or {"type": "null"} not in branches:
        return node
    other = branches[1 - branches.index({"type": "null"})]
    if not isinstance(other.get("type"), str) or "anyOf" in other:
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return {**other, **rest, "type": [other["type"], "null"]}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Only on tool errors (isError): what failed and which argument to fix.",
    "properties": {
        "code": {
            "type": "string",
            "enum": [
                "INVALID_ARGUMENT",
                "NOT_FOUND",
                "FORBIDDEN",
                "UNAUTHENTICATED",
                "UNAVAILABLE",
                "INTERNAL",
            ],
        },
        "message": {"type": "string"},
        "details": {"type": "object", "description": "`argument` names the argument to fix."},
    },
    "required": ["code", "message", "details"],
}


class WhoamiArgs(m.Arguments):
    """whoami takes no arguments."""


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "get_sales",
        "Sales of a merchant",
        "Revenue, orders, average order value (aov), unique customers and platform fees of"
        " one merchant over a period, with a series per bucket (hour, day, week, month; every"
        " bucket present, zeros included), the same figures for the previous period of equal"
        " length, and growth_pct (percent, null when the previous figure is 0). Use it for"
        " 'how did we sell this week/month', trends and comparisons. Default: the last 7 days,"
        " daily buckets. Series longer than 400 buckets are refused; pick a coarser bucket."
        + _PERIOD_NOTE
        + _MERCHANT_NOTE,
        m.GetSalesArgs,
        m.SalesResult,
        "merchant",
        "latest_state",
    ),
    ToolSpec(
        "top_products",
        "Best-selling products",
        "A merchant's products ranked by revenue or quantity sold over a period (default the"
        " last 30 days), with sku, name, category, orders and share_of_revenue (a ratio 0-1 of"
        " all product revenue in the period). Use it for 'what sells best' questions."
        + _PERIOD_NOTE
        + _LIST_NOTE
        + _MERCHANT_NOTE,
        m.TopProductsArgs,
        m.TopProductsResult,
        "merchant",
        "latest_state",
    ),
    ToolSpec(
        "customer_summary",
        "Customer segments",
        "Counts of a merchant's customers (distinct lower-cased emails) as of the end of the"
        " period (default the last 30 days): customers (everyone with an order before the end"
        " of the period), new (first order in the period), repeat (ordered in the period and"
        " has 2+ orders), churned (no order for churn_days, default 90), vip"
        " (top 10 % by lifetime value), repeat_rate (ratio 0-1) and avg_ltv (money). Use it"
        " for retention and loyalty questions; list churned people with churned_customers."
        + _PERIOD_NOTE
        + _MERCHANT_NOTE,
        m.CustomerSummaryArgs,
        m.CustomerSummaryResult,
        "merchant",
        "latest_state",
    ),
    ToolSpec(
        "churned_customers",
        "Churned customers",
        "The merchant's customers whose last counted order is more than churn_days (default"
        " 90) before the end of as_of (default today), highest lifetime value (ltv) first,"
        " with email, last_order_at, days_since_last_order and orders_count, plus the total"
        " count. Use it to plan win-back campaigns." + _LIST_NOTE + _MERCHANT_NOTE,
        m.ChurnedCustomersArgs,
        m.ChurnedCustomersResult,
        "merchant",
        "latest_state",
    ),
    ToolSpec(
        "inventory_status",
        "Inventory status",
        "Stock health of the merchant's active products now: stock, units sold in the last 30"
        " days, daily_velocity (units/day), days_of_cover, turnover_30d, status (out, low,"
        " overstock, healthy) and suggested_reorder_qty (units to order to cover lead_time_days"
        " + cover_days of sales), plus counts per status. Sorted out, low, overstock, healthy,"
        " then biggest reorder first. Filter with status='low' or 'out' for restocking"
        " questions." + _LIST_NOTE + _MERCHANT_NOTE,
        m.InventoryStatusArgs,
        m.InventoryStatusResult,
        "merchant",
        "latest_state",
    ),
    ToolSpec(
        "platform_overview",
        "Platform overview",
        "Whole-platform figures of one calendar month (default the current month, YYYY-MM):"
        " gmv (gross merchandise value of counted orders), orders, aov, active_merchants,"
        " new_merchants, platform_fees and take_rate (fees / gmv, ratio), with growth in"
        " percent month over month (mom_pct) and year over year (yoy_pct). Amounts in the"
        " platform currency. Use it for monthly platform reviews." + _PLATFORM_NOTE,
        m.PlatformOverviewArgs,
        m.PlatformOverviewResult,
        "platform",
        "rollup",
    ),
    ToolSpec(
        "platform_merchants",
        "Merchants by segment",
        "Merchants with their gmv and orders over the last 30 days, gmv of the 30 days before,"
        " growth_pct and last_order_at. segment: top (all, by gmv_30d), active (ordered in 30"
        " days), sleeping (last order 30-90 days ago) or churned (none in 90 days). Sort by"
        " gmv_30d, growth_pct or last_order_at (descending). Use it to find who grows, who"
        " slows down and whom to contact." + _LIST_NOTE + _PLATFORM_NOTE,
        m.PlatformMerchantsArgs,
        m.PlatformMerchantsResult,
        "platform",
        "rollup",
    ),
    ToolSpec(
        "platform_mrr",
        "Subscription MRR",
        "Monthly recurring revenue of merchant subscriptions at the end of a calendar month"
        " (default the current month): mrr, arr, mrr_by_plan, paying_merchants, the month's"
        " movements (new, reactivation, expansion, contraction, churned MRR), logo and revenue"
        " churn rates, net_revenue_retention and quick_ratio (ratios, null when undefined)."
        " Use it for SaaS revenue health questions." + _PLATFORM_NOTE,
        m.PlatformMrrArgs,
        m.PlatformMrrResult,
        "platform",
        "latest_state",
    ),
    ToolSpec(
        "platform_revenue",
        "Platform revenue",
        "The platform's own revenue over a period (default the last 30 days): fee_revenue"
        " (platform fees of counted orders), subscription_revenue (earned pro rata), total,"
        " and transfers_paid to merchants. breakdown=true adds fees by month, subscriptions by"
        " plan and transfers by status. Period: start+end dates or days, not both."
        + _PLATFORM_NOTE,
        m.PlatformRevenueArgs,
        m.PlatformRevenueResult,
        "platform",
        "latest_state",
    ),
    ToolSpec(
        "whoami",
        "Who am I",
        "Who this session acts as: role (merchant or admin), merchant_id (for merchants),"
        " subject, email and environment. Call it first when unsure whether to pass"
        " merchant_id or whether platform tools are allowed.",
        WhoamiArgs,
        m.WhoamiResult,
        "identity",
        "identity",
    ),
)

TOOLS_BY_NAME = {spec.name: spec for spec in TOOLS}
READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

Handler = Callable[[ToolSpec, Context, dict[str, Any]], Awaitable[CallToolResult]]


class _RawArguments(ArgModelBase):
    """Lets every argument through untouched: validation is ours (see module doc)."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


def sdk_tool(spec: ToolSpec, handler: Handler) -> Tool:
    """The SDK tool for `spec`, publishing our schemas and running `handler`."""

    async def run(ctx: Context, arguments: dict[str, Any]) -> CallToolResult:
        return await handler(spec, ctx, arguments)

    return Tool(
        fn=run,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=spec.input_schema(),
        # An output schema without an output model is published but not re-validated
        # by the SDK; our results are dumped from the result models already.
        fn_metadata=FuncMetadata(arg_model=_RawArguments, output_schema=spec.output_schema()),
        is_async=True,
        context_kwarg="ctx",
        annotations=READ_ONLY.model_copy(update={"title": spec.title}),
    )
