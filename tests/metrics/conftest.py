"""The shared metric dataset: one source, built once, backfilled into one store."""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import pytest

from optima_bi_mcp.data.backfill import backfill
from optima_bi_mcp.store import Store
from tests.metrics.dataset import DatasetInfo, build_dataset

SEED = 20261103
PLATFORM_MODULE = "tests.metrics.dataset_platform"


@dataclass
class MetricDataset:
    source_dsn: str
    store: Store
    info: DatasetInfo

    @property
    def now(self) -> datetime:
        return self.info.now


def _add_platform_rows(dsn: str, info: DatasetInfo) -> None:
    """Let the platform metrics' dataset module add its rows, when it exists."""
    try:
        module = importlib.import_module(PLATFORM_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != PLATFORM_MODULE:
            raise
        return
    add: Callable[..., Any] | None = getattr(module, "add_platform_rows", None)
    if add is None:
        return
    with psycopg.connect(dsn, autocommit=True) as conn:
        add(conn, info, random.Random(SEED + 1))


@pytest.fixture(scope="session")
def metric_dataset(
    make_source: Callable[[str], str], make_store: Callable[[str], Store]
) -> Iterator[MetricDataset]:
    """The adversarial dataset in a fresh source, backfilled into a fresh store."""
    dsn = make_source("metrics")
    info = build_dataset(dsn, SEED)
    _add_platform_rows(dsn, info)
    store = make_store("metrics")
    backfill(store, dsn)
    yield MetricDataset(source_dsn=dsn, store=store, info=info)


@pytest.fixture(scope="session")
def source(metric_dataset: MetricDataset) -> Iterator[psycopg.Connection[Any]]:
    """A read-only connection to the dataset's source, for the oracle."""
    with psycopg.connect(metric_dataset.source_dsn, autocommit=True) as conn:
        yield conn
