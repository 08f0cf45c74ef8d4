"""Refresh-ahead: popular answers are recomputed after a change, before their next ask."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from tests.cache.conftest import Computation, MakeCache

pytestmark = pytest.mark.asyncio(loop_scope="session")

ARGS = {"merchant_id": "m1", "days": 7}
SCOPES = ("orders:m1", "merchants:m1")


async def ask(cache: Any, compute: Computation, args: dict[str, Any] = ARGS) -> tuple[Any, str]:
    return await cache.get_or_compute("get_sales", args, "admin", SCOPES, compute)


async def settled(cache: Any) -> None:
    """Until no refresh is queued or running."""
    async with asyncio.timeout(5):
        while cache.stats()["refresh_queued"] or cache.stats()["refreshing"]:
            await asyncio.sleep(0.005)


async def test_popular_answer_is_recomputed_after_a_change(
    make_cache: MakeCache, computation: Computation
) -> None:
    """Asked twice, then changed: the next ask is an L1 hit holding the recomputed answer."""
    cache = await make_cache(invalidation_interval_ms=0)
    bus = ChangeBus()
    cache.attach(bus)
    assert (await ask(cache, computation))[0]["call"] == 1
    assert (await ask(cache, computation))[1] == "L1"

    bus.publish(ChangeNotice(touched={("orders", "m1"): None}))  # type: ignore[dict-item]
    await settled(cache)

    answer, layer = await ask(cache, computation)
    assert (answer["call"], layer) == (2, "L1")  # computed after the change, not by this ask
    assert computation.calls == 2
    stats = cache.stats()
    assert (stats["refreshed"], stats["computed"], stats["hits_L1"]) == (1, 1, 2)


async def test_answer_asked_once_is_not_recomputed(
    make_cache: MakeCache, computation: Computation
) -> None:
    cache = await make_cache(invalidation_interval_ms=0)
    bus = ChangeBus()
    cache.attach(bus)
    await ask(cache, computation)
    bus.publish(ChangeNotice(touched={("orders", "m1"): None}))  # type: ignore[dict-item]
    await settled(cache)
    assert computation.calls == 1
    answer, layer = await ask(cache, computation)
    assert (answer["call"], layer) == (2, "none")


async def test_change_elsewhere_recomputes_nothing(
    make_cache: MakeCache, computation: Computation
) -> None:
    cache = await make_cache(invalidation_interval_ms=0)
    bus = ChangeBus()
    cache.attach(bus)
    await ask(cache, computation)
    await ask(cache, computation)
    bus.publish(ChangeNotice(touched={("orders", "m2"): None}))  # type: ignore[dict-item]
    await settled(cache)
    assert computation.calls == 1
    assert (await ask(cache, computation))[1] == "L1"


async def test_refresh_off_when_min_asks_is_zero(
    make_cache: MakeCache, computation: Computation
) -> None:
    cache = await make_cache(invalidation_interval_ms=0, refresh_min_asks=0)
    bus = ChangeBus()
    cache.attach(bus)
    await ask(cache, computation)
    await ask(cache, computation)
    bus.publish(ChangeNotice(touched={("orders", "m1"): None}))  # type: ignore[dict-item]
    await settled(cache)
    assert computation.calls == 1
    assert (await ask(cache, computation))[1] == "none"


async def test_failed_refresh_is_silent_and_the_next_ask_computes(
    make_cache: MakeCache,
) -> None:
    """A recomputation that fails reaches no caller; the next ask computes and answers."""
    calls = 0

    async def flaky() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("store gone")
        return {"call": calls}

    cache = await make_cache(invalidation_interval_ms=0)
    bus = ChangeBus()
    cache.attach(bus)
    await cache.get_or_compute("get_sales", ARGS, "admin", SCOPES, flaky)
    await cache.get_or_compute("get_sales", ARGS, "admin", SCOPES, flaky)
    bus.publish(ChangeNotice(touched={("orders", "m1"): None}))  # type: ignore[dict-item]
    await settled(cache)
    answer, layer = await cache.get_or_compute("get_sales", ARGS, "admin", SCOPES, flaky)
    assert (answer, layer, calls) == ({"call": 3}, "none", 3)


async def test_ask_during_refresh_joins_it(make_cache: MakeCache) -> None:
    """A request arriving while its answer is being recomputed waits for that computation."""
    first = Computation()
    cache = await make_cache(invalidation_interval_ms=0)
    bus = ChangeBus()
    cache.attach(bus)
    await ask(cache, first)
    await ask(cache, first)
    gated = Computation(gated=True)
    gated.calls = first.calls
    await ask(cache, gated)  # the newest computation is the one a refresh runs
    bus.publish(ChangeNotice(touched={("orders", "m1"): None}))  # type: ignore[dict-item]
    await asyncio.wait_for(gated.started.wait(), 5)
    waiting = asyncio.create_task(ask(cache, gated))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    gated.gate.set()
    answer, _ = await waiting
    assert answer["call"] == 2 and gated.calls == 2
    assert cache.stats()["joined"] == 1


async def test_refresh_waits_while_a_caller_is_computing(
    make_cache: MakeCache, computation: Computation
) -> None:
    """Callers come first: no recomputation starts while a caller's answer is computed."""
    cache = await make_cache(invalidation_interval_ms=0)
    bus = ChangeBus()
    cache.attach(bus)
    await ask(cache, computation)
    await ask(cache, computation)
    busy = Computation(gated=True)
    caller = asyncio.create_task(ask(cache, busy, {"merchant_id": "m2", "days": 7}))
    await asyncio.wait_for(busy.started.wait(), 5)
    bus.publish(ChangeNotice(touched={("orders", "m1"): None}))  # type: ignore[dict-item]
    await asyncio.sleep(0.05)
    assert computation.calls == 1 and cache.stats()["refresh_queued"] == 1
    busy.gate.set()
    await caller
    await settled(cache)
    assert computation.calls == 2
    answer, layer = await ask(cache, computation)
    assert (answer["call"], layer) == (2, "L1")


async def test_bump_from_another_instance_refreshes_here(
    make_cache: MakeCache, redis_url: str, computation: Computation
) -> None:
    """Server B's popular answer is recomputed when the sink's instance A bumps its data."""
    a = await make_cache(redis_url=redis_url, invalidation_interval_ms=0)
    b = await make_cache(redis_url=redis_url, invalidation_interval_ms=0)
    bus = ChangeBus()
    a.attach(bus)  # only A hears the sink; B learns through Redis
    await ask(b, computation)
    await ask(b, computation)
    bus.publish(ChangeNotice(touched={("orders", "m1"): None}))  # type: ignore[dict-item]
    async with asyncio.timeout(5):
        while b.stats()["refreshed"] + b.stats()["hits_L2"] == 0 or b.stats()["refreshing"]:
            await asyncio.sleep(0.005)
    answer, layer = await ask(b, computation)
    assert (answer["call"], layer) == (2, "L1")
    assert computation.calls == 2
