"""Streamable HTTP as served: the socket, the JSON answers, and a second, minimal client."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from mcp_support import dataset

from optima_bi_mcp.mcp.http import bind
from perf.throughput import McpHttpError, McpHttpSession

A = str(dataset.MERCHANT_A)
ACCEPT = {"accept": "application/json, text/event-stream"}


async def test_accepted_connections_have_nodelay():
    """Connections accepted on the bound socket have Nagle's algorithm off (TCP_NODELAY)."""
    seen: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    listening = bind("127.0.0.1", 0)
    server = await asyncio.start_server(accept, sock=listening)
    async with server:
        _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
        while not seen:
            await asyncio.sleep(0.01)
        writer.close()
    assert seen[0] != 0


def test_tool_calls_are_answered_with_one_json_body(http_server):
    """After initialize, tools/call gets an application/json answer, not an SSE stream."""
    url = http_server[0]
    hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}}
    with httpx.Client(timeout=60) as http:
        opened = http.post(
            url,
            headers=ACCEPT,
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        )
        session = {**ACCEPT, "mcp-session-id": opened.headers["mcp-session-id"]}
        http.post(
            url, headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        call = {"name": "whoami", "arguments": {}}
        answer = http.post(
            url,
            headers=session,
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
        )
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["result"]["structuredContent"]["role"] == "admin"


async def test_benchmark_client_gets_the_same_answers(http_server):
    """perf.throughput's own MCP client gets get_sales right, and its session ends on close."""
    client = McpHttpSession(http_server[0])
    await client.open()
    result = await client.call_tool("get_sales", {"days": 7, "merchant_id": A})
    await client.close()
    assert result["structuredContent"]["revenue"] == dataset.A_WEEK["revenue"]
    stale = McpHttpSession(http_server[0])
    stale.session_id = client.session_id
    with pytest.raises(McpHttpError, match="HTTP 404"):
        await stale.call_tool("whoami", {})
    await stale.close()
