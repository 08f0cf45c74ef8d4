"""The cache plugged into the real MCP server, through the in-memory MCP client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from optima_bi_mcp.cache.base import ToolCache
from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from optima_bi_mcp.data.seed import seed_store
from optima_bi_mcp.data.synth import SeedSpec
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp.server import build_server, fixed_principal, services_of
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store
from tests.cache.conftest import MakeCache

pytestmark = pytest.mark.asyncio(loop_scope="session")

ARGS = {"days": 30, "bucket": "week"}


@pytest.fixture(scope="module")
def seeded(make_store: Callable[[str], Store]) -> tuple[Store, str]:
    """A small synthetic store and the scope of one of its merchants."""
    store = make_store("cache")
    seed_store(store, SeedSpec(seed=7, merchants=3, orders=3000))
    return store, f"merchant:{store.query('SELECT min(id) FROM merchants')[0][0]}"


def serve(seeded: tuple[Store, str], cache: ToolCache | None, bus: ChangeBus) -> MCPServer:
    """A server over the seeded store acting as its merchant."""
    store, principal = seeded
    resolver = fixed_principal(Principal.parse(principal))
    return build_server(Settings(), store, principal_resolver=resolver, cache=cache, bus=bus)


def fresh_bus() -> ChangeBus:
    """A bus that already knows the freshness, so no call reads it from the store."""
    bus = ChangeBus()
    bus.publish(ChangeNotice(freshness=datetime.now(UTC)))
    return bus


async def layers(server: MCPServer, calls: int) -> list[Any]:
    """The `_meta.cache` of `calls` identical get_sales calls made concurrently."""
    async with Client(server) as client:
        results = await asyncio.gather(*(client.call_tool("get_sales", ARGS) for _ in range(calls)))
    assert not any(r.is_error for r in results)
    return [(r.meta or {})["cache"] for r in results]


async def test_layers_reach_meta(make_cache: MakeCache, seeded: tuple[Store, str]) -> None:
    """_meta.cache says none, then L1; after the merchant's change notice, none again."""
    bus = fresh_bus()
    cache = await make_cache()
    cache.attach(bus)
    server = serve(seeded, cache, bus)
    assert await layers(server, 1) + await layers(server, 1) == ["none", "L1"]
    bus.publish(ChangeNotice(merchant_ids=frozenset({UUID(seeded[1].split(":", 1)[1])})))
    assert await layers(server, 1) == ["none"]


async def test_concurrent_calls_query_the_store_once(
    make_cache: MakeCache, seeded: tuple[Store, str]
) -> None:
    """100 concurrent identical calls share one computation: the store queries of one call."""
    store = seeded[0]
    before = store.queries
    await layers(serve(seeded, None, fresh_bus()), 1)
    one_call = store.queries - before

    cached = serve(seeded, await make_cache(), fresh_bus())
    before = store.queries
    assert await layers(cached, 100) == ["none"] * 100
    assert store.queries - before == one_call
    assert services_of(cached).cache.stats()["joined"] == 99


async def test_two_servers_share_l2_and_changes(
    make_cache: MakeCache, seeded: tuple[Store, str], redis_url: str
) -> None:
    """Server two answers from L2 what server one computed, and sees one's change notice."""
    bus_one, bus_two = fresh_bus(), fresh_bus()
    cache_one, cache_two = (
        await make_cache(redis_url=redis_url),
        await make_cache(redis_url=redis_url),
    )
    cache_one.attach(bus_one)
    one, two = serve(seeded, cache_one, bus_one), serve(seeded, cache_two, bus_two)
    assert await layers(one, 1) + await layers(two, 1) == ["none", "L2"]

    scope = seeded[1]
    bus_one.publish(ChangeNotice(merchant_ids=frozenset({UUID(scope.split(":", 1)[1])})))
    orders = scope.replace("merchant:", "orders:")
    await cache_two.wait_until(lambda: cache_two.version(orders)[0] >= 1, timeout=10)
    assert await layers(two, 1) == ["none"]
