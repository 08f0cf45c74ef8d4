"""A stdio-style MCP session logging in through the `login` tool against the dev IdP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from optima_bi_mcp.mcp.server import build_server
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store
from tests.mcp import mcp_dataset as dataset

from .conftest import MERCHANT_A, MERCHANT_B, DevIdp, session_for


@pytest.fixture(scope="module")
def shop_store(make_store: Callable[[str], Store]) -> tuple[Store, datetime]:
    """A store holding the MCP tests' hand-made dataset (merchants A and B)."""
    store = make_store("idshop")
    return store, dataset.load(store)


def code_of(result: CallToolResult) -> str | None:
    if not result.is_error:
        return None
    return str(result.structured_content["error"]["code"])


async def login_through_tool(client: Client, session: Any, idp: DevIdp, user: str) -> None:
    answer = await client.call_tool("login", {})
    idp.approve(answer.structured_content["user_code"], user)
    with anyio.fail_after(30):
        while session.state == "pending":
            await session.wait_for_change()


async def test_merchant_session_through_login_tool(idp, identity_config, shop_store):
    """Before login: UNAUTHENTICATED; after: the merchant's own figures, others FORBIDDEN."""
    async with session_for(identity_config(idp)) as session:
        server = build_server(
            Settings(), shop_store[0], principal_resolver=session.resolve, login_session=session
        )
        async with Client(server) as client:
            before = await client.call_tool("get_sales", {"days": 7})
            await login_through_tool(client, session, idp, "alice")
            sales = await client.call_tool("get_sales", {"days": 7})
            other = await client.call_tool("get_sales", {"merchant_id": str(MERCHANT_B)})
    assert code_of(before) == "UNAUTHENTICATED"
    assert sales.structured_content["revenue"] == dataset.A_WEEK["revenue"]
    assert code_of(other) == "FORBIDDEN"


async def test_whoami_after_login_names_the_merchant(idp, identity_config, shop_store):
    """whoami reports the logged-in merchant, subject and e-mail from the token."""
    async with session_for(identity_config(idp)) as session:
        server = build_server(
            Settings(), shop_store[0], principal_resolver=session.resolve, login_session=session
        )
        async with Client(server) as client:
            await login_through_tool(client, session, idp, "alice")
            who = (await client.call_tool("whoami", {})).structured_content
    assert who["merchant_id"] == str(MERCHANT_A)
    assert (who["role"], who["subject"]) == ("merchant", "alice")


async def test_logout_tool_revokes_and_locks_tools(idp, identity_config, shop_store):
    """After the logout tool, the issuer revoked the tokens and tools are UNAUTHENTICATED."""
    async with session_for(identity_config(idp)) as session:
        server = build_server(
            Settings(), shop_store[0], principal_resolver=session.resolve, login_session=session
        )
        async with Client(server) as client:
            await login_through_tool(client, session, idp, "alice")
            out = (await client.call_tool("logout", {})).structured_content
            after = await client.call_tool("get_sales", {"days": 7})
    assert out["revoked"] is True
    assert code_of(after) == "UNAUTHENTICATED"


async def test_login_tool_when_logged_in_says_who(idp, identity_config, shop_store):
    """Calling login again once logged in answers logged_in, not a new code."""
    async with session_for(identity_config(idp)) as session:
        server = build_server(
            Settings(), shop_store[0], principal_resolver=session.resolve, login_session=session
        )
        async with Client(server) as client:
            await login_through_tool(client, session, idp, "root")
            again = (await client.call_tool("login", {})).structured_content
    assert again["status"] == "logged_in"
    assert again["role"] == "admin" and again["user_code"] is None
