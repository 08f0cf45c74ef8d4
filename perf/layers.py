"""Where a call's time goes, by layer: a cProfile of every thread a tool call runs on.

The MCP client, the server and the event loop share the main thread; store
queries run in worker threads (`anyio.to_thread`), so each query gets a
profile of its own in the thread that runs it, and the main thread's wait for
it (the event loop's poll) is kept apart rather than counted twice. Time in a
built-in function (a C call) goes to the layer of the Python code that called
it, so a `dict.get` inside `jsonschema` counts as validation.
"""

from __future__ import annotations

import contextlib
import cProfile
import pstats
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import anyio.to_thread

# Checked in order; the first layer whose marker is in a function's file wins.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store engine (chDB)", ("/chdb/", "chdb._chdb")),
    ("store client (clickhouse-connect)", ("/clickhouse_connect/",)),
    ("result validation in the MCP client (jsonschema)", ("/jsonschema/", "/referencing/")),
    ("MCP SDK (client and server)", ("/mcp/",)),
    ("pydantic (arguments, result models)", ("/pydantic/", "/pydantic_core/")),
    ("Optima BI (metrics, cache, tools)", ("/optima_bi_mcp/",)),
    ("event loop and threads", ("/asyncio/", "/anyio/", "/threading.py", "/selectors.py")),
)
OTHER = "other Python"
WAITING = "main thread waiting for a store query"
# Built-ins the event loop blocks in while a worker thread runs the store query.
_WAITS = ("select.epoll", "_thread.lock", "poll' of", "'acquire'")

Key = tuple[str, int, str]


def layer_of(key: Key) -> str:
    filename, _, name = key
    where = filename if filename != "~" else name
    for layer, markers in LAYERS:
        if any(marker in where for marker in markers):
            return layer
    return OTHER


def split_by_layer(stats: pstats.Stats, waits_in_main: bool = True) -> dict[str, float]:
    """Seconds of own time per layer; a built-in's time is its callers' layers'."""
    totals: dict[str, float] = defaultdict(float)
    raw: dict[Key, Any] = stats.stats  # type: ignore[attr-defined]
    for key, (_, _, own, _, callers) in raw.items():
        if key[0] != "~" or "chdb" in key[2]:
            totals[layer_of(key)] += own
            continue
        if waits_in_main and any(mark in key[2] for mark in _WAITS):
            totals[WAITING] += own
            continue
        if not callers:
            totals[OTHER] += own
        for caller, (_, _, own_under_caller, _) in callers.items():
            totals[layer_of(caller)] += own_under_caller
    return dict(totals)


class ThreadProfiles:
    """cProfile of the main thread plus one per function run in a worker thread."""

    def __init__(self) -> None:
        self.main = cProfile.Profile()
        self.workers: list[cProfile.Profile] = []

    def wrap(self, call: Any) -> Any:
        """`call` run under a profile of the thread it runs on."""

        def profiled(*args: Any, **kwargs: Any) -> Any:
            profile = cProfile.Profile()
            profile.enable()
            try:
                return call(*args, **kwargs)
            finally:
                profile.disable()
                self.workers.append(profile)

        return profiled

    def layers(self) -> dict[str, float]:
        """Seconds per layer over everything profiled, the main thread's waits apart."""
        totals = split_by_layer(pstats.Stats(self.main))
        for profile in self.workers:
            for layer, seconds in split_by_layer(pstats.Stats(profile), False).items():
                totals[layer] = totals.get(layer, 0.0) + seconds
        return totals


@contextlib.contextmanager
def profiled(profiles: ThreadProfiles) -> Iterator[None]:
    """Profile the main thread and everything handed to `anyio.to_thread.run_sync` meanwhile
    (the server runs each metric, with its store queries, that way)."""
    original = anyio.to_thread.run_sync

    async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        return await original(profiles.wrap(func), *args, **kwargs)

    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]
    profiles.main.enable()
    try:
        yield
    finally:
        profiles.main.disable()
        anyio.to_thread.run_sync = original
