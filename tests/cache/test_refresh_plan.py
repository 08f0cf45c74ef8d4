"""The bookkeeping of refresh-ahead: which questions are remembered, and which are due."""

from __future__ import annotations

from optima_bi_mcp.cache.refresh import Recipe, RefreshPlan
from tests.cache.conftest import Computation


def test_plan_forgets_the_least_recently_asked_beyond_its_bound() -> None:
    plan = RefreshPlan(min_asks=1, window_s=60, max_recipes=2)

    def recipe(tool: str) -> Recipe:
        return Recipe(tool, {}, "admin", (f"orders:{tool}",), Computation())

    for n, tool in enumerate(("a", "b", "a", "c")):
        plan.asked((tool, "admin", "{}"), recipe(tool), float(n))
    assert len(plan) == 2
    assert plan.bumped(["orders:b"], 5.0) == 0  # b was the least recently asked: forgotten
    assert plan.bumped(["orders:a", "orders:c"], 5.0) == 2
    due = [plan.next_due(), plan.next_due(), plan.next_due()]
    assert [r.tool if r else None for r in due] == ["a", "c", None]


def test_plan_counts_asks_within_the_window_only() -> None:
    plan = RefreshPlan(min_asks=2, window_s=10, max_recipes=10)
    for at in (0.0, 20.0):
        plan.asked(("t", "admin", "{}"), Recipe("t", {}, "admin", ("s",), Computation()), at)
    assert plan.bumped(["s"], 21.0) == 0  # the first ask is older than the window
    plan.asked(("t", "admin", "{}"), Recipe("t", {}, "admin", ("s",), Computation()), 25.0)
    assert plan.bumped(["s"], 26.0) == 1


def test_plan_hands_out_the_most_asked_first() -> None:
    plan = RefreshPlan(min_asks=1, window_s=60, max_recipes=10)
    for tool, asks in (("rare", 1), ("popular", 3), ("middling", 2)):
        for n in range(asks):
            plan.asked((tool, "admin", "{}"), Recipe(tool, {}, "admin", ("s",), Computation()), n)
    assert plan.bumped(["s"], 5.0) == 3
    due = [plan.next_due(), plan.next_due(), plan.next_due(), plan.next_due()]
    assert [r.tool if r else None for r in due] == ["popular", "middling", "rare", None]
