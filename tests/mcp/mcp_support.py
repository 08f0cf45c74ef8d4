"""Helpers of the MCP tests (imported by name; conftest.py holds only fixtures).

The module names `mcp_support` and `mcp_dataset` are distinctive on purpose:
this directory is put on `sys.path` and must not shadow another test
directory's modules, nor the `mcp` SDK.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import mcp_dataset as dataset
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult

from tests.waiting import wait_for

ADMIN = "admin"
MERCHANT_A = f"merchant:{dataset.MERCHANT_A}"
MERCHANT_B = f"merchant:{dataset.MERCHANT_B}"

__all__ = [
    "ADMIN",
    "MERCHANT_A",
    "MERCHANT_B",
    "call",
    "child_env",
    "dataset",
    "error_code",
    "wait_for",
]


async def call(server: MCPServer | str, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    """One tool call through a fresh MCP client."""
    async with Client(server) as client:
        return await client.call_tool(tool, arguments)


def error_code(result: CallToolResult) -> str:
    assert result.is_error
    return str(result.structured_content["error"]["code"])


def optima_bi() -> list[str]:
    """The command line of `optima-bi` in this environment."""
    return [sys.executable, "-m", "optima_bi_mcp.cli"]


def child_env() -> dict[str, str]:
    return {**os.environ, "OPTIMA_BI_LOG_LEVEL": "WARNING"}
