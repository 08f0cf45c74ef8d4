"""`optima-bi call --pretty`: a tool result as rich tables on the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from optima_bi_mcp.mcp.render import HEADLINES


def print_pretty(tool: str, structured: dict[str, Any], meta: dict[str, Any]) -> None:
    """Scalars in one key/value table, each list of rows in a table of its own."""
    console = Console()
    if "error" in structured:
        error = structured["error"]
        console.print(f"[bold red]{error['code']}[/]: {error['message']} {error.get('details')}")
        return
    summary = Table(title=HEADLINES.get(tool, tool), show_header=False)
    for key, value in structured.items():
        if not isinstance(value, list):
            summary.add_row(key, _text(value))
    console.print(summary)
    for key, value in structured.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            table = Table(title=key)
            for column in value[0]:
                table.add_column(column)
            for row in value:
                table.add_row(*(_text(v) for v in row.values()))
            console.print(table)
    shown = {k: v for k, v in meta.items() if not k.startswith("io.modelcontextprotocol")}
    console.print(f"[dim]{shown}[/]")


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return "null" if value is None else str(value)
