"""Two cache instances ("servers") on one real Redis: shared L2, invalidation, locks."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as redis

from optima_bi_mcp.cache.tiered import TieredCache
from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from tests.cache.conftest import Computation, MakeCache

pytestmark = pytest.mark.asyncio(loop_scope="session")

MERCHANT = uuid.UUID("33333333-3333-3333-3333-333333333333")
SCOPE = f"orders:{MERCHANT}"
ARGS = {"days": 30, "sort_by": "revenue", "limit": 20, "cursor": None, "merchant_id": None}


async def ask(cache: TieredCache, compute: Computation) -> tuple[int, str]:
    """One top_products call for the merchant; returns the answer's call number and layer."""
    result, layer = await cache.get_or_compute("top_products", ARGS, SCOPE, (SCOPE,), compute)
    return result["call"], layer


async def test_second_instance_hits_l2(
    make_cache: MakeCache, redis_url: str, computation: Computation
) -> None:
    """An answer computed by one instance is an L2 hit on the other."""
    one, two = await make_cache(redis_url=redis_url), await make_cache(redis_url=redis_url)
    await ask(one, computation)
    assert await ask(two, computation) == (1, "L2")
    assert await ask(two, computation) == (1, "L1")


async def test_l2_holds_json(
    make_cache: MakeCache, redis_url: str, computation: Computation
) -> None:
    """The value stored in Redis is the result as JSON text."""
    cache = await make_cache(redis_url=redis_url)
    await ask(cache, computation)
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{cache._link.namespace}:r:*")]
        assert json.loads(await client.get(keys[0]))["call"] == 1
    finally:
        await client.aclose()


async def test_change_on_one_instance_refreshes_both(
    make_cache: MakeCache, redis_url: str, computation: Computation
) -> None:
    """A notice on one instance's bus: fresh answers there at once, on the other via pub/sub."""
    one, two, bus = (
        await make_cache(redis_url=redis_url),
        await make_cache(redis_url=redis_url),
        ChangeBus(),
    )
    one.attach(bus)
    await ask(one, computation)
    await ask(two, computation)
    bus.publish(ChangeNotice(merchant_ids=frozenset({MERCHANT})))
    assert await ask(one, computation) == (2, "none")
    await two.wait_until(lambda: two.version(SCOPE)[0] >= 1, timeout=10)
    assert (await ask(two, computation))[0] == 2


async def test_version_counter_lives_in_redis(make_cache: MakeCache, redis_url: str) -> None:
    """A bump is an INCR of the scope's counter in Redis, a key without a TTL."""
    cache, bus = await make_cache(redis_url=redis_url), ChangeBus()
    cache.attach(bus)
    bus.publish(ChangeNotice(platform=True))
    await cache.wait_until(lambda: cache.stats()["owed_bumps"] == 0, timeout=10)
    client = redis.Redis.from_url(redis_url)
    try:
        key = f"{cache._link.namespace}:v:orders:*"
        assert await client.get(key) == b"1"
        assert await client.ttl(key) == -1  # never expires, so never evicted (volatile-lru)
    finally:
        await client.aclose()


async def test_concurrent_calls_across_instances_compute_once(
    make_cache: MakeCache, redis_url: str
) -> None:
    """50 calls on each of two instances: one computation, the other instance reads L2."""
    one, two = await make_cache(redis_url=redis_url), await make_cache(redis_url=redis_url)
    compute = Computation(gated=True)
    first = [asyncio.create_task(ask(one, compute)) for _ in range(50)]
    await asyncio.wait_for(compute.started.wait(), timeout=10)
    second = [asyncio.create_task(ask(two, compute)) for _ in range(50)]
    await two.wait_until(lambda: two.metrics.counts["lock_waits"] == 1, timeout=10)
    compute.gate.set()
    answers = await asyncio.gather(*first, *second)
    assert compute.calls == 1
    assert {layer for _, layer in answers[50:]} == {"L2"}


async def test_slow_lock_holder_does_not_block_others(
    make_cache: MakeCache, redis_url: str
) -> None:
    """When the instance holding the lock is slow, the waiter computes by itself."""
    one = await make_cache(redis_url=redis_url)
    two = await make_cache(redis_url=redis_url, lock_wait_s=0.05)
    stuck, compute = Computation(gated=True), Computation()
    held = asyncio.create_task(ask(one, stuck))
    await asyncio.wait_for(stuck.started.wait(), timeout=10)
    assert await ask(two, compute) == (1, "none")
    stuck.gate.set()
    await held
