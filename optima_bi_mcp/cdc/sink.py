"""The CDC sink: a Kafka consumer group from Debezium change topics into the store.

One loop, in one thread: collect a batch (decoding each message as it is
polled), write it (cdc.apply), refresh its rollups, announce it with a
`ChangeNotice` on the ChangeBus, send undecodable messages to the dead-letter
topic, record the positions in the store (at most once a second, see
POSITIONS_EVERY_S), and only then commit the offsets to Kafka. A crash anywhere
before the commit means the batch is delivered again, which the LSN-versioned
writes make harmless; the notice goes out as soon as readers can see the batch,
since the bookkeeping after it changes nothing they read.

While the engine refreshes a batch's rollups, the loop polls and decodes the
next batch's messages, so a change that arrives meanwhile waits for the
refresh only, not also for its own decoding. Nothing of the next batch is
written before the refresh is done: a refresh reads the latest state its own
batch left (store.rollups relies on it), and the next batch's offsets are
committed only after its own write.

A batch closes as soon as the consumer has nothing more buffered (a poll
waits at most `sink_batch_idle_ms` for more), or when it holds
`sink_batch_size` messages, or `sink_batch_ms` after its first message. So a
change never waits for a fixed window: at a low rate batches are small and
prompt, and under load they grow by themselves while the previous one is
being written.

Embedding (`optima-bi serve --sink`): `Sink(settings, store, bus).start()` runs
the loop in a daemon thread and `stop()` drains it; `run_sink_in_process` does
the same from async code.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio
from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from loguru import logger

from optima_bi_mcp.cdc.apply import AppliedBatch, refresh_rollups, write_events
from optima_bi_mcp.cdc.decode import EPOCH, ChangeEvent, decode_event
from optima_bi_mcp.cdc.notify import ChangeBus
from optima_bi_mcp.cdc.state import PartitionPosition, write_positions
from optima_bi_mcp.cdc.telemetry import SinkTelemetry
from optima_bi_mcp.data.tables import TABLES
from optima_bi_mcp.errors import ChangeEventError, SinkError, StoreError
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store.client import Store

log = logger.bind(module=__name__)

RETRY_S = 1.0
MAX_RETRY_S = 30.0
# How long an idle sink waits in one poll for a batch's first message.
FIRST_POLL_S = 0.1
# Positions are written to the store at most this often, and when the sink goes
# idle or stops: they are for status and freshness, not for resuming (Kafka's
# committed offsets are), and one statement fewer per batch matters under load.
POSITIONS_EVERY_S = 1.0
# How often polling ahead (during a refresh) looks whether the refresh is done.
AHEAD_POLL_S = 0.005


def change_topics(prefix: str) -> list[str]:
    """The seven change topics Debezium writes for a topic prefix."""
    return [f"{prefix}.public.{table.name}" for table in TABLES]


@dataclass
class _Decoded:
    events: list[ChangeEvent] = field(default_factory=list)
    # Kafka record timestamp and poll time of each event (wall clock, seconds).
    received: list[tuple[float, float]] = field(default_factory=list)
    dead: list[tuple[Message, str]] = field(default_factory=list)
    # Per (topic, partition): last offset, highest LSN and newest commit time seen.
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    lsn: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)


@dataclass
class _Batch:
    """Messages polled for one batch, decoded as they came, and when the batch closed."""

    decoded: _Decoded = field(default_factory=_Decoded)
    size: int = 0
    # Seconds spent decoding its messages (the batch's `decode` step).
    decode_seconds: float = 0.0
    closed_at: float = 0.0
    # Its undecodable messages are in the dead-letter topic (a retry sends them no more).
    dead_lettered: bool = False

    def __len__(self) -> int:
        return self.size


class _Laps:
    """Durations of a batch's consecutive steps, for the batch-stage histogram."""

    def __init__(self, **before: float) -> None:
        # Steps done before the laps start (decoding, as messages were polled).
        self.seconds: dict[str, float] = dict(before)
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = now - self._last
        self._last = now


class _Event(Protocol):
    async def wait(self) -> Any: ...


class Sink:
    """Consumes the change topics into the store; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: ChangeBus | None = None,
        *,
        telemetry: SinkTelemetry | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus or ChangeBus()
        self.telemetry = telemetry or SinkTelemetry()
        self.topics = change_topics(settings.kafka_topic_prefix)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Newest durable offset per (topic, partition), committed synchronously at stop.
        self._uncommitted: dict[tuple[str, int], int] = {}
        # Positions applied but not yet written to the store, and when they last were.
        self._unwritten: dict[tuple[str, int], PartitionPosition] = {}
        self._positions_written = 0.0
        self._positions_retry_at = 0.0
        # The next batch, polled and decoded while the current one's rollups are refreshed.
        self._ahead = _Batch()
        self._refresher: ThreadPoolExecutor | None = None
        self._status: dict[str, Any] = {
            "running": False,
            "group": settings.kafka_group,
            "topics": self.topics,
            "events": 0,
            "batches": 0,
            "dead_letters": 0,
            "last_batch_size": 0,
            "last_batch_at": None,
            "freshness": None,
            "applied_lsn": {},
            "lag": {},
            "last_error": None,
        }

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Run the sink in a daemon thread until `stop()`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._status["running"] = True
        self._thread = threading.Thread(target=self._run_logged, name="cdc-sink", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Drain: finish the batch in hand, commit it, leave the group."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def request_stop(self) -> None:
        """Ask the loop to drain and return (safe from a signal handler)."""
        self._stop.set()

    def status(self) -> dict[str, Any]:
        """A snapshot of the sink's state for `bi://status` and logs."""
        snapshot = dict(self._status)
        snapshot["applied_lsn"] = dict(self._status["applied_lsn"])
        snapshot["lag"] = dict(self._status["lag"])
        return snapshot

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception as exc:
            self._status["last_error"] = str(exc)
            self._status["running"] = False
            log.exception("sink stopped by an error")

    # -- the loop ------------------------------------------------------------

    def run(self) -> None:
        """Consume until stopped; blocking. Raises SinkError if Kafka fails fatally."""
        self._status["running"] = True
        self.ensure_topics()
        consumer = Consumer(self._consumer_config())
        producer = Producer(
            {"bootstrap.servers": self._bootstrap, "acks": "all", "enable.idempotence": True}
        )
        consumer.subscribe(self.topics)
        self._refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdc-sink-refresh")
        log.info(
            "sink started group={} topics={} batch_size={} batch_ms={}",
            self.settings.kafka_group,
            len(self.topics),
            self.settings.sink_batch_size,
            self.settings.sink_batch_ms,
        )
        try:
            while not self._stop.is_set():
                batch = self._collect(consumer)
                if batch:
                    self._process_with_retry(consumer, producer, batch)
                elif self._unwritten and time.monotonic() >= self._positions_retry_at:
                    self._write_positions_when_idle()
        finally:
            # Messages polled ahead are not committed: they are delivered again.
            self._ahead = _Batch()
            self._refresher.shutdown()
            self._refresher = None
            self._write_positions_when_idle()
            self._commit_pending(consumer)
            consumer.close()
            producer.flush(10)
            self._status["running"] = False
            log.info("sink stopped group={}", self.settings.kafka_group)

    @property
    def _bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    def _consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self._bootstrap,
            "group.id": self.settings.kafka_group,
            "client.id": "optima-bi-sink",
            # Offsets are committed by hand, after the batch is durable in the store.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "on_commit": _log_failed_commit,
            "auto.offset.reset": "earliest",
            # Latency over fetch efficiency: a change should not wait half a second.
            "fetch.wait.max.ms": 50,
            # A killed sink's partitions move to its successor within seconds.
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
            "error_cb": _log_kafka_error,
        }

    def ensure_topics(self) -> None:
        """Create the change topics and the dead-letter topic if missing (broker defaults)."""
        admin = AdminClient({"bootstrap.servers": self._bootstrap})
        try:
            existing = set(admin.list_topics(timeout=15).topics)
        except KafkaException as exc:
            raise SinkError(f"Kafka at {self._bootstrap} is unreachable: {exc}") from exc
        wanted = [t for t in [*self.topics, self.settings.dlq_topic] if t not in existing]
        if not wanted:
            return
        futures = admin.create_topics([NewTopic(t, num_partitions=1) for t in wanted])
        for topic, future in futures.items():
            try:
                future.result(15)
                log.info("topic created topic={}", topic)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise SinkError(f"cannot create topic {topic}: {exc}") from exc

    def _collect(self, consumer: Consumer) -> _Batch:
        """Messages until nothing more is buffered, the batch is full or its time is up.

        The batch starts with the messages polled ahead, during the previous refresh.
        """
        batch, self._ahead = self._ahead, _Batch()
        deadline = time.monotonic() + self.settings.sink_batch_ms / 1000 if batch else None
        limit = self.settings.sink_batch_size
        idle = self.settings.sink_batch_idle_ms / 1000
        while len(batch) < limit and not self._stop.is_set():
            wait = FIRST_POLL_S
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = min(idle, left)
            if not self._poll_into(consumer, batch, wait):
                # Caught up: what is in hand should not wait for more, and an idle
                # sink returns to its loop (held positions get written there).
                break
            if batch and deadline is None:
                deadline = time.monotonic() + self.settings.sink_batch_ms / 1000
        batch.closed_at = time.time()
        return batch

    def _collect_ahead(self, consumer: Consumer, refresh: Future[Any]) -> None:
        """Poll and decode the next batch's messages until `refresh` is done."""
        limit = self.settings.sink_batch_size
        while not refresh.done() and len(self._ahead) < limit and not self._stop.is_set():
            self._poll_into(consumer, self._ahead, AHEAD_POLL_S)

    def _poll_into(self, consumer: Consumer, batch: _Batch, wait: float) -> bool:
        """One poll of at most `wait` seconds, decoded into `batch`; False if it got nothing."""
        count = min(self.settings.sink_batch_size - len(batch), 1000)
        messages = consumer.consume(count, timeout=wait)
        if not messages:
            return False
        polled_at = time.time()
        started = time.perf_counter()
        for message in messages:
            error = message.error()
            if error is not None:
                _log_kafka_error(error)
                continue
            batch.size += 1
            self._decode(batch.decoded, message, polled_at)
        batch.decode_seconds += time.perf_counter() - started
        return True

    def _process_with_retry(self, consumer: Consumer, producer: Producer, batch: _Batch) -> None:
        """Apply a batch; on a store failure retry it (never skip it) until stopped."""
        delay = RETRY_S
        while True:
            try:
                self._process(consumer, producer, batch)
                return
            except (StoreError, SinkError) as exc:
                self._status["last_error"] = exc.message
                log.warning("batch failed, retrying in {}s: {}", delay, exc.message)
            if self._stop.wait(delay):
                log.warning("sink stopping with an unapplied batch; it will be redelivered")
                return
            delay = min(delay * 2, MAX_RETRY_S)

    def _process(self, consumer: Consumer, producer: Producer, batch: _Batch) -> None:
        started = time.perf_counter()
        laps = _Laps(decode=batch.decode_seconds)
        decoded = batch.decoded
        applied = write_events(self.store, decoded.events)
        laps.lap("write")
        assert self._refresher is not None
        refresh = self._refresher.submit(refresh_rollups, self.store, applied)
        self._collect_ahead(consumer, refresh)
        refresh.result()
        laps.lap("rollups")
        self._announce(applied)
        laps.lap("notify")
        visible_at = time.time()

        if not batch.dead_lettered:
            self._dead_letter(producer, decoded.dead)
            batch.dead_lettered = True
        self._hold_positions(decoded)
        if time.monotonic() - self._positions_written >= POSITIONS_EVERY_S:
            self._write_positions()
        laps.lap("positions")
        self._commit(consumer, decoded.offsets)
        laps.lap("commit")
        self._observe(consumer, batch, decoded, applied, visible_at, time.perf_counter() - started)
        self._observe_stages(batch, decoded, laps, visible_at)

    def _hold_positions(self, decoded: _Decoded) -> None:
        for position in _positions(decoded):
            key = (position.topic, position.partition)
            held = self._unwritten.get(key)
            if held is not None:
                position = PartitionPosition(
                    position.topic,
                    position.partition,
                    max(position.next_offset, held.next_offset),
                    max(position.lsn, held.lsn),
                    max(position.source_ts, held.source_ts),
                )
            self._unwritten[key] = position

    def _write_positions(self) -> None:
        if self._unwritten:
            write_positions(self.store, self.settings.kafka_group, self._unwritten.values())
            self._unwritten.clear()
        self._positions_written = time.monotonic()

    def _write_positions_when_idle(self) -> None:
        """Write held positions between batches; a failure leaves them for the next try."""
        try:
            self._write_positions()
        except StoreError as exc:
            self._positions_retry_at = time.monotonic() + RETRY_S
            log.warning("positions not recorded, will retry: {}", exc.message)

    def _announce(self, applied: AppliedBatch) -> None:
        """Tell subscribers (the cache, status) what the batch changed, once readers see it."""
        # XXX: freshness is the commit time of the newest change applied, so an idle
        # source looks stale although the sink is caught up; consuming Debezium's
        # heartbeat topic could advance it. test_freshness_is_persisted_in_the_store
        # pins today's meaning.
        if applied.events:
            self.bus.publish(applied.notice())

    def _decode(self, decoded: _Decoded, message: Message, polled_at: float) -> None:
        topic, partition = message.topic() or "", message.partition() or 0
        decoded.offsets[(topic, partition)] = message.offset() or 0
        value = message.value()
        if value is None:
            return  # a tombstone: only for log compaction, the delete came before it
        try:
            event = decode_event(topic, self.settings.kafka_topic_prefix, value)
        except ChangeEventError as exc:
            decoded.dead.append((message, exc.message))
            return
        decoded.events.append(event)
        decoded.received.append((_record_time(message, polled_at), polled_at))
        lsn, ts = decoded.lsn.get((topic, partition), (0, 0))
        decoded.lsn[(topic, partition)] = (max(lsn, event.lsn), max(ts, event.ts_ms))

    def _dead_letter(self, producer: Producer, dead: list[tuple[Message, str]]) -> None:
        """Send undecodable messages, unchanged, to the DLQ with the reason in headers."""
        for message, reason in dead:
            log.warning(
                "dead letter topic={} partition={} offset={} reason={}",
                message.topic(),
                message.partition(),
                message.offset(),
                reason,
            )
            producer.produce(
                self.settings.dlq_topic,
                key=message.key(),
                value=message.value(),
                headers=[
                    ("optima.error.reason", reason.encode()),
                    ("optima.source.topic", (message.topic() or "").encode()),
                    ("optima.source.partition", str(message.partition()).encode()),
                    ("optima.source.offset", str(message.offset()).encode()),
                ],
            )
        if dead and producer.flush(30) > 0:
            raise SinkError("dead-letter messages were not acknowledged by Kafka")

    def _commit(self, consumer: Consumer, offsets: dict[tuple[str, int], int]) -> None:
        """Commit a durable batch's offsets without waiting for the broker's answer.

        The next batch need not wait: a commit that fails or is lost with the
        process only means redelivery, which the versioned writes make harmless.
        The drain at stop commits the newest offsets synchronously.
        """
        commits = [TopicPartition(t, p, o + 1) for (t, p), o in offsets.items()]
        self._uncommitted.update(offsets)
        try:
            consumer.commit(offsets=commits, asynchronous=True)
        except KafkaException as exc:
            log.warning("offset commit failed, the batch will be redelivered: {}", exc)

    def _commit_pending(self, consumer: Consumer) -> None:
        """Commit the newest durable offsets and wait for the broker (the drain at stop)."""
        if not self._uncommitted:
            return
        commits = [TopicPartition(t, p, o + 1) for (t, p), o in self._uncommitted.items()]
        try:
            consumer.commit(offsets=commits, asynchronous=False)
        except KafkaException as exc:
            # Lost partitions after a rebalance: the new owner re-reads; writes are idempotent.
            log.warning("final offset commit failed, the batch will be redelivered: {}", exc)
        self._uncommitted.clear()

    def _observe(
        self,
        consumer: Consumer,
        batch: _Batch,
        decoded: _Decoded,
        applied: AppliedBatch,
        visible_at: float,
        seconds: float,
    ) -> None:
        t = self.telemetry
        for table, count in Counter(event.table.name for event in decoded.events).items():
            t.events.labels(table).inc(count)
        for event in decoded.events:
            t.end_to_end.observe(max(0.0, visible_at - event.ts_ms / 1000))
        t.batches.inc()
        t.batch_size.observe(len(batch))
        t.batch_seconds.observe(seconds)
        t.dead_letters.inc(len(decoded.dead))
        status = self._status
        for table, lsn in applied.lsn.items():
            t.applied_lsn.labels(table).set(lsn)
            status["applied_lsn"][table] = max(status["applied_lsn"].get(table, 0), lsn)
        if applied.freshness is not None:
            t.freshness.set(applied.freshness.timestamp())
            status["freshness"] = applied.freshness.isoformat()
        status["events"] += len(decoded.events)
        status["batches"] += 1
        status["dead_letters"] += len(decoded.dead)
        status["last_batch_size"] = len(batch)
        status["last_batch_at"] = datetime.now(UTC).isoformat()
        self._observe_lag(consumer)
        log.debug("batch applied messages={} duration_ms={:.1f}", len(batch), seconds * 1000)

    def _observe_stages(
        self, batch: _Batch, decoded: _Decoded, laps: _Laps, visible_at: float
    ) -> None:
        """Where each change's time went (EVENT_STAGES) and the batch's steps (BATCH_STAGES)."""
        t = self.telemetry
        for stage, seconds in laps.seconds.items():
            t.batch_stage.labels(stage).observe(seconds)
        capture, delivery = t.event_stage.labels("capture"), t.event_stage.labels("delivery")
        batching, applying = t.event_stage.labels("batching"), t.event_stage.labels("applying")
        applied_for = max(0.0, visible_at - batch.closed_at)
        for event, (record_at, polled_at) in zip(decoded.events, decoded.received, strict=True):
            capture.observe(max(0.0, record_at - event.ts_ms / 1000))
            delivery.observe(max(0.0, polled_at - record_at))
            batching.observe(max(0.0, batch.closed_at - polled_at))
            applying.observe(applied_for)

    def _observe_lag(self, consumer: Consumer) -> None:
        assigned = consumer.assignment()
        if not assigned:
            return
        for tp in consumer.position(assigned):
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high < 0 or tp.offset < 0:
                continue
            lag = max(0, high - tp.offset)
            self.telemetry.lag.labels(tp.topic, str(tp.partition)).set(lag)
            self._status["lag"][f"{tp.topic}[{tp.partition}]"] = lag


def _positions(decoded: _Decoded) -> list[PartitionPosition]:
    return [
        PartitionPosition(topic, partition, decoded.offsets[(topic, partition)] + 1, lsn, _ms(ts))
        for (topic, partition), (lsn, ts) in decoded.lsn.items()
    ]


def _ms(ts_ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ts_ms)


def _record_time(message: Message, polled_at: float) -> float:
    """The Kafka record timestamp in seconds, or the poll time if the record has none.

    With the topics' default CreateTime that is when Connect's producer sent it;
    with LogAppendTime, when the broker appended it.
    """
    kind, ms = message.timestamp()
    return polled_at if kind == TIMESTAMP_NOT_AVAILABLE or ms <= 0 else ms / 1000


def _log_failed_commit(error: KafkaError | None, partitions: list[TopicPartition]) -> None:
    if error is not None:
        log.warning("offset commit failed, the batch will be redelivered: {}", error.str())


def _log_kafka_error(error: KafkaError) -> None:
    if error.fatal():
        log.error("kafka fatal error: {}", error.str())
    else:
        log.warning("kafka error: {}", error.str())


async def run_sink_in_process(
    settings: Settings, store: Store, bus: ChangeBus, stop_event: _Event
) -> Sink:
    """Run the sink beside an async server until `stop_event` is set; then drain it."""
    sink = Sink(settings, store, bus)
    sink.start()
    try:
        await stop_event.wait()
    finally:
        await anyio.to_thread.run_sync(sink.stop)
    return sink
