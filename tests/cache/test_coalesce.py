"""Coalesced invalidation: leading edge at once, one trailing bump per interval."""

from __future__ import annotations

import uuid

import pytest

from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from tests.cache.conftest import MakeCache

pytestmark = pytest.mark.asyncio(loop_scope="session")

MERCHANT = uuid.UUID("22222222-2222-2222-2222-222222222222")
SCOPE = f"orders:{MERCHANT}"
CHANGE = ChangeNotice(merchant_ids=frozenset({MERCHANT}))


async def test_first_change_of_quiet_scope_bumps_at_once(make_cache: MakeCache) -> None:
    """The leading edge: a quiet scope is bumped before publish() returns."""
    cache, bus = await make_cache(invalidation_interval_ms=60_000), ChangeBus()
    cache.attach(bus)
    bus.publish(CHANGE)
    assert cache.version(SCOPE) == (0, 1)


async def test_burst_within_interval_folds_into_one_trailing_bump(make_cache: MakeCache) -> None:
    """Further changes in the interval wait for its end, then bump once."""
    cache, bus = await make_cache(invalidation_interval_ms=50), ChangeBus()
    cache.attach(bus)
    for _ in range(5):
        bus.publish(CHANGE)
    assert cache.version(SCOPE) == (0, 1)
    await cache.wait_until(lambda: cache.version(SCOPE)[1] == 2, timeout=10)
    assert cache.stats()["pending_bumps"] == 0


async def test_zero_interval_bumps_every_change(make_cache: MakeCache) -> None:
    """With an interval of 0 every notice bumps at once."""
    cache, bus = await make_cache(invalidation_interval_ms=0), ChangeBus()
    cache.attach(bus)
    for _ in range(3):
        bus.publish(CHANGE)
    assert cache.version(SCOPE) == (0, 3)


async def test_close_applies_pending_trailing_bump(make_cache: MakeCache) -> None:
    """Closing the cache never drops a change waiting for its trailing edge."""
    cache, bus = await make_cache(invalidation_interval_ms=60_000), ChangeBus()
    cache.attach(bus)
    bus.publish(CHANGE)
    bus.publish(CHANGE)
    await cache.aclose()
    assert cache.version(SCOPE) == (0, 2)
