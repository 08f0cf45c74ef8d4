"""`optima-bi demo` (`make demo`): seed if empty, then a scripted session over real stdio.

Two sessions, each a real MCP client talking to `optima-bi serve` spawned as a
subprocess over stdio: a merchant looking at its week, and an administrator
looking at the platform's month. It ends by showing how to add the server to
Claude Code and Claude Desktop.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from rich.console import Console
from rich.panel import Panel

from optima_bi_mcp.mcp.commands import open_settings_store, settings_from
from optima_bi_mcp.settings import Settings

MERCHANT_SCRIPT: list[tuple[str, dict[str, Any], str]] = [
    ("get_sales", {"days": 7}, "How did my shop sell this week?"),
    ("top_products", {"days": 30, "limit": 5}, "What sells best this month?"),
    ("churned_customers", {"limit": 5}, "Which good customers stopped ordering?"),
    ("inventory_status", {"status": "low", "limit": 5}, "What is running low?"),
]
ADMIN_SCRIPT: list[tuple[str, dict[str, Any], str]] = [
    ("platform_overview", {}, "How is the platform doing this month?"),
    ("platform_mrr", {}, "Where does subscription revenue stand?"),
]

_BUSIEST = """
SELECT merchant_id FROM merchant_daily FINAL
WHERE day >= today() - 30
GROUP BY merchant_id ORDER BY sum(gmv) DESC, toString(merchant_id) LIMIT 1
"""


def run_demo(ns: argparse.Namespace) -> int:
    """Seed the store if it is empty, then run the scripted sessions."""
    console = Console()
    settings = settings_from(ns)
    try:
        merchant_id = prepare(settings, console)
    except Exception as exc:
        console.print(f"[red]demo: {getattr(exc, 'message', exc)}[/]")
        return 2
    anyio.run(_sessions, settings, merchant_id, console)
    print_setup(console, settings, merchant_id)
    return 0


def prepare(settings: Settings, console: Console) -> str:
    """Seed an empty store and return the merchant with the most sales lately."""
    from optima_bi_mcp.data.seed import seed_store, store_is_empty
    from optima_bi_mcp.data.synth import SeedSpec

    store = open_settings_store(settings)
    try:
        if store_is_empty(store):
            console.print("Seeding the embedded store with the synthetic dataset…")
            seed_store(store, SeedSpec())
        rows = store.query(_BUSIEST) or store.query("SELECT id FROM merchants FINAL LIMIT 1")
        return str(rows[0][0])
    finally:
        # The server subprocesses below need the store: chDB lets one process hold it.
        store.close()


async def _sessions(settings: Settings, merchant_id: str, console: Console) -> None:
    console.rule(f"A merchant's session (--as merchant:{merchant_id})")
    await _session(settings, f"merchant:{merchant_id}", MERCHANT_SCRIPT, console)
    console.rule("An administrator's session (--as admin)")
    await _session(settings, "admin", ADMIN_SCRIPT, console)


async def _session(
    settings: Settings,
    principal: str,
    script: list[tuple[str, dict[str, Any], str]],
    console: Console,
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "optima_bi_mcp.cli", "--log-level", "WARNING", "serve", "--as", principal]
        + ["--store", settings.store],
    )
    async with Client(params) as client:
        for tool, arguments, question in script:
            result = await client.call_tool(tool, arguments)
            text = "\n".join(getattr(c, "text", "") for c in result.content)
            meta = result.meta or {}
            title = f"{question}  →  {tool}({json.dumps(arguments)})"
            footer = f"cache={meta.get('cache')} source={meta.get('source')}"
            footer += f" {meta.get('duration_ms')} ms"
            console.print(Panel(_shorten(text), title=title, subtitle=footer))


def _shorten(text: str, lines: int = 24) -> str:
    kept = text.splitlines()
    if len(kept) <= lines:
        return text
    return "\n".join(kept[:lines] + [f"… {len(kept) - lines} more lines"])


def print_setup(console: Console, settings: Settings, merchant_id: str) -> None:
    """How to add the server to Claude Code and Claude Desktop."""
    desktop = {
        "mcpServers": {
            "optima-bi": {
                "command": "optima-bi",
                "args": ["serve", "--as", f"merchant:{merchant_id}"],
            }
        }
    }
    console.rule("Use it from Claude")
    lines = [
        "Claude Code (stdio, as this merchant):",
        f"  claude mcp add optima-bi -- optima-bi serve --as merchant:{merchant_id}",
        "Claude Code over streamable HTTP (one process then owns the embedded store):",
        "  optima-bi serve --http --port 8000 --as admin",
        "  claude mcp add --transport http optima-bi http://127.0.0.1:8000/mcp",
        "One call from the shell:",
        f"  optima-bi call get_sales --as merchant:{merchant_id} --args '{{\"days\": 7}}' --pretty",
        "Claude Desktop: add this to claude_desktop_config.json"
        " (use the full path of optima-bi if it is not on PATH):",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    console.print_json(json.dumps(desktop))
