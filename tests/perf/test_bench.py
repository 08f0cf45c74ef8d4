"""The benchmark harness's own logic: percentiles, the plan, the targets of the report."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from optima_bi_mcp.mcp.tools import TOOLS
from perf import layers, plan, report, throughput
from perf.stats import percentile

MERCHANTS = plan.Merchants(
    sizes={"large": ("a", 1000), "median": ("b", 100), "small": ("c", 10)},
    all_ids=["a", "b", "c"],
    total_orders=1110,
)


def case(tool: str, kind: str, uncached: float, pg: float, size: str = "large") -> dict:
    """A measured case with constant samples."""
    return {
        "tool": tool,
        "kind": kind,
        "size": size,
        "period": "365d",
        "uncached_ms": [uncached] * 5,
        "cached_ms": [0.5] * 5,
        "server_ms": [uncached] * 5,
        "pg_ms": [pg] * 3,
    }


@given(st.lists(st.floats(0, 1e6), min_size=1), st.floats(0, 100))
def test_percentile_lies_between_the_extremes(samples: list[float], q: float) -> None:
    """Any percentile is within the smallest and the largest sample."""
    assert min(samples) <= percentile(samples, q) <= max(samples)


def test_percentile_interpolates_between_ranks() -> None:
    """The median of an even count is the mean of the middle two."""
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5


def test_every_tool_is_timed_and_in_the_http_mix() -> None:
    """A tool added to the server is benchmarked without touching the harness's plan."""
    planned = {c["tool"] for c in plan.build_cases(MERCHANTS, date(2026, 12, 3))}
    mixed = set(throughput.TOOLS)
    assert planned == mixed == {spec.name for spec in TOOLS}


def test_periods_end_on_the_given_day() -> None:
    """A 7-day span ends on the given day and starts six days before."""
    assert plan.span(date(2026, 3, 3), 7) == {"start": "2026-02-25", "end": "2026-03-03"}


def test_month_of_crosses_years() -> None:
    """Twelve months before March 2026 is March 2025."""
    assert plan.month_of(date(2026, 3, 31), 12) == "2025-03"


def test_a_tool_slower_than_postgresql_misses_its_target() -> None:
    """One slow case is enough to miss 'no tool slower than PostgreSQL'."""
    cases = [case("get_sales", "merchant", 5, 500), case("top_products", "merchant", 50, 40)]
    rows = report.target_rows(report.by_tool(cases), cases, [])
    met = {name: ok for name, _, ok in rows}
    assert met["no tool slower than PostgreSQL (any size, period)"] is False
    assert met["merchant tools uncached median ≤ 20 ms"] is False


def test_targets_met_by_fast_tools() -> None:
    """Fast merchant and platform tools meet their latency and ratio targets."""
    cases = [case("get_sales", "merchant", 5, 500), case("platform_mrr", "platform", 10, 900)]
    rows = report.target_rows(report.by_tool(cases), cases, [])
    met = {name: ok for name, _, ok in rows}
    assert met["platform tools ≥ 50× faster than PostgreSQL"] is True
    assert met["largest merchant, 365 days: ≥ 30× faster"] is True


def testhttp_target_needs_zero_errors() -> None:
    """Fast enough but with one error is a miss."""
    run = {"sessions": 50, "calls_per_s": 900.0, "p99_ms": 80.0, "errors": 1}
    assert report.http_target([run])[2] is False


def test_time_split_between_client_server_and_store() -> None:
    """An uncached call of 10 ms, 7 in the server of which 4 in the store: 3 + 3 + 4."""
    measured = {
        **case("get_sales", "merchant", 10, 500),
        "server_ms": [7.0] * 5,
        "store_ms": [4.0] * 5,
        "cached_server_ms": [0.2] * 5,
    }
    lines = report.split_lines(report.by_tool([measured]), {"SELECT 1": 1.5})
    row = next(line for line in lines if line.startswith("| `get_sales`"))
    assert row == "| `get_sales` | 10.0 | 3.00 | 3.00 | 4.00 | 0.50 | 0.30 |"
    assert "SELECT 1: 1.50 ms" in lines[-1]


def test_limits_name_the_slow_tool_with_its_split() -> None:
    """A missed target is explained with the split of the case that misses it."""
    slow = {
        **case("inventory_status", "merchant", 30, 2, size="small"),
        "server_ms": [25.0] * 5,
        "store_ms": [20.0] * 5,
        "store_queries": 2,
    }
    cases = [slow]
    lines = report.limit_lines(report.by_tool(cases), cases, [], {"SELECT 1": 1.5})
    text = "\n".join(lines)
    assert "- Merchant median: `inventory_status` 30.0 ms = client 5.00" in text
    assert "server Python 5.00 + store 20.0" in text
    assert "PostgreSQL 2.00 ms" in text and "2 store queries at ≥ 1.50 ms each" in text


def test_each_missed_target_profiles_the_case_that_limits_it() -> None:
    """The slowest merchant case for the median target, the least ratio for 'never slower'."""
    slow = {**case("inventory_status", "merchant", 30, 2, size="small"), "arguments": {}}
    quick = {**case("get_sales", "merchant", 5, 500), "arguments": {}}
    cases = [slow, quick]
    chosen = report.profile_targets(report.by_tool(cases), cases, [])
    picked = {target: (c["tool"], cached) for target, c, cached in chosen}
    assert picked["merchant tools uncached median ≤ 20 ms"] == ("inventory_status", False)
    assert picked["no tool slower than PostgreSQL (any size, period)"] == (
        "inventory_status",
        False,
    )
    assert "largest merchant, 365 days: ≥ 30× faster" not in picked


def test_the_median_target_profiles_a_typical_case_of_the_slowest_tool() -> None:
    """Not the tool's slowest case: the one whose median is nearest the tool's pooled median."""
    cases = [
        {**case("get_sales", "merchant", ms, 500), "period": period, "arguments": {}}
        for ms, period in ((25, "7d"), (30, "30d"), (200, "365d"))
    ]
    chosen = report.profile_targets(report.by_tool(cases), cases, [])
    picked = {target: c["period"] for target, c, _ in chosen}
    assert picked["merchant tools uncached median ≤ 20 ms"] == "30d"
    assert picked["merchant tools uncached p99 ≤ 100 ms"] == "365d"


def test_builtin_time_counts_for_the_layer_that_called_it() -> None:
    """A C call made from jsonschema is validation time, not 'other'."""
    validate = ("/x/site-packages/jsonschema/validators.py", 1, "iter_errors")
    builtin = ("~", 0, "<method 'get' of 'dict' objects>")
    stats = FakeStats(
        {
            validate: (1, 1, 0.25, 1.0, {}),
            builtin: (5, 5, 0.75, 0.75, {validate: (5, 5, 0.75, 0.75)}),
        }
    )
    totals = layers.split_by_layer(stats)  # type: ignore[arg-type]
    assert totals == {"result validation in the MCP client (jsonschema)": 1.0}


def test_the_event_loop_wait_is_kept_apart_from_the_work() -> None:
    """The main thread's poll while a worker runs the store query is waiting, not a layer."""
    loop = ("/usr/lib/python3.11/asyncio/base_events.py", 1, "_run_once")
    poll = ("~", 0, "<method 'poll' of 'select.epoll' objects>")
    stats = FakeStats({poll: (1, 1, 0.5, 0.5, {loop: (1, 1, 0.5, 0.5)})})
    assert layers.split_by_layer(stats) == {layers.WAITING: 0.5}  # type: ignore[arg-type]


def test_profiles_show_the_layers_and_queries_of_each_case() -> None:
    """The call's time outside the store is split between Python layers in profiled shares."""
    entry = {
        "target": "cached median ≤ 1 ms (every tool)",
        "tool": "get_sales",
        "label": "large 365d",
        "cached": True,
        "per_call_ms": 20.0,
        "store_ms": 10.0,
        "queries": [],
        "layers": {
            "store engine (chDB)": 0.5,
            "result validation in the MCP client (jsonschema)": 0.3,
            "pydantic (arguments, result models)": 0.1,
        },
    }
    text = "\n".join(report.profile_lines([entry]))
    assert "`get_sales` large 365d, cached (L1): 20.0 ms per call" in text
    assert "| store queries (engine and client, timed) | 10.0 | 50% |" in text
    assert "| result validation in the MCP client (jsonschema) | 7.50 | 38% |" in text


class FakeStats:
    """The one attribute of pstats.Stats that split_by_layer reads (a hand-built profile)."""

    def __init__(self, stats: dict) -> None:
        self.stats = stats
