"""Two tools through the MCP client against the independent PostgreSQL oracle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from mcp_support import ADMIN, call

from optima_bi_mcp.data.backfill import backfill
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store
from tests.metrics.dataset import DatasetInfo, build_dataset
from tests.oracle import merchant as merchant_oracle
from tests.oracle import platform as platform_oracle


@pytest.fixture(scope="module")
def oracle_world(
    make_source: Callable[[str], str], make_store: Callable[[str], Store]
) -> tuple[str, Any, DatasetInfo]:
    """The metrics' adversarial dataset (scaled down) in PostgreSQL, backfilled into a store."""
    dsn = make_source("mcp")
    info = build_dataset(dsn, seed=7, scale=0.2)
    store = make_store("mcporacle")
    backfill(store, dsn)
    server = build_server(
        Settings(), store, principal_resolver=fixed_principal(Principal.parse(ADMIN))
    )
    return dsn, server, info


@pytest.mark.parametrize("timezone", ["UTC", "America/New_York"])
async def test_get_sales_equals_oracle(oracle_world, timezone):
    """get_sales of the large merchant over 60 days equals the oracle, series included."""
    dsn, server, info = oracle_world
    end = info.now.date()
    arguments = {
        "merchant_id": str(info.merchants["large"]),
        "start": str(end - timedelta(days=59)),
        "end": str(end),
        "bucket": "week",
        "timezone": timezone,
    }
    result = await call(server, "get_sales", arguments)
    with psycopg.connect(dsn) as conn:
        expected = merchant_oracle.sales(
            conn,
            info.merchants["large"],
            start=end - timedelta(days=59),
            end=end,
            bucket="week",
            timezone=timezone,
            now=info.now,
        )
    got = result.structured_content
    assert {k: got[k] for k in expected if k != "period"} == {
        k: v for k, v in expected.items() if k != "period"
    }


async def test_platform_overview_equals_oracle(oracle_world):
    """platform_overview of the dataset's month equals the oracle."""
    dsn, server, info = oracle_world
    month = info.now.strftime("%Y-%m")
    result = await call(server, "platform_overview", {"month": month})
    with psycopg.connect(dsn) as conn:
        expected = platform_oracle.platform_overview(conn, month, info.now)
    assert {k: result.structured_content[k] for k in expected} == expected
