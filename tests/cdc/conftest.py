"""The real streaming stack for the CDC tests: PostgreSQL, Kafka, Connect, Debezium.

`infra/stack/up` starts (or reuses) every service once per session; if it
cannot, the tests fail with the tail of the failing service's log, never skip.
Each test source gets its own database, connector, replication slot and topic
prefix, so tests do not see each other's changes.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from optima_bi_mcp.cdc import connector
from optima_bi_mcp.cdc.sink import change_topics
from optima_bi_mcp.settings import Settings
from tests.cdc.workload import Workload

ROOT = Path(__file__).resolve().parents[2]
CDC_SQL = ROOT / "infra" / "postgres" / "cdc.sql"


@dataclass(frozen=True)
class Stack:
    bootstrap: str
    connect_url: str


@dataclass
class CdcSource:
    """A source database streamed by its own connector under its own topic prefix."""

    dsn: str
    prefix: str
    workload: Workload
    stack: Stack

    @property
    def topics(self) -> list[str]:
        return change_topics(self.prefix)

    def settings(self, **overrides: object) -> Settings:
        values = {
            "kafka_bootstrap": self.stack.bootstrap,
            "kafka_topic_prefix": self.prefix,
            "kafka_group": f"{self.prefix}-sink",
            "dlq_topic": f"{self.prefix}.dlq",
            "sink_batch_ms": 100,
        }
        return Settings(**(values | overrides))


@pytest.fixture(scope="session")
def stack() -> Stack:
    """PostgreSQL, Kafka and Kafka Connect from `infra/stack/up` (started once, reused)."""
    run = subprocess.run(
        [str(ROOT / "infra" / "stack" / "up")], capture_output=True, text=True, timeout=900
    )
    if run.returncode != 0:
        pytest.fail(f"infra/stack/up failed:\n{run.stderr[-6000:]}", pytrace=False)
    env = dict(line.split("=", 1) for line in run.stdout.split() if "=" in line)
    return Stack(env["OPTIMA_BI_KAFKA_BOOTSTRAP"], env["OPTIMA_BI_CONNECT_URL"])


@pytest.fixture(scope="session")
def make_cdc_source(
    stack: Stack, make_source: Callable[[str], str], pg_admin_dsn: str
) -> Iterator[Callable[..., CdcSource]]:
    """Seed a fresh source, prepare it for CDC and register a connector for it."""
    _drop_stale_slots(pg_admin_dsn)
    made: list[CdcSource] = []

    def make(seed: int = 1, merchants: int = 12, orders_per_merchant: int = 40) -> CdcSource:
        dsn = make_source("cdc")
        prefix = dsn.rsplit("/", 1)[1]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(CDC_SQL.read_text())
        workload = Workload(dsn, seed)
        workload.seed(merchants, orders_per_merchant)
        config = connector.connector_config(
            database_port=str(psycopg.conninfo.conninfo_to_dict(dsn)["port"]),
            database_dbname=prefix,
            topic_prefix=prefix,
            slot_name=prefix,
        )
        connector.register(stack.connect_url, prefix, config)
        source = CdcSource(dsn, prefix, workload, stack)
        made.append(source)
        return source

    yield make
    for source in made:
        _drop(source)


def _drop_stale_slots(admin_dsn: str) -> None:
    """Drop idle slots an interrupted earlier session left: they would pin WAL forever."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE NOT active AND slot_name LIKE 'cdc\\_%'"
        )


def _drop(source: CdcSource) -> None:
    """Remove a test source's connector, replication slot and topics."""
    connector.delete(source.stack.connect_url, source.prefix)
    admin_dsn = source.dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        connector.drop_slot(conn, source.prefix)
    AdminClient({"bootstrap.servers": source.stack.bootstrap}).delete_topics(
        [*source.topics, f"{source.prefix}.dlq"]
    )


def high_watermarks(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """The end offset of partition 0 of each topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hw-{uuid.uuid4()}"})
    try:
        return {t: consumer.get_watermark_offsets(TopicPartition(t, 0), 10)[1] for t in topics}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topics: list[str]) -> dict[str, int]:
    """The consumer group's committed offset of partition 0 of each topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(t, 0) for t in topics], timeout=10)
        return {tp.topic: tp.offset for tp in found}
    finally:
        consumer.close()
