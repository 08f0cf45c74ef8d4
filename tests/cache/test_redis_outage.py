"""Redis stopped for real mid-run (infra/redis/down), then started again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio as redis

from optima_bi_mcp.cache.tiered import TieredCache
from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from tests.cache.conftest import Computation, MakeCache, redis_script

pytestmark = pytest.mark.asyncio(loop_scope="session")

# A Redis of these tests' own, so that stopping it disturbs no other test.
PORT = 16392
MERCHANT = uuid.UUID("44444444-4444-4444-4444-444444444444")
SCOPE = f"orders:{MERCHANT}"


@pytest.fixture
def outage_redis() -> Iterator[str]:
    """URL of a private Redis (tests stop and restart it), stopped after the test."""
    url = redis_script("up", PORT)
    yield url
    redis_script("down", PORT)


async def ask(cache: TieredCache, compute: Computation, days: int = 7) -> tuple[int, str]:
    """One get_sales call; `days` varies the arguments, hence the key."""
    args = {"days": days, "bucket": "day", "timezone": "UTC", "merchant_id": None}
    result, layer = await cache.get_or_compute("get_sales", args, SCOPE, (SCOPE,), compute)
    return result["call"], layer


async def test_outage_serves_l1_without_error(
    make_cache: MakeCache, outage_redis: str, computation: Computation
) -> None:
    """With Redis stopped, cached answers come from L1 and new ones from the store."""
    cache = await make_cache(redis_url=outage_redis)
    await ask(cache, computation)
    redis_script("down", PORT)
    assert await ask(cache, computation) == (1, "L1")
    assert await ask(cache, computation, days=30) == (2, "none")


async def test_l2_used_again_after_restart(
    make_cache: MakeCache, outage_redis: str, computation: Computation
) -> None:
    """After Redis comes back the cache reconnects by itself and L2 hits again."""
    one, two = await make_cache(redis_url=outage_redis), await make_cache(redis_url=outage_redis)
    redis_script("down", PORT)
    await ask(one, computation)
    redis_script("up", PORT)
    for cache in (one, two):
        await cache.wait_until(lambda c=cache: c.stats()["redis"] == "up", timeout=20)
    assert await ask(one, computation) == (2, "none")
    assert await ask(two, computation) == (2, "L2")


async def test_restart_retires_answers_cached_before(
    make_cache: MakeCache, outage_redis: str, computation: Computation
) -> None:
    """A restarted Redis (new run id, counters reset) never revives an earlier answer."""
    cache = await make_cache(redis_url=outage_redis)
    await ask(cache, computation)
    redis_script("down", PORT)
    await cache.wait_until(lambda: cache.stats()["redis"] == "down", timeout=20)
    redis_script("up", PORT)
    await cache.wait_until(lambda: cache.stats()["redis"] == "up", timeout=20)
    assert await ask(cache, computation) == (2, "none")


async def test_bump_missed_while_cut_off_is_seen_after(
    make_cache: MakeCache, outage_redis: str, computation: Computation
) -> None:
    """An instance whose connections were killed reads versions again when back."""
    one, bus = await make_cache(redis_url=outage_redis), ChangeBus()
    two = await make_cache(redis_url=outage_redis, backoff_min_s=1.0)
    one.attach(bus)
    await ask(two, computation)
    await kill_connections(outage_redis, two._link.client_name)
    await two.wait_until(lambda: two.stats()["redis"] == "down", timeout=20)
    bus.publish(ChangeNotice(merchant_ids=frozenset({MERCHANT})))
    await one.wait_until(lambda: one.stats()["owed_bumps"] == 0, timeout=20)
    await two.wait_until(lambda: two.stats()["redis"] == "up", timeout=20)
    assert await ask(two, computation) == (2, "none")


async def kill_connections(url: str, name: str) -> None:
    """CLIENT KILL every connection of one cache instance, as a network cut would."""
    client = redis.Redis.from_url(url)
    try:
        for info in await client.client_list():
            if info.get("name") == name:
                await client.client_kill_filter(_id=info["id"])
    finally:
        await client.aclose()


async def test_change_during_outage_is_applied_and_recorded_later(
    make_cache: MakeCache, outage_redis: str, computation: Computation
) -> None:
    """A change while Redis is down refreshes local answers, and reaches Redis once back."""
    cache, bus = await make_cache(redis_url=outage_redis), ChangeBus()
    cache.attach(bus)
    await ask(cache, computation)
    redis_script("down", PORT)
    bus.publish(ChangeNotice(merchant_ids=frozenset({MERCHANT})))
    assert await ask(cache, computation) == (2, "none")
    redis_script("up", PORT)
    await cache.wait_until(lambda: cache.stats()["owed_bumps"] == 0, timeout=20)
    client = redis.Redis.from_url(outage_redis)
    try:
        assert await client.get(f"{cache._link.namespace}:v:{SCOPE}") == b"1"
    finally:
        await client.aclose()
