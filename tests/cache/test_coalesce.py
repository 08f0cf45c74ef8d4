"""Coalesced shared versions, and answers that never wait for them.

Every change retires the answers it alters at once, on every instance; what the
interval coalesces is the shared version in Redis: a leading-edge bump, then one
trailing bump per interval.
"""

from __future__ import annotations

import uuid

import pytest

from optima_bi_mcp.cache.tiered import TieredCache
from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from tests.cache.conftest import Computation, MakeCache

pytestmark = pytest.mark.asyncio(loop_scope="session")

MERCHANT = uuid.UUID("22222222-2222-2222-2222-222222222222")
SCOPE = f"orders:{MERCHANT}"
CHANGE = ChangeNotice(merchant_ids=frozenset({MERCHANT}))


async def answer(cache: TieredCache, computation: Computation) -> tuple[int, str]:
    """The computation count the cached answer carries, and its layer."""
    result, layer = await cache.get_or_compute(
        "get_sales", {"d": 7}, "admin", (SCOPE,), computation
    )
    return result["call"], layer


async def test_first_change_of_quiet_scope_bumps_at_once(make_cache: MakeCache) -> None:
    """The leading edge: a quiet scope is bumped before publish() returns."""
    cache, bus = await make_cache(invalidation_interval_ms=60_000), ChangeBus()
    cache.attach(bus)
    bus.publish(CHANGE)
    assert cache.version(SCOPE) == (0, 1)


async def test_every_change_within_the_interval_retires_answers_at_once(
    make_cache: MakeCache, computation: Computation
) -> None:
    """A change folded into a trailing bump still makes the next answer fresh, at once."""
    cache, bus = await make_cache(invalidation_interval_ms=60_000), ChangeBus()
    cache.attach(bus)
    fresh = []
    for _ in range(3):
        bus.publish(CHANGE)
        fresh.append((await answer(cache, computation))[0])
    assert fresh == [1, 2, 3]


async def test_burst_within_interval_is_recorded_by_one_trailing_bump(
    make_cache: MakeCache, redis_url: str
) -> None:
    """Five changes in one interval: two shared versions in Redis, leading and trailing."""
    cache, bus = await make_cache(redis_url=redis_url, invalidation_interval_ms=200), ChangeBus()
    cache.attach(bus)
    for _ in range(5):
        bus.publish(CHANGE)
    await cache.wait_until(lambda: cache.version(SCOPE)[0] == 2, timeout=10)
    assert (cache.version(SCOPE), cache.stats()["pending_bumps"]) == ((2, 5), 0)


async def test_unrecorded_change_skips_l2(
    make_cache: MakeCache, redis_url: str, computation: Computation
) -> None:
    """Until the trailing bump, L2's answer under the current shared version may be stale."""
    cache, bus = await make_cache(redis_url=redis_url, invalidation_interval_ms=60_000), ChangeBus()
    cache.attach(bus)
    bus.publish(CHANGE)
    await cache.wait_until(lambda: cache.version(SCOPE)[0] == 1, timeout=10)
    await answer(cache, computation)  # in L1 and L2 under shared version 1
    bus.publish(CHANGE)  # pending: shared version 1 until the interval ends
    cache._l1.clear()
    assert await answer(cache, computation) == (2, "none")


async def test_other_instance_sees_a_folded_change_before_the_trailing_bump(
    make_cache: MakeCache, redis_url: str, computation: Computation
) -> None:
    """Instance two recomputes after instance one's folded change, and does not read L2."""
    one = await make_cache(redis_url=redis_url, invalidation_interval_ms=60_000)
    two = await make_cache(redis_url=redis_url, invalidation_interval_ms=60_000)
    bus = ChangeBus()
    one.attach(bus)
    bus.publish(CHANGE)
    await two.wait_until(lambda: two.version(SCOPE)[0] == 1, timeout=10)
    assert await answer(one, computation) == (1, "none")
    assert await answer(two, computation) == (1, "L2")
    bus.publish(CHANGE)
    await two.wait_until(lambda: two.version(SCOPE)[1] == 2, timeout=10)
    assert (await answer(two, computation), two.version(SCOPE)[0]) == ((2, "none"), 1)


async def test_held_change_is_recorded_by_the_other_instance_if_its_owner_is_gone(
    make_cache: MakeCache, redis_url: str
) -> None:
    """An owner that dies before its trailing bump: instance two records the bump itself."""
    one = await make_cache(redis_url=redis_url, invalidation_interval_ms=60_000)
    two = await make_cache(redis_url=redis_url, invalidation_interval_ms=0)
    bus = ChangeBus()
    one.attach(bus)
    bus.publish(CHANGE)
    await two.wait_until(lambda: two.version(SCOPE)[0] == 1, timeout=10)
    bus.publish(CHANGE)  # folded, announced; its trailing bump never comes
    await two.wait_until(lambda: two.stats()["held_scopes"] > 0, timeout=10)
    one._coalescer._pending.clear()  # as if instance one died here
    await two.wait_until(lambda: two.version(SCOPE)[0] == 2, timeout=10)
    assert two.stats()["held_scopes"] == 0


async def test_zero_interval_bumps_every_change(make_cache: MakeCache) -> None:
    """With an interval of 0 every notice bumps at once."""
    cache, bus = await make_cache(invalidation_interval_ms=0), ChangeBus()
    cache.attach(bus)
    for _ in range(3):
        bus.publish(CHANGE)
    assert cache.version(SCOPE) == (0, 3)


async def test_trailing_bump_keeps_answers_computed_since_the_change(
    make_cache: MakeCache, redis_url: str, computation: Computation
) -> None:
    """The bump that records a change already applied here retires nothing on either side."""
    one = await make_cache(redis_url=redis_url, invalidation_interval_ms=1000)
    two = await make_cache(redis_url=redis_url, invalidation_interval_ms=1000)
    bus = ChangeBus()
    one.attach(bus)
    bus.publish(CHANGE)
    bus.publish(CHANGE)  # folded: recorded by the trailing bump, a second on
    await two.wait_until(lambda: two.version(SCOPE)[1] == 2, timeout=10)
    other = Computation()
    assert (await answer(one, computation), await answer(two, other)) == ((1, "none"),) * 2
    await two.wait_until(lambda: two.version(SCOPE)[0] == 2, timeout=10)
    assert (await answer(one, computation), await answer(two, other)) == ((1, "L1"),) * 2


async def test_close_records_pending_trailing_bump(make_cache: MakeCache, redis_url: str) -> None:
    """Closing the cache never drops a change waiting for its trailing edge."""
    cache, bus = await make_cache(redis_url=redis_url, invalidation_interval_ms=60_000), ChangeBus()
    cache.attach(bus)
    bus.publish(CHANGE)
    await cache.wait_until(lambda: cache.version(SCOPE)[0] == 1, timeout=10)
    bus.publish(CHANGE)
    await cache.aclose()
    other = await make_cache(redis_url=redis_url)
    await other.get_or_compute("t", {}, "admin", (SCOPE,), Computation())
    assert other.version(SCOPE)[0] == 2
