"""CDC benchmark: commit-to-visible latency at a steady rate, and bulk sink throughput.

    .venv/bin/python perf/cdc_latency.py [--rate 200] [--seconds 60] [--bulk-orders 20000]

Needs the streaming stack (it runs `infra/stack/up`). It creates its own source
database and connector, streams it into an embedded store through an
in-process sink, and measures:

1. Latency: `--rate` transactions per second (a new order with 1-3 items and
   stock moves each, from `--writers` connections in a separate process) for
   `--seconds`, measured two ways:
   - stamped, for every row change: from its source commit (`source.ts_ms`,
     the commit time PostgreSQL wrote in the WAL, on this host's clock) to the
     moment the sink has written its batch's rows and every rollup and
     published the change notice: from then on every tool answer includes it,
     and the cache drops what it changed. No store query is involved, so these
     figures cost the sink nothing. Reported as p50/p95/p99 (target p95 < 1 s)
     with where the time went, per stage and per store statement.
   - probed (`Probe`), for a few orders: from the return of an order's commit
     to the return of the first `get_sales` answer, asked through the MCP
     server, that counts it. This is what a user asking at that moment sees,
     including the tool call and its wait for the store behind the sink; it
     confirms the stamp. `--probe-rate` orders per second of a merchant the
     load never touches, so its few tool calls barely load the store.
2. Throughput: a bulk load of `--bulk-orders` orders in one transaction, then a
   fresh consumer group reading every change topic from the start into a new
   store database; events applied per second.

Prints the figures and writes JSON and Markdown reports under perf/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    args = _parser().parse_args()
    env = _stack_up()
    source = _make_source(env, args.seed, args.source_commit)
    try:
        _register(env, source)
        report = _run(env, source, args)
    finally:
        _drop_source(env, source)
    _write(report)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="transactions per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="steady phase length")
    parser.add_argument("--bulk-orders", type=int, default=20_000)
    parser.add_argument("--writers", type=int, default=4, help="concurrent source connections")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--probe-rate", type=float, default=2.0, help="probe orders per second (see Probe)"
    )
    parser.add_argument(
        "--source-commit",
        choices=("on", "off"),
        default="on",
        help="the source database's synchronous_commit (infra's throwaway cluster runs off; "
        "a production OLTP database commits durably, and only flushed WAL is decoded)",
    )
    return parser


def _stack_up() -> dict[str, str]:
    run = subprocess.run([str(ROOT / "infra" / "stack" / "up")], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"infra/stack/up failed:\n{run.stderr[-4000:]}")
    return dict(line.split("=", 1) for line in run.stdout.split() if "=" in line)


def _make_source(env: dict[str, str], seed: int, commit: str) -> dict[str, Any]:
    import psycopg

    from tests.cdc.workload import Workload

    name = f"perf_{uuid.uuid4().hex[:8]}"
    admin = env["OPTIMA_BI_SOURCE"].rsplit("/", 1)[0]
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # With synchronous_commit off, a commit's WAL reaches logical decoding only
        # when the WAL writer flushes it (every wal_writer_delay, 200 ms by default).
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {commit}')
    dsn = f"{admin}/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((ROOT / "infra" / "postgres" / "commerce.sql").read_text())
        conn.execute((ROOT / "infra" / "postgres" / "cdc.sql").read_text())
    workload = Workload(dsn, seed)
    workload.seed(merchants=20, orders_per_merchant=50)
    # The probe's merchant: not in the workload's list, so the load never touches it.
    probe = uuid.uuid4()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO merchants (id, name, email, country, status) "
            "VALUES (%s, 'probe', 'probe@x.test', 'US', 'active')",
            (probe,),
        )
    return {
        "name": name,
        "dsn": dsn,
        "admin": admin,
        "workload": workload,
        "commit": commit,
        "probe": probe,
    }


def _register(env: dict[str, str], source: dict[str, Any]) -> None:
    import psycopg

    from optima_bi_mcp.cdc import connector

    name = source["name"]
    port = psycopg.conninfo.conninfo_to_dict(source["dsn"])["port"]
    config = connector.connector_config(
        database_port=str(port), database_dbname=name, topic_prefix=name, slot_name=name
    )
    connector.register(env["OPTIMA_BI_CONNECT_URL"], name, config)


def _drop_source(env: dict[str, str], source: dict[str, Any]) -> None:
    import psycopg
    from confluent_kafka.admin import AdminClient

    from optima_bi_mcp.cdc import connector
    from optima_bi_mcp.cdc.sink import change_topics

    connector.delete(env["OPTIMA_BI_CONNECT_URL"], source["name"])
    with psycopg.connect(f"{source['admin']}/postgres", autocommit=True) as conn:
        connector.drop_slot(conn, source["name"])
        conn.execute(f'DROP DATABASE IF EXISTS "{source["name"]}"')
    topics = [*change_topics(source["name"]), f"{source['name']}.dlq"]
    AdminClient({"bootstrap.servers": env["OPTIMA_BI_KAFKA_BOOTSTRAP"]}).delete_topics(topics)


def _settings(env: dict[str, str], source: dict[str, Any], group: str) -> Any:
    from optima_bi_mcp.settings import Settings

    return Settings(
        kafka_bootstrap=env["OPTIMA_BI_KAFKA_BOOTSTRAP"],
        kafka_topic_prefix=source["name"],
        kafka_group=group,
        dlq_topic=f"{source['name']}.dlq",
    )


class Recorder:
    """Every sample a sink histogram observes, kept exactly (per label, if it has labels).

    The sink stamps each event when its batch is visible to readers (rows and
    rollups written, change notice out) against the event's source commit time
    (`source.ts_ms`, same host clock): the stamped figures need no store query.
    """

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.samples: list[float] = []
        self.children: dict[str, Recorder] = {}

    def observe(self, seconds: float) -> None:
        self.samples.append(seconds)
        self.histogram.observe(seconds)

    def labels(self, label: str) -> Recorder:
        if label not in self.children:
            self.children[label] = Recorder(self.histogram.labels(label))
        return self.children[label]

    def clear(self) -> None:
        self.samples.clear()
        for child in self.children.values():
            child.clear()


# The sink's thread, and those its rollup refresh runs chains beside it on.
SINK_THREADS = ("cdc-sink", "rollups")


class StatementTimer:
    """Wraps a store's `insert`, `query` and `command` to time every statement the sink runs."""

    def __init__(self, store: Any) -> None:
        self.samples: dict[str, list[float]] = {}
        for name in ("insert", "query", "command"):
            setattr(store, name, self._timed(name, getattr(store, name)))

    def _timed(self, kind: str, call: Any) -> Any:
        def timed(sql_or_table: str, *args: Any, **kwargs: Any) -> Any:
            if not threading.current_thread().name.startswith(SINK_THREADS):
                return call(sql_or_table, *args, **kwargs)  # the probe's tool calls
            started = time.perf_counter()
            try:
                return call(sql_or_table, *args, **kwargs)
            finally:
                what = sql_or_table if kind == "insert" else _statement_name(sql_or_table)
                label = f"{kind} {what}"
                self.samples.setdefault(label, []).append(time.perf_counter() - started)

        return timed

    def clear(self) -> None:
        self.samples.clear()


PROBE_TOOL = "get_sales"


class Probe:
    """Source commit → visible in a tool's answer, for a merchant the load never touches.

    A thread commits one paid order of 1.00 for the probe merchant every
    `every_s` seconds and notes the time its commit returned. Another asks
    `get_sales` for the probe merchant's current UTC day through the MCP server
    (an in-memory MCP client, no cache), which reads the day from the
    `merchant_daily` rollup: at each change notice naming that merchant, and
    once a second while a probe order is unseen. An order counts as visible
    when the first answer that includes it returns (the answer's order count
    reaches its number), so the figure includes the wait for the store behind
    the sink and the tool call itself. About two calls a second, each a few
    store queries: a small share of the store's time beside the sink's.
    """

    def __init__(self, dsn: str, merchant: uuid.UUID, every_s: float = 0.5) -> None:
        self.dsn, self.merchant, self.every_s = dsn, merchant, every_s
        self.committed: list[float] = []
        self.latencies: list[float] = []
        self.calls = 0
        self.errors: list[str] = []
        self._seen = 0
        self._stop = threading.Event()
        self._notified = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, store: Any, bus: Any) -> None:
        bus.subscribe(self._on_notice)
        self._threads = [
            threading.Thread(target=self._write, name="probe-writer", daemon=True),
            threading.Thread(target=self._watch, args=(store, bus), name="probe", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop writing, and wait (at most 30 s) until every probe order was seen."""
        self._stop.set()
        self._threads[0].join()
        deadline = time.monotonic() + 30
        while self._seen < len(self.committed) and time.monotonic() < deadline:
            self._notified.set()
            threading.Event().wait(0.1)
        self._threads[1].join(timeout=5)

    def _on_notice(self, notice: Any) -> None:
        if self.merchant in notice.merchant_ids:
            self._notified.set()

    def _write(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.wait(self.every_s):
                n = len(self.committed) + 1
                conn.execute(
                    "INSERT INTO orders (id, merchant_id, order_number, customer_email, status, "
                    "amount_total, platform_fee, created_at, updated_at) "
                    "VALUES (%s, %s, %s, 'probe@x.test', 'paid', 1.00, 0.03, now(), now())",
                    (uuid.uuid4(), self.merchant, f"PROBE-{n}"),
                )
                self.committed.append(time.time())

    def _watch(self, store: Any, bus: Any) -> None:
        import anyio

        try:
            anyio.run(self._ask_until_stopped, store, bus)
        except Exception as exc:
            self.errors.append(repr(exc))

    async def _ask_until_stopped(self, store: Any, bus: Any) -> None:
        import anyio
        from mcp import Client

        from optima_bi_mcp.identity.principal import Principal
        from optima_bi_mcp.mcp.server import build_server, fixed_principal
        from optima_bi_mcp.settings import Settings

        principal = Principal(role="merchant", merchant_id=self.merchant, subject="probe")
        server = build_server(
            Settings(), store, principal_resolver=fixed_principal(principal), bus=bus
        )
        async with Client(server) as client:
            while not (self._stop.is_set() and self._seen >= len(self.committed)):
                await anyio.to_thread.run_sync(self._notified.wait, 1.0)
                self._notified.clear()
                if self._seen >= len(self.committed):
                    continue
                today = datetime.now(UTC).date().isoformat()
                result = await client.call_tool(PROBE_TOOL, {"start": today, "end": today})
                answered = time.time()
                self.calls += 1
                if result.is_error or not result.structured_content:
                    self.errors.append(str(result.content)[:200])
                    continue
                visible = min(int(result.structured_content["orders"]), len(self.committed))
                self.latencies += [answered - t for t in self.committed[self._seen : visible]]
                self._seen = max(self._seen, visible)

    def report(self) -> dict[str, Any]:
        return {
            "tool": PROBE_TOOL,
            "orders": len(self.committed),
            "seen": self._seen,
            "calls": self.calls,
            "errors": self.errors[:3],
        } | _percentiles(self.latencies)


def _statement_name(sql: str) -> str:
    """The table a statement writes (INSERT INTO t …) or first reads (… FROM t)."""
    words = sql.split()
    if words[:2] == ["INSERT", "INTO"]:
        return words[2]
    return words[words.index("FROM") + 1] if "FROM" in words else words[0]


def _run(env: dict[str, str], source: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="cdc-perf-"))
    try:
        return _measure(env, source, args, root)
    finally:
        # The stores of a run are hundreds of megabytes; the figures are in the report.
        shutil.rmtree(root, ignore_errors=True)


def _measure(
    env: dict[str, str], source: dict[str, Any], args: argparse.Namespace, root: Path
) -> dict[str, Any]:
    from optima_bi_mcp.cdc.sink import Sink
    from optima_bi_mcp.cdc.telemetry import SinkTelemetry
    from optima_bi_mcp.data.tables import TABLES
    from optima_bi_mcp.store import open_store

    store = open_store(f"chdb://{root}?database=latency")
    telemetry = SinkTelemetry()
    recorders = {
        name: Recorder(getattr(telemetry, name))
        for name in ("end_to_end", "event_stage", "batch_stage", "batch_size")
    }
    for name, recorder in recorders.items():
        setattr(telemetry, name, recorder)
    statements = StatementTimer(store)
    sink = Sink(_settings(env, source, f"{source['name']}-latency"), store, telemetry=telemetry)
    sink.start()
    _wait_caught_up(sink, source["dsn"])
    for recorder in recorders.values():
        recorder.clear()
    statements.clear()

    probe = Probe(source["dsn"], source["probe"], 1 / args.probe_rate)
    probe.start(store, sink.bus)
    load_before = os.getloadavg()
    steady = _steady(source, args.rate, args.seconds, args.writers)
    steady["load_average_1m"] = [round(load_before[0], 1), round(os.getloadavg()[0], 1)]
    probe.stop()
    steady["probe"] = probe.report()
    _wait_caught_up(sink, source["dsn"])
    # The mark's own events (one per table, applied last) are not part of the steady load.
    steady_samples = recorders["end_to_end"].samples[: -len(TABLES)]
    histogram = _sink_histogram(sink)
    breakdown = _breakdown(recorders, statements)
    sink.stop()
    breakdown["capture_split"] = _capture_split(env, source["name"], steady["window_ms"])

    _bulk_load(source["dsn"], args.bulk_orders)
    # The sink's rate, not Debezium's: start only once Kafka holds the whole load.
    _wait_in_kafka(env, source["name"], source["dsn"])
    bulk_store = open_store(f"chdb://{root}?database=bulk")
    bulk_sink = Sink(_settings(env, source, f"{source['name']}-bulk"), bulk_store)
    started = time.monotonic()
    bulk_sink.start()
    _wait_caught_up(bulk_sink, source["dsn"], timeout=1800)
    elapsed = time.monotonic() - started
    events = bulk_sink.status()["events"]
    bulk_sink.stop()
    bulk_steps = _step_totals(bulk_sink)
    bulk_store.close()
    store.close()
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["perf/cdc_latency.py", *sys.argv[1:]]),
        "steady": steady
        | _percentiles(steady_samples)
        | {"sink_histogram": histogram, "breakdown": breakdown},
        "bulk": {
            "orders": args.bulk_orders,
            "events": events,
            "seconds": round(elapsed, 2),
            "events_per_second": round(events / elapsed, 1),
            "step_seconds": bulk_steps,
        },
    }


def _steady(source: dict[str, Any], rate: float, seconds: float, writers: int) -> dict[str, Any]:
    """`rate` new-order transactions per second from `writers` connections, on a schedule.

    The writers run in a process of their own, as an application would: threads
    in the sink's process would share its interpreter lock and slow both. Each
    writer records how late each transaction started against its slot; a late
    start means the generator, not the pipeline, fell behind.
    """
    import multiprocessing

    total = int(rate * seconds)
    events_before = _count_events(source["dsn"])
    workload = source["workload"]
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    generator = spawn.Process(
        target=_generate,
        args=(source["dsn"], workload, rate, total, writers, results),
    )
    started = time.monotonic()
    started_ms = int(time.time() * 1000)
    generator.start()
    lateness, errors = results.get()
    generator.join()
    if errors:
        sys.exit(f"a writer failed: {errors[0]}")
    achieved = total / (time.monotonic() - started)
    late = _percentiles(lateness)
    return {
        "target_rate": rate,
        "achieved_rate": round(achieved, 1),
        "writers": writers,
        "transactions": total,
        "events": _count_events(source["dsn"]) - events_before,
        "start_lateness_ms": {k: v for k, v in late.items() if k.endswith("_ms")},
        "source_commit": source["commit"],
        "window_ms": [started_ms, int(time.time() * 1000)],
    }


def _generate(
    dsn: str,
    seeded: Any,
    rate: float,
    total: int,
    writers: int,
    results: Any,
) -> None:
    """The generator process: `writers` threads share the schedule of `total` transactions."""
    sys.path.insert(0, str(ROOT))
    from tests.cdc.workload import Workload

    workload = Workload(dsn, seed=total)
    workload.merchants, workload.products = seeded.merchants, seeded.products
    workload.orders = seeded.orders  # order numbers stay unique per merchant
    started = time.monotonic()
    lateness: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(
            target=_write_orders,
            args=(workload, dsn, rate, started, range(k, total, writers), lateness, errors),
        )
        for k in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((lateness, errors))


def _write_orders(
    workload: Any,
    dsn: str,
    rate: float,
    started: float,
    slots: range,
    lateness: list[float],
    errors: list[str],
) -> None:
    import psycopg

    pause = threading.Event()
    try:
        with psycopg.connect(dsn) as conn:
            for n in slots:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    pause.wait(delay)
                lateness.append(max(0.0, -delay))
                workload.new_order(conn)
    except Exception as exc:
        errors.append(repr(exc))


def _count_events(dsn: str) -> int:
    """Row changes written so far: inserts + updates + deletes of the seven tables."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables"
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _percentiles(latencies: list[float]) -> dict[str, Any]:
    if len(latencies) < 2:
        return {"measured": len(latencies)}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "measured": len(latencies),
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def _breakdown(recorders: dict[str, Recorder], statements: StatementTimer) -> dict[str, Any]:
    """Per-event stages, per-batch steps and per-statement times of the steady phase."""
    from optima_bi_mcp.cdc.telemetry import BATCH_STAGES, EVENT_STAGES

    def cut(samples: list[float]) -> dict[str, Any]:
        return {k: v for k, v in _percentiles(samples).items() if k != "max_ms"}

    events = recorders["event_stage"].children
    steps = recorders["batch_stage"].children
    sizes = recorders["batch_size"].samples
    batches = len(sizes)
    return {
        "event_stages": {s: cut(events[s].samples) for s in EVENT_STAGES if s in events},
        "batch_steps": {s: cut(steps[s].samples) for s in BATCH_STAGES if s in steps},
        "batches": batches,
        "batch_size": {"mean": round(sum(sizes) / max(1, batches), 1)} | _size_cuts(sizes),
        "statements_per_batch": round(
            sum(map(len, statements.samples.values())) / max(1, batches), 1
        ),
        "statements": {
            name: {"count": len(times)} | cut(times)
            for name, times in sorted(statements.samples.items())
        },
    }


def _size_cuts(sizes: list[float]) -> dict[str, float]:
    if len(sizes) < 2:
        return {}
    cuts = statistics.quantiles(sizes, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94]}


def _capture_split(env: dict[str, str], prefix: str, window_ms: list[int]) -> dict[str, Any]:
    """The capture stage split at Debezium's processing time, from the orders topic.

    `debezium`: source commit -> the connector processed the change (payload
    `ts_ms`: WAL flush, logical decoding, the replication stream); `connect`:
    then -> the Kafka record timestamp (Connect's poll, conversion, producer).
    """
    from confluent_kafka import Consumer, TopicPartition

    topic = f"{prefix}.public.orders"
    consumer = Consumer(
        {"bootstrap.servers": env["OPTIMA_BI_KAFKA_BOOTSTRAP"], "group.id": f"{prefix}-split"}
    )
    lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, lo)])
    debezium: list[float] = []
    connect: list[float] = []
    seen = lo
    while seen < hi:
        messages = consumer.consume(1000, timeout=5)
        if not messages:
            break
        for message in messages:
            seen = (message.offset() or 0) + 1
            value = message.value()
            if not value:
                continue
            payload = json.loads(value)["payload"]
            committed = payload["source"]["ts_ms"]
            if not window_ms[0] <= committed <= window_ms[1]:
                continue
            debezium.append((payload["ts_ms"] - committed) / 1000)
            connect.append((message.timestamp()[1] - payload["ts_ms"]) / 1000)
    consumer.close()
    return {"debezium": _percentiles(debezium), "connect": _percentiles(connect)}


def _step_totals(sink: Any) -> dict[str, float]:
    """Seconds the sink spent in each batch step, summed over its batches."""
    out = {}
    for metric in sink.telemetry.registry.collect():
        if metric.name == "optima_bi_sink_batch_stage_seconds":
            for sample in metric.samples:
                if sample.name.endswith("_sum"):
                    out[sample.labels["stage"]] = round(sample.value, 2)
    return out


def _sink_histogram(sink: Any) -> dict[str, float]:
    """The sink's own end-to-end histogram (source commit → applied), cumulative buckets."""
    out = {}
    for metric in sink.telemetry.registry.collect():
        if metric.name == "optima_bi_sink_end_to_end_seconds":
            for sample in metric.samples:
                if sample.name.endswith("_bucket"):
                    out[f"le_{sample.labels['le']}"] = sample.value
    return out


def _bulk_load(dsn: str, orders: int) -> None:
    """`orders` orders with two items each, in one transaction of plain SQL."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(
            """
            WITH m AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM merchants),
                 c AS (SELECT count(*) AS k FROM merchants),
                 o AS (
                    INSERT INTO orders (id, merchant_id, order_number, customer_email, status,
                                        amount_total, platform_fee, created_at, updated_at)
                    SELECT gen_random_uuid(), m.id, 'BULK-' || g, 'bulk' || (g %% 500) || '@x',
                           'paid', 20.00, 0.58, now() - (g %% 80) * interval '1 day', now()
                    FROM generate_series(1, %(orders)s) g
                    JOIN c ON true JOIN m ON m.n = g %% c.k
                    RETURNING id, merchant_id, created_at)
            INSERT INTO order_items (id, order_id, merchant_id, product_id, quantity,
                                     unit_price, amount, created_at)
            SELECT gen_random_uuid(), o.id, o.merchant_id, p.id, 1, 10.00, 10.00, o.created_at
            FROM o JOIN LATERAL (SELECT id FROM products WHERE merchant_id = o.merchant_id
                                 ORDER BY id LIMIT 2) p ON true
            """,
            {"orders": orders},
        )


def _wait_in_kafka(env: dict[str, str], prefix: str, dsn: str, timeout: float = 1800) -> None:
    """Wait until every change topic's newest record is at or past a fresh mark."""
    from confluent_kafka import Consumer, TopicPartition

    from optima_bi_mcp.cdc.sink import change_topics
    from tests.cdc.workload import mark

    lsn = mark(dsn)
    consumer = Consumer(
        {"bootstrap.servers": env["OPTIMA_BI_KAFKA_BOOTSTRAP"], "group.id": f"{prefix}-wait"}
    )
    deadline = time.monotonic() + timeout
    pending = set(change_topics(prefix))
    while pending:
        if time.monotonic() > deadline:
            sys.exit(f"Debezium did not publish the bulk load within {timeout}s: {pending}")
        for topic in sorted(pending):
            if _newest_lsn(consumer, TopicPartition(topic, 0)) >= lsn:
                pending.discard(topic)
        threading.Event().wait(0.2)
    consumer.close()


def _newest_lsn(consumer: Any, partition: Any) -> int:
    """`source.lsn` of a partition's newest record (0 if none or not a change event)."""
    _, high = consumer.get_watermark_offsets(partition, timeout=10)
    if high <= 0:
        return 0
    partition.offset = high - 1
    consumer.assign([partition])
    messages = consumer.consume(1, timeout=5)
    value = messages[0].value() if messages else None
    if not value:
        return 0
    return int(json.loads(value)["payload"]["source"]["lsn"])


def _wait_caught_up(sink: Any, dsn: str, timeout: float = 300) -> None:
    from optima_bi_mcp.data.tables import TABLES
    from tests.cdc.workload import mark

    lsn = mark(dsn)
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        applied = sink.status()["applied_lsn"]
        if all(applied.get(t.name, 0) >= lsn for t in TABLES):
            return
        if time.monotonic() > deadline:
            sys.exit(f"the sink did not catch up within {timeout}s: {sink.status()}")
        pause.wait(0.1)


def _write(report: dict[str, Any]) -> None:
    out = ROOT / "perf" / "out"
    out.mkdir(parents=True, exist_ok=True)
    stamp = report["at"].replace(":", "").replace("-", "")
    (out / f"cdc_latency-{stamp}.json").write_text(json.dumps(report, indent=2))
    steady, bulk = report["steady"], report["bulk"]
    lines = [
        f"# CDC latency and throughput ({report['at']})",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Steady: {steady['transactions']} transactions ({steady['events']} row changes) at "
        f"{steady['achieved_rate']}/s (target {steady['target_rate']}/s); source commit → "
        "applied in the store, per change: "
        f"p50 {steady.get('p50_ms')} ms, p95 {steady.get('p95_ms')} ms, "
        f"p99 {steady.get('p99_ms')} ms, max {steady.get('max_ms')} ms "
        f"({steady['measured']} measured; machine load average "
        f"{steady['load_average_1m']} before/after, 2 cores; source synchronous_commit "
        f"{steady['source_commit']}). Generator start lateness "
        f"against the schedule: {steady['start_lateness_ms']}.",
        "",
        f"Probe: source commit → visible in a `{steady['probe']['tool']}` answer through the "
        f"MCP server, {steady['probe'].get('measured', 0)} of {steady['probe']['orders']} "
        f"probe orders: p50 {steady['probe'].get('p50_ms')} ms, "
        f"p95 {steady['probe'].get('p95_ms')} ms, p99 {steady['probe'].get('p99_ms')} ms, "
        f"max {steady['probe'].get('max_ms')} ms ({steady['probe']['calls']} tool calls; "
        f"errors {steady['probe']['errors']}).",
        "",
        f"Bulk: {bulk['events']} events in {bulk['seconds']} s = "
        f"{bulk['events_per_second']} events/s (fresh consumer group, from offset 0); "
        f"seconds per step: {bulk['step_seconds']}.",
    ]
    lines += ["", *_breakdown_lines(steady["breakdown"])]
    (out / f"cdc_latency-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _breakdown_lines(breakdown: dict[str, Any]) -> list[str]:
    """The stage breakdown as a Markdown table (p50/p95/p99 in ms)."""

    def row(kind: str, name: str, cuts: dict[str, Any]) -> str:
        figures = " | ".join(str(cuts.get(k, "")) for k in ("p50_ms", "p95_ms", "p99_ms"))
        return f"| {kind} | {name} | {cuts.get('measured', cuts.get('count', ''))} | {figures} |"

    lines = [
        f"Batches: {breakdown['batches']}, size {breakdown['batch_size']}, "
        f"{breakdown['statements_per_batch']} store statements per batch.",
        "",
        "| per | stage | n | p50 ms | p95 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [row("event", k, v) for k, v in breakdown["event_stages"].items()]
    lines += [row("capture", k, v) for k, v in breakdown.get("capture_split", {}).items()]
    lines += [row("batch", k, v) for k, v in breakdown["batch_steps"].items()]
    lines += [row("statement", k, v) for k, v in breakdown["statements"].items()]
    return lines


if __name__ == "__main__":
    sys.exit(main())
