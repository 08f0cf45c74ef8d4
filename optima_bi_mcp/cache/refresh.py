"""Refresh-ahead: recompute the answers people keep asking for as soon as their data changes.

Invalidation by change keeps answers exact, but on a busy shop it also retires
them every few seconds, so the next "how are sales?" pays for a store query.
The cache therefore remembers how to recompute each recent question (its
*recipe*: tool, normalized arguments, principal scope, data scopes and the
computation) and which data scopes it reads. When a scope's version is bumped,
the questions that read it and were asked at least `min_asks` times in the last
`window_s` seconds are queued; the cache recomputes them one at a time, after
the bump, under the new versions, the most asked first. The next ask finds the
new answer in L1.

This never serves older data: a refreshed answer is computed after the bump
that retired the old one and is keyed, like every answer, with the versions
read before its computation began (a change landing meanwhile makes it
unreachable). A recomputation is only extra store work, so it is bounded:
questions asked once are never refreshed, a question is queued at most once at
a time, refreshes run one after another, and only the `max_recipes` most
recently asked questions are remembered.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from optima_bi_mcp.cache.base import Compute

RecipeId = tuple[str, str, str]


@dataclass(eq=False)
class Recipe:
    """How to recompute one question, and when it was last asked."""

    tool: str
    arguments: Mapping[str, Any]
    scope: str
    data_scopes: tuple[str, ...]
    compute: Compute
    asked: deque[float] = field(default_factory=deque)


class RefreshPlan:
    """The recipes of recent questions, the scopes they read, and the queue of due refreshes.

    Pure bookkeeping, on the event loop's thread: the cache tells it of every
    ask (`asked`) and every bump (`bumped`), and takes due recipes (`next_due`).
    """

    def __init__(self, *, min_asks: int, window_s: float, max_recipes: int) -> None:
        self.min_asks = min_asks
        self.window_s = window_s
        self.max_recipes = max_recipes
        self._recipes: OrderedDict[RecipeId, Recipe] = OrderedDict()
        self._readers: dict[str, set[RecipeId]] = {}
        self._due: dict[RecipeId, None] = {}  # insertion-ordered set

    @property
    def enabled(self) -> bool:
        return self.min_asks > 0 and self.max_recipes > 0

    def __len__(self) -> int:
        return len(self._recipes)

    @property
    def due(self) -> int:
        return len(self._due)

    def asked(self, recipe_id: RecipeId, recipe: Recipe, now: float) -> None:
        """Record an ask; the newest computation and data scopes replace the old ones."""
        if not self.enabled:
            return
        known = self._recipes.pop(recipe_id, None)
        if known is not None:
            recipe.asked = known.asked
            self._unlink(recipe_id, known.data_scopes)
        recipe.asked.append(now)
        self._trim(recipe.asked, now)
        self._recipes[recipe_id] = recipe
        for scope in recipe.data_scopes:
            self._readers.setdefault(scope, set()).add(recipe_id)
        while len(self._recipes) > self.max_recipes:
            old_id, old = self._recipes.popitem(last=False)
            self._unlink(old_id, old.data_scopes)
            self._due.pop(old_id, None)

    def bumped(self, scopes: Iterable[str], now: float) -> int:
        """Queue the popular questions reading any of `scopes`; returns how many were added."""
        if not self.enabled:
            return 0
        added = 0
        for scope in scopes:
            for recipe_id in self._readers.get(scope, ()):
                if recipe_id in self._due:
                    continue
                recipe = self._recipes[recipe_id]
                self._trim(recipe.asked, now)
                if len(recipe.asked) >= self.min_asks:
                    self._due[recipe_id] = None
                    added += 1
        return added

    def next_due(self) -> Recipe | None:
        """The queued recipe asked most often (the first queued among equals), taken off.

        When refreshes fall behind the changes, the answers most likely to be
        asked again are the ones worth the store's spare time.
        """
        best_id, best = None, None
        for recipe_id in list(self._due):
            recipe = self._recipes.get(recipe_id)
            if recipe is None:
                del self._due[recipe_id]
            elif best is None or len(recipe.asked) > len(best.asked):
                best_id, best = recipe_id, recipe
        if best_id is not None:
            del self._due[best_id]
        return best

    def clear_due(self) -> None:
        self._due.clear()

    def _trim(self, asked: deque[float], now: float) -> None:
        while asked and asked[0] < now - self.window_s:
            asked.popleft()

    def _unlink(self, recipe_id: RecipeId, scopes: tuple[str, ...]) -> None:
        for scope in scopes:
            readers = self._readers.get(scope)
            if readers is not None:
                readers.discard(recipe_id)
                if not readers:
                    del self._readers[scope]
