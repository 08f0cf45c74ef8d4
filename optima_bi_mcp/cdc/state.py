"""The sink's position and freshness, persisted in the store (`cdc_sink_state`).

The sink writes one row per topic partition it applied, at most once a second
and whenever it goes idle or stops (so this may trail the store by a second
under load); any process that opens the store (a serving process without
`--sink`) reads the freshness from here rather than from the in-process
ChangeBus.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from optima_bi_mcp.store.client import Store

_COLUMNS = (
    "consumer_group",
    "topic",
    "partition",
    "next_offset",
    "lsn",
    "source_ts",
    "applied_at",
    "_version",
)


@dataclass(frozen=True)
class PartitionPosition:
    """What the sink has applied from one topic partition."""

    topic: str
    partition: int
    next_offset: int
    lsn: int
    source_ts: datetime


def write_positions(store: Store, group: str, positions: Iterable[PartitionPosition]) -> None:
    """Record the positions of a durable batch."""
    now = datetime.now(UTC)
    version = time.time_ns()
    rows = [
        (group, p.topic, p.partition, p.next_offset, p.lsn, p.source_ts, now, version)
        for p in positions
    ]
    store.insert("cdc_sink_state", rows, _COLUMNS)


def read_positions(store: Store, group: str | None = None) -> list[PartitionPosition]:
    """The latest recorded position of every topic partition (of one group, or all)."""
    rows = store.query(
        "SELECT topic, partition, next_offset, lsn, source_ts FROM cdc_sink_state FINAL "
        "WHERE {group:String} = '' OR consumer_group = {group:String} ORDER BY topic, partition",
        {"group": group or ""},
    )
    return [PartitionPosition(str(t), int(p), int(o), int(lsn), ts) for t, p, o, lsn, ts in rows]


def read_freshness(store: Store) -> datetime | None:
    """Source commit time of the newest change the sink applied, or None if none yet."""
    rows = store.query("SELECT max(source_ts), count() FROM cdc_sink_state FINAL")
    if not rows or not rows[0][1]:
        return None
    stamp = rows[0][0]
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def store_status(store: Store) -> dict[str, Any]:
    """Freshness and positions as recorded in the store, for `bi://status` without a sink."""
    freshness = read_freshness(store)
    return {
        "freshness": freshness.isoformat() if freshness else None,
        "positions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "next_offset": p.next_offset,
                "lsn": p.lsn,
                "source_ts": p.source_ts.isoformat(),
            }
            for p in read_positions(store)
        ],
    }
