"""Standing in for the process that holds the embedded store.

chDB lets one process open a store path. When `optima-bi serve` (stdio) or
`optima-bi call` finds the store held by a process serving streamable HTTP,
it goes through that process. A request never carries a principal, so the
answers are the holding server's principal's; a local `--as` naming someone
else is refused rather than silently widened or narrowed.
"""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult

from optima_bi_mcp.errors import ForbiddenError, UnauthenticatedError
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp import prompts
from optima_bi_mcp.mcp.server import INSTRUCTIONS
from optima_bi_mcp.mcp.tools import TOOLS, ToolSpec, sdk_tool

RESOURCES = ("bi://metrics", "bi://schema", "bi://status")


async def check_principal(url: str, wanted: str | None) -> str:
    """The holding server's principal (`admin` or `merchant:<uuid>`), if `wanted` matches it."""
    async with Client(url) as client:
        who = (await client.call_tool("whoami", {})).structured_content or {}
    if "role" not in who:
        raise UnauthenticatedError(f"the server at {url} holding the store has no principal")
    actual = "admin" if who["role"] == "admin" else f"merchant:{who['merchant_id']}"
    if wanted is not None and Principal.parse(wanted).scope_key != actual:
        raise ForbiddenError(
            f"the store is held by the server at {url}, which acts as {actual}, not {wanted};"
            " stop it, or point your client at it"
        )
    return actual


def build_proxy(url: str) -> MCPServer:
    """A server offering Optima BI's tools, resources and prompts by asking the server at `url`."""

    async def forward(spec: ToolSpec, ctx: Context, arguments: dict[str, Any]) -> CallToolResult:
        async with Client(url) as client:
            return await client.call_tool(spec.name, arguments)

    server: MCPServer = MCPServer(
        "optima-bi", instructions=INSTRUCTIONS, tools=[sdk_tool(spec, forward) for spec in TOOLS]
    )
    for uri in RESOURCES:
        server.resource(uri, name=uri.removeprefix("bi://"))(_reader(url, uri))

    @server.resource("bi://merchants/{merchant_id}/overview", name="merchant-overview")
    async def merchant_overview(merchant_id: str) -> str:
        return await _read(url, f"bi://merchants/{merchant_id}/overview")

    prompts.register(server)
    return server


def _reader(url: str, uri: str) -> Any:
    async def read() -> str:
        return await _read(url, uri)

    return read


async def _read(url: str, uri: str) -> str:
    async with Client(url) as client:
        result = await client.read_resource(uri)
    return "".join(getattr(c, "text", "") for c in result.contents)
