"""Fixtures of the cache tests: the real Redis of `infra/redis/up`, caches, computations."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from optima_bi_mcp.cache.tiered import TieredCache

ROOT = Path(__file__).resolve().parents[2]
REDIS = ROOT / "infra" / "redis"

MakeCache = Callable[..., Awaitable[TieredCache]]


def redis_script(name: str, port: int | None = None) -> str:
    """Run infra/redis/NAME (on PORT if given); returns its last output line."""
    env = None if port is None else {"OPTIMA_BI_REDIS_PORT": str(port), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(REDIS / name)], check=True, capture_output=True, text=True, env=env)
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the shared test Redis (started if needed)."""
    return redis_script("up")


@pytest_asyncio.fixture(loop_scope="session")
async def make_cache() -> AsyncIterator[MakeCache]:
    """Build started caches (keyword arguments as TieredCache's); closed after the test."""
    built: list[TieredCache] = []
    namespace = f"test-{uuid.uuid4().hex[:8]}"

    async def make(**options: Any) -> TieredCache:
        options.setdefault("namespace", namespace)
        cache = TieredCache(**options)
        await cache.start()
        built.append(cache)
        return cache

    yield make
    for cache in built:
        await cache.aclose()


class Computation:
    """A compute function that counts its calls and answers with the count.

    A stale answer therefore carries an older count than a fresh one. With a
    gate, every call waits for `gate` after signalling `started`.
    """

    def __init__(self, gated: bool = False) -> None:
        self.calls = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        call = self.calls
        self.started.set()
        await self.gate.wait()
        return {"call": call, "revenue": 12.5, "series": [{"bucket_start": "2026-01-01"}]}


@pytest.fixture
def computation() -> Computation:
    """A fresh counting computation."""
    return Computation()
