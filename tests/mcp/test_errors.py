"""Every error code, provoked through the MCP client; the server keeps serving after each."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp_support import ADMIN, MERCHANT_A, call, dataset, error_code

from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.metrics import merchant
from optima_bi_mcp.settings import Settings

A, B = str(dataset.MERCHANT_A), str(dataset.MERCHANT_B)

INVALID = [
    ("get_sales", {"bucket": "year"}, "bucket"),
    ("top_products", {"limit": 501}, "limit"),
    ("top_products", {"limit": 0}, "limit"),
    ("get_sales", {"days": 7, "start": "2026-01-01", "end": "2026-01-31"}, "days"),
    ("get_sales", {"start": "2026-01-31", "end": "2026-01-01"}, "end"),
    ("get_sales", {"days": 3660, "bucket": "hour"}, "bucket"),
    ("get_sales", {"timezone": "Mars/Olympus"}, "timezone"),
    ("top_products", {"cursor": "not-a-cursor"}, "cursor"),
    ("churned_customers", {"as_of": "yesterday"}, "as_of"),
    ("inventory_status", {"status": "plenty"}, "status"),
    ("get_sales", {"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("tool", "arguments", "argument"), INVALID)
async def test_invalid_argument_names_it(make_server, tool, arguments, argument):
    """A bad argument is INVALID_ARGUMENT naming the argument."""
    result = await call(make_server(MERCHANT_A), tool, arguments)
    assert error_code(result) == "INVALID_ARGUMENT"
    assert result.structured_content["error"]["details"]["argument"] == argument


async def test_cursor_of_another_query_is_refused(make_server):
    """A cursor returned for one sort order is refused for another."""
    server = make_server(MERCHANT_A)
    first = await call(server, "top_products", {"days": 400, "limit": 1})
    cursor = first.structured_content["next_cursor"]
    again = await call(
        server, "top_products", {"days": 400, "limit": 1, "cursor": cursor, "sort_by": "quantity"}
    )
    assert error_code(again) == "INVALID_ARGUMENT"


async def test_platform_month_pattern(make_server):
    """A month that is not YYYY-MM is INVALID_ARGUMENT naming month."""
    result = await call(make_server(ADMIN), "platform_overview", {"month": "2026-1"})
    assert result.structured_content["error"]["details"]["argument"] == "month"


async def test_admin_must_name_merchant(make_server):
    """An administrator calling a merchant tool without merchant_id is told to name one."""
    result = await call(make_server(ADMIN), "get_sales", {})
    assert error_code(result) == "INVALID_ARGUMENT"
    assert result.structured_content["error"]["details"]["argument"] == "merchant_id"


async def test_unknown_merchant_not_found(make_server):
    """An administrator naming a merchant that does not exist gets NOT_FOUND."""
    arguments = {"merchant_id": str(dataset.UNKNOWN_MERCHANT)}
    result = await call(make_server(ADMIN), "get_sales", arguments)
    assert error_code(result) == "NOT_FOUND"


async def test_merchant_naming_another_is_forbidden(make_server):
    """A merchant naming another merchant's id is FORBIDDEN, and sees nothing of it."""
    result = await call(make_server(MERCHANT_A), "top_products", {"merchant_id": B})
    assert error_code(result) == "FORBIDDEN"
    assert "items" not in result.structured_content


@pytest.mark.parametrize(
    "tool", ["platform_overview", "platform_merchants", "platform_mrr", "platform_revenue"]
)
async def test_merchant_calling_platform_tool_is_forbidden(make_server, tool):
    """Platform tools refuse merchants."""
    result = await call(make_server(MERCHANT_A), tool, {})
    assert error_code(result) == "FORBIDDEN"


async def test_no_principal_is_unauthenticated(make_server):
    """Without a principal every tool call is UNAUTHENTICATED, saying how to get one."""
    result = await call(make_server(None), "whoami", {})
    assert error_code(result) == "UNAUTHENTICATED"
    assert "log in" in result.structured_content["error"]["message"]


async def test_store_outage_is_unavailable(make_store):
    """A store whose database vanished answers UNAVAILABLE; the next call is served again."""
    store = make_store("gone")
    server = build_server(
        Settings(), store, principal_resolver=fixed_principal(Principal.parse(ADMIN))
    )
    store.command(f"DROP DATABASE `{store.database}`")
    async with Client(server) as client:
        failed = await client.call_tool("platform_overview", {})
        served = await client.call_tool("whoami", {})
    assert error_code(failed) == "UNAVAILABLE"
    assert not served.is_error


async def test_unexpected_exception_is_internal(make_server, monkeypatch):
    """A crash (a fake: get_sales patched to raise) is INTERNAL without its text or trace."""

    def crash(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(merchant, "get_sales", crash)
    result = await call(make_server(MERCHANT_A), "get_sales", {})
    assert error_code(result) == "INTERNAL"
    assert "secret" not in result.model_dump_json()


async def test_server_keeps_serving_after_errors(make_server):
    """One session: an error, then a correct answer."""
    async with Client(make_server(MERCHANT_A)) as client:
        bad = await client.call_tool("get_sales", {"bucket": "year"})
        good = await client.call_tool("get_sales", {"days": 7})
    assert bad.is_error
    assert good.structured_content["revenue"] == dataset.A_WEEK["revenue"]


async def test_error_text_names_code_and_argument(make_server):
    """The text of a tool error says the code, the message and the argument."""
    result = await call(make_server(MERCHANT_A), "get_sales", {"bucket": "year"})
    assert result.content[0].text.startswith("INVALID_ARGUMENT: bucket")
