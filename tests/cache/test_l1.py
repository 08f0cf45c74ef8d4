"""The in-process cache alone (no Redis): hits, invalidation, single-flight, counters."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import CollectorRegistry

from optima_bi_mcp.cache.tiered import TieredCache, create_cache
from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from optima_bi_mcp.settings import Settings
from tests.cache.conftest import Computation, MakeCache

pytestmark = pytest.mark.asyncio(loop_scope="session")

MERCHANT = uuid.UUID("11111111-1111-1111-1111-111111111111")
SCOPE = f"orders:{MERCHANT}"
ARGS = {"days": 7, "bucket": "day", "timezone": "UTC", "merchant_id": None}


async def ask(cache: TieredCache, compute: Computation, scope: str = SCOPE) -> tuple[int, str]:
    """One get_sales call for the merchant; returns the answer's call number and layer."""
    result, layer = await cache.get_or_compute("get_sales", ARGS, scope, (scope,), compute)
    return result["call"], layer


async def test_second_call_hits_l1(make_cache: MakeCache, computation: Computation) -> None:
    """The first call computes, the second is an L1 hit with the same answer."""
    cache = await make_cache()
    assert await ask(cache, computation) == (1, "none")
    assert await ask(cache, computation) == (1, "L1")


async def test_change_notice_makes_next_answer_fresh(
    make_cache: MakeCache, computation: Computation
) -> None:
    """After the merchant's change notice, the next answer is computed again."""
    cache, bus = await make_cache(), ChangeBus()
    cache.attach(bus)
    await ask(cache, computation)
    bus.publish(ChangeNotice(merchant_ids=frozenset({MERCHANT})))
    assert await ask(cache, computation) == (2, "none")


async def test_other_merchants_change_keeps_answer(
    make_cache: MakeCache, computation: Computation
) -> None:
    """A change of another merchant leaves this merchant's answer cached."""
    cache, bus = await make_cache(), ChangeBus()
    cache.attach(bus)
    await ask(cache, computation)
    bus.publish(ChangeNotice(merchant_ids=frozenset({uuid.uuid4()})))
    assert await ask(cache, computation) == (1, "L1")


async def test_platform_notice_refreshes_platform_answers(
    make_cache: MakeCache, computation: Computation
) -> None:
    """A notice with platform=True refreshes answers that read the platform scope."""
    cache, bus = await make_cache(), ChangeBus()
    cache.attach(bus)
    await ask(cache, computation, "orders:*")
    bus.publish(ChangeNotice(merchant_ids=frozenset({MERCHANT}), platform=True))
    assert await ask(cache, computation, "orders:*") == (2, "none")


async def test_notice_from_another_thread_applies_before_next_answer(
    make_cache: MakeCache, computation: Computation
) -> None:
    """A notice published from the sink's thread is reflected by the very next answer."""
    cache, bus = await make_cache(), ChangeBus()
    cache.attach(bus)
    await ask(cache, computation)
    await asyncio.to_thread(bus.publish, ChangeNotice(merchant_ids=frozenset({MERCHANT})))
    assert await ask(cache, computation) == (2, "none")


async def test_concurrent_identical_calls_compute_once(make_cache: MakeCache) -> None:
    """100 concurrent identical calls run one computation and all get its answer."""
    cache, compute = await make_cache(), Computation(gated=True)
    calls = [asyncio.create_task(ask(cache, compute)) for _ in range(100)]
    await cache.wait_until(lambda: cache.metrics.counts["joined"] == 99, timeout=10)
    compute.gate.set()
    answers = await asyncio.gather(*calls)
    assert compute.calls == 1
    assert {call for call, _ in answers} == {1}


async def test_failed_computation_is_not_cached(make_cache: MakeCache) -> None:
    """An error reaches the caller and the next call computes again."""
    cache, attempts = await make_cache(), []

    async def flaky() -> dict[str, object]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("store unreachable")
        return {"call": len(attempts)}

    with pytest.raises(RuntimeError):
        await cache.get_or_compute("get_sales", ARGS, SCOPE, (SCOPE,), flaky)
    assert (await cache.get_or_compute("get_sales", ARGS, SCOPE, (SCOPE,), flaky))[0] == {"call": 2}


async def test_non_json_result_is_answered_but_not_cached(make_cache: MakeCache) -> None:
    """A result JSON cannot hold is still answered, and computed again next time."""
    cache, calls = await make_cache(), []

    async def odd() -> dict[str, object]:
        calls.append(1)
        return {"value": {1, 2}}

    assert (await cache.get_or_compute("t", {}, "admin", ("platform",), odd))[0] == {
        "value": {1, 2}
    }
    await cache.get_or_compute("t", {}, "admin", ("platform",), odd)
    assert len(calls) == 2


async def test_hits_and_misses_are_counted_in_prometheus(
    make_cache: MakeCache, computation: Computation
) -> None:
    """The registry given counts L1 hits and misses; stats() has the hit ratio."""
    registry = CollectorRegistry()
    cache = await make_cache(registry=registry)
    for _ in range(4):
        await ask(cache, computation)
    assert registry.get_sample_value("optima_bi_cache_hits_total", {"layer": "L1"}) == 3
    assert registry.get_sample_value("optima_bi_cache_misses_total", {"layer": "L1"}) == 1
    assert cache.stats()["hit_ratio"] == 0.75


async def test_create_cache_without_redis_is_l1_only() -> None:
    """Without OPTIMA_BI_REDIS_URL the cache runs on L1 alone and follows the bus."""
    bus = ChangeBus()
    cache = await create_cache(Settings(redis_url=None), bus)
    try:
        assert cache.stats()["layers"] == ["L1"]
        bus.publish(ChangeNotice(merchant_ids=frozenset({MERCHANT})))
        assert cache.version(SCOPE) == (0, 1)
    finally:
        await cache.aclose()
