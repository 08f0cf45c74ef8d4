"""CDC benchmark: commit-to-visible latency at a steady rate, and bulk sink throughput.

    .venv/bin/python perf/cdc_latency.py [--rate 200] [--seconds 60] [--bulk-orders 20000]

Needs the streaming stack (it runs `infra/stack/up`). It creates its own source
database and connector, streams it into an embedded store through an
in-process sink, and measures:

1. Latency: `--rate` transactions per second (a new order with 1-3 items and
   stock moves each) for `--seconds`; for each order, the time from its
   commit returning in PostgreSQL to its row being readable in the store
   (checked after every applied batch). Reports p50/p95/p99 (target p95 < 1 s).
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
    source = _make_source(env, args.seed)
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
    return parser


def _stack_up() -> dict[str, str]:
    run = subprocess.run([str(ROOT / "infra" / "stack" / "up")], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"infra/stack/up failed:\n{run.stderr[-4000:]}")
    return dict(line.split("=", 1) for line in run.stdout.split() if "=" in line)


def _make_source(env: dict[str, str], seed: int) -> dict[str, Any]:
    import psycopg

    from tests.cdc.workload import Workload

    name = f"perf_{uuid.uuid4().hex[:8]}"
    admin = env["OPTIMA_BI_SOURCE"].rsplit("/", 1)[0]
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{admin}/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((ROOT / "infra" / "postgres" / "commerce.sql").read_text())
        conn.execute((ROOT / "infra" / "postgres" / "cdc.sql").read_text())
    workload = Workload(dsn, seed)
    workload.seed(merchants=20, orders_per_merchant=50)
    return {"name": name, "dsn": dsn, "admin": admin, "workload": workload}


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
    """Every end-to-end sample the sink observes (source commit → applied), kept exactly.

    The sink measures each event when its batch is durable in the store, against
    the event's source commit time (`source.ts_ms`, same host clock), so no
    extra store query competes with the sink for the embedded engine.
    """

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.samples: list[float] = []
        self.errors: list[str] = []

    def observe(self, seconds: float) -> None:
        self.samples.append(seconds)
        self.histogram.observe(seconds)


def _run(env: dict[str, str], source: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    from optima_bi_mcp.cdc.sink import Sink
    from optima_bi_mcp.cdc.telemetry import SinkTelemetry
    from optima_bi_mcp.data.tables import TABLES
    from optima_bi_mcp.store import open_store

    root = Path(tempfile.mkdtemp(prefix="cdc-perf-"))
    store = open_store(f"chdb://{root}?database=latency")
    telemetry = SinkTelemetry()
    recorder = Recorder(telemetry.end_to_end)
    telemetry.end_to_end = recorder  # type: ignore[assignment]
    sink = Sink(_settings(env, source, f"{source['name']}-latency"), store, telemetry=telemetry)
    sink.start()
    _wait_caught_up(sink, source["dsn"])
    recorder.samples.clear()

    load_before = os.getloadavg()
    steady = _steady(source, recorder, args.rate, args.seconds, args.writers)
    steady["load_average_1m"] = [round(load_before[0], 1), round(os.getloadavg()[0], 1)]
    _wait_caught_up(sink, source["dsn"])
    # The mark's own events (one per table, applied last) are not part of the steady load.
    steady_samples = recorder.samples[: -len(TABLES)]
    histogram = _sink_histogram(sink)
    sink.stop()

    _bulk_load(source["dsn"], args.bulk_orders)
    bulk_store = open_store(f"chdb://{root}?database=bulk")
    bulk_sink = Sink(_settings(env, source, f"{source['name']}-bulk"), bulk_store)
    started = time.monotonic()
    bulk_sink.start()
    _wait_caught_up(bulk_sink, source["dsn"], timeout=1800)
    elapsed = time.monotonic() - started
    events = bulk_sink.status()["events"]
    bulk_sink.stop()
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["perf/cdc_latency.py", *sys.argv[1:]]),
        "steady": steady | _percentiles(steady_samples) | {"sink_histogram": histogram},
        "bulk": {
            "orders": args.bulk_orders,
            "events": events,
            "seconds": round(elapsed, 2),
            "events_per_second": round(events / elapsed, 1),
        },
    }


def _steady(
    source: dict[str, Any], recorder: Recorder, rate: float, seconds: float, writers: int
) -> dict[str, Any]:
    """`rate` new-order transactions per second from `writers` connections, on a schedule."""
    total = int(rate * seconds)
    events_before = _count_events(source["dsn"])
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=_write_orders, args=(source, recorder, rate, started, range(k, total, writers))
        )
        for k in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if recorder.errors:
        sys.exit(f"a writer failed: {recorder.errors[0]}")
    achieved = total / (time.monotonic() - started)
    return {
        "target_rate": rate,
        "achieved_rate": round(achieved, 1),
        "writers": writers,
        "transactions": total,
        "events": _count_events(source["dsn"]) - events_before,
    }


def _count_events(dsn: str) -> int:
    """Row changes written so far: inserts + updates + deletes of the seven tables."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables"
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _write_orders(
    source: dict[str, Any], recorder: Recorder, rate: float, started: float, slots: range
) -> None:
    import psycopg

    pause = threading.Event()
    try:
        with psycopg.connect(source["dsn"]) as conn:
            for n in slots:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    pause.wait(delay)
                source["workload"].new_order(conn)
    except Exception as exc:
        recorder.errors.append(repr(exc))


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
        f"{steady['load_average_1m']} before/after, 2 cores).",
        "",
        f"Bulk: {bulk['events']} events in {bulk['seconds']} s = "
        f"{bulk['events_per_second']} events/s (fresh consumer group, from offset 0).",
    ]
    (out / f"cdc_latency-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
