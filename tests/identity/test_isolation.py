"""Tenant isolation in depth: a merchant never sees another merchant's rows or platform figures.

Every tool is called through the real server and an MCP client with
arbitrary arguments, including the other merchant's id and SQL-like strings,
as merchant A. Merchant B's rows are recognizable (its id, e-mails, name and
its currency, EUR, which merchant A never uses).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer

from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.mcp.tools import TOOLS
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store
from tests.mcp import mcp_dataset as dataset

MERCHANT_B_MARKERS = (str(dataset.MERCHANT_B), "z@y.test", "b@beta.test", "Beta Laden", "EUR")
PLATFORM_TOOLS = sorted(spec.name for spec in TOOLS if spec.kind == "platform")
ALL_TOOLS = sorted(spec.name for spec in TOOLS)
FIELDS = sorted({name for spec in TOOLS for name in spec.arguments.model_fields})

TRICKY = st.sampled_from(
    [
        str(dataset.MERCHANT_B),
        str(dataset.UNKNOWN_MERCHANT),
        str(dataset.MERCHANT_A),
        f"{dataset.MERCHANT_B}' OR '1'='1",
        "' OR 1=1 --",
        "1; DROP TABLE orders",
        "merchant_id",
        "*",
        "%",
        "NULL",
        "",
    ]
)
VALUES = st.one_of(
    TRICKY,
    st.text(max_size=20),
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.none(),
    st.dates().map(str),
    st.lists(TRICKY, max_size=3),
)
KEYS = st.sampled_from([*FIELDS, "sql", "where", "tenant"])
# Mostly-valid arguments too, so that many calls get past validation to the query layer.
LIKELY_VALID = st.fixed_dictionaries(
    {},
    optional={
        "merchant_id": TRICKY,
        "days": st.integers(1, 400),
        "limit": st.integers(1, 500),
        "cursor": TRICKY,
    },
)
ARGUMENTS = st.one_of(st.dictionaries(KEYS, VALUES, max_size=5), LIKELY_VALID)


@pytest.fixture(scope="module")
def merchant_server(make_store: Callable[[str], Store]) -> MCPServer:
    """The real server over the hand-made dataset, acting as merchant A."""
    store = make_store("isolation")
    dataset.load(store)
    principal = Principal(role="merchant", merchant_id=dataset.MERCHANT_A, subject="alice")
    return build_server(Settings(), store, principal_resolver=fixed_principal(principal))


def call(server: MCPServer, tool: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    async def run() -> tuple[bool, Any]:
        async with Client(server) as client:
            result = await client.call_tool(tool, arguments)
        return bool(result.is_error), result.structured_content

    return anyio.run(run)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tool=st.sampled_from(ALL_TOOLS), arguments=ARGUMENTS)
def test_merchant_never_sees_another_merchant(merchant_server, tool, arguments):
    """Whatever the arguments, an answer holds no row of merchant B and errors hold no data."""
    is_error, content = call(merchant_server, tool, arguments)
    event(content["error"]["code"] if is_error else "answered")
    if is_error:
        assert set(content) == {"error"}
    else:
        text = json.dumps(content)
        assert not [marker for marker in MERCHANT_B_MARKERS if marker in text]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tool=st.sampled_from(PLATFORM_TOOLS), arguments=ARGUMENTS)
def test_merchant_never_gets_a_platform_figure(merchant_server, tool, arguments):
    """Platform tools answer a merchant with an error, whatever the arguments."""
    is_error, content = call(merchant_server, tool, arguments)
    assert is_error
    assert content["error"]["code"] in ("FORBIDDEN", "INVALID_ARGUMENT")


@pytest.mark.parametrize("tool", sorted(set(ALL_TOOLS) - set(PLATFORM_TOOLS) - {"whoami"}))
def test_merchant_naming_another_merchant_is_forbidden(merchant_server, tool):
    """A merchant tool given merchant B's id answers merchant A FORBIDDEN."""
    is_error, content = call(merchant_server, tool, {"merchant_id": str(dataset.MERCHANT_B)})
    assert is_error and content["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("tool", PLATFORM_TOOLS)
def test_merchant_calling_platform_tool_is_forbidden(merchant_server, tool):
    """With valid arguments, a platform tool answers a merchant FORBIDDEN."""
    is_error, content = call(merchant_server, tool, {})
    assert is_error and content["error"]["code"] == "FORBIDDEN"
