"""Short text renderings of tool results, for the model reading them.

The structured content is the answer; the text is a compact reading of it:
scalars as `name: value` lines, lists as pipe tables. It is capped at about
10,000 tokens (40,000 characters), with a line saying how to see the rest.
"""

from __future__ import annotations

from typing import Any

MAX_CHARS = 40_000
HEADLINES = {
    "get_sales": "Sales of the period (counted orders; money in the currency shown)",
    "top_products": "Top products of the period",
    "customer_summary": "Customer segments at the end of the period",
    "churned_customers": "Churned customers (no counted order for churn_days)",
    "inventory_status": "Inventory status of active products",
    "platform_overview": "Platform overview of the month (UTC)",
    "platform_merchants": "Merchants of the segment",
    "platform_mrr": "Subscription MRR of the month (UTC)",
    "platform_revenue": "Platform revenue of the period (UTC)",
    "whoami": "Who this session acts as",
}


def render(tool: str, content: dict[str, Any], max_chars: int = MAX_CHARS) -> str:
    """The text rendering of a tool's structured result, capped at `max_chars`."""
    lines = [HEADLINES.get(tool, tool)]
    for key, value in content.items():
        lines.extend(_field(key, value))
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text
    cut = text.rfind("\n", 0, max_chars - 200)
    return (
        text[: max(cut, 0)]
        + "\n… text cut short; the structured content holds the full answer"
        + " (or ask for a smaller page with `limit`)."
    )


def _field(key: str, value: Any) -> list[str]:
    if isinstance(value, list):
        return [f"{key}: (none)"] if not value else [f"{key}:", *_table(value)]
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={_scalar(v)}" for k, v in value.items())
        return [f"{key}: {inner}"]
    return [f"{key}: {_scalar(value)}"]


def _table(rows: list[Any]) -> list[str]:
    if not isinstance(rows[0], dict):
        return ["  " + ", ".join(_scalar(v) for v in rows)]
    columns = list(rows[0])
    lines = ["  " + " | ".join(columns)]
    lines.extend("  " + " | ".join(_scalar(row.get(c)) for c in columns) for row in rows)
    return lines


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.2f}" if value == round(value, 2) else f"{value:.4f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_scalar(v)}" for k, v in value.items()) + "}"
    return str(value)
