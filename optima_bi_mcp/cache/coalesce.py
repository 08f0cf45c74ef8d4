"""When a changed data scope gets a new version: leading edge, then trailing edge.

A scope that has been quiet for an interval is bumped at once, so the first
change of a burst is never delayed. Changes that arrive within the interval
after a bump are folded into one more bump at the end of the interval, which
opens a new interval; a scope under a steady stream of changes is therefore
bumped once per interval, and no change waits longer than one interval.
An interval of zero bumps on every change.

A bump here is a new *shared* data version (recorded in Redis); the cache
retires the answers a change alters at once, whatever the coalescer does
(cache.tiered, "Freshness").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

Bump = Callable[[list[str]], None]


class Coalescer:
    """Calls `bump(scopes)` at the leading and trailing edge of each scope's interval."""

    def __init__(self, interval_s: float, bump: Bump, *, trailing: Bump | None = None) -> None:
        """`bump` is called at leading edges, `trailing` (default: `bump`) at trailing ones."""
        self._interval_s = interval_s
        self._bump = bump
        self._trailing = trailing or bump
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._pending: set[str] = set()

    @property
    def pending(self) -> frozenset[str]:
        """Scopes with a change waiting for the trailing edge of their interval."""
        return frozenset(self._pending)

    def is_pending(self, scope: str) -> bool:
        """Whether a change of `scope` waits for the trailing edge of its interval."""
        return scope in self._pending

    def changed(self, scopes: Iterable[str]) -> list[str]:
        """Record a change of each scope; bumps the quiet ones now (must run on the loop).

        Returns the scopes whose change was folded into a trailing bump instead.
        """
        now: list[str] = []
        folded: list[str] = []
        for scope in scopes:
            if self._interval_s <= 0:
                now.append(scope)
            elif scope in self._timers:
                self._pending.add(scope)
                folded.append(scope)
            else:
                now.append(scope)
                self._open(scope)
        if now:
            self._bump(now)
        return folded

    def flush(self) -> None:
        """Bump every pending scope now and forget the intervals (on shutdown)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        pending, self._pending = sorted(self._pending), set()
        if pending:
            self._trailing(pending)

    def _open(self, scope: str) -> None:
        loop = asyncio.get_running_loop()
        self._timers[scope] = loop.call_later(self._interval_s, self._close, scope)

    def _close(self, scope: str) -> None:
        del self._timers[scope]
        if scope not in self._pending:
            return
        self._pending.discard(scope)
        self._open(scope)
        self._trailing([scope])
