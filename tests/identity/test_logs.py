"""A full session's logs hold no token, code or secret: ours, the SDK's and the dev IdP's."""

from __future__ import annotations

import logging

import anyio
from loguru import logger
from mcp import Client

from optima_bi_mcp.mcp.server import build_server
from optima_bi_mcp.settings import Settings

from .conftest import session_for


async def test_full_session_logs_no_secret(short_idp, identity_config, make_store, caplog):
    """Login, tool calls, refresh and logout leave no token or code in any log."""
    caplog.set_level(logging.DEBUG)
    lines: list[str] = []
    handler = logger.add(lines.append, level="DEBUG", format="{message} {extra}")
    secrets: list[str] = []
    try:
        async with session_for(identity_config(short_idp)) as session:
            server = build_server(
                Settings(),
                make_store("logs"),
                principal_resolver=session.resolve,
                login_session=session,
            )
            async with Client(server) as client:
                await client.call_tool("whoami", {})
                answer = (await client.call_tool("login", {})).structured_content
                secrets += [answer["user_code"], session.pending.device_code]
                short_idp.approve(answer["user_code"], "alice")
                with anyio.fail_after(30):
                    while session.state == "pending":
                        await session.wait_for_change()
                secrets += [session.tokens.access_token, session.tokens.refresh_token]
                await client.call_tool("whoami", {})  # 5 s tokens: this refreshes
                secrets += [session.tokens.access_token, session.tokens.refresh_token]
                await client.call_tool("logout", {})
    finally:
        logger.remove(handler)
    logs = "\n".join(lines) + caplog.text + short_idp.stderr()
    assert len(set(secrets)) == 6
    assert "tokens refreshed" in logs and "device code decided" in logs  # the capture works
    assert [s for s in secrets if s in logs] == []
