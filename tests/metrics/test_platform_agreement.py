"""The benchmark's agreement check judges platform_merchants as of the instant it answered.

The 30-day windows of platform_merchants end at `now`, so the same data gives
other figures a few minutes later; the check must ask the oracle as of the
answer's `as_of`, not as of whenever the check happens to run.
"""

from __future__ import annotations

from typing import Any

import pytest

from optima_bi_mcp.metrics import platform
from optima_bi_mcp.metrics.models import PlatformMerchantsArgs
from perf import latency
from tests.metrics.conftest import MetricDataset


def _checked(dataset: MetricDataset, segment: str, answer: dict[str, Any]) -> bool | None:
    """What the benchmark's agreement check says of `answer` to platform_merchants."""
    case = latency.Case(
        tool="platform_merchants",
        kind="platform",
        size="platform",
        period=segment,
        arguments={"segment": segment},
    )
    latency.agreement(dataset.source_dsn, [case], {0: answer})
    return case.agree


def _answer(dataset: MetricDataset, segment: str) -> dict[str, Any]:
    """The tool's first page as of the dataset's fixed instant, not the wall clock."""
    args = PlatformMerchantsArgs(segment=segment)
    return platform.platform_merchants(dataset.store, args, dataset.now).model_dump(mode="json")


@pytest.mark.parametrize("segment", ["top", "active", "sleeping"])
def test_agreement_asks_the_oracle_as_of_the_answer(
    metric_dataset: MetricDataset, segment: str
) -> None:
    """A right answer given as of another instant than the check's clock still agrees."""
    assert _checked(metric_dataset, segment, _answer(metric_dataset, segment)) is True


def test_agreement_still_catches_a_wrong_figure(metric_dataset: MetricDataset) -> None:
    """One cent off in the first merchant's gmv_30d is a disagreement."""
    answer = _answer(metric_dataset, "top")
    answer["items"][0]["gmv_30d"] = round(answer["items"][0]["gmv_30d"] + 0.01, 2)
    assert _checked(metric_dataset, "top", answer) is False
