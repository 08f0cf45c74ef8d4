"""A sink process killed (SIGKILL) or stopped (SIGTERM) mid-stream and restarted loses and
doubles nothing.

The sink runs as `optima-bi sink` subprocesses on their own embedded store.
The test process cannot open that store (chDB allows one engine path per
process and this process holds the session's), so it watches the sink through
its Prometheus endpoint and reads the store, once the last sink has exited,
through `tests/cdc/dumps.py` in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from optima_bi_mcp.data.tables import TABLES
from tests.cdc.conftest import CdcSource
from tests.cdc.dumps import differences, dump_source
from tests.cdc.workload import mark

pytestmark = pytest.mark.stack

DUMPS = Path(__file__).with_name("dumps.py")
TIMEOUT_S = 300.0


class SinkProcess:
    """One `optima-bi sink` subprocess with its metrics endpoint and log file."""

    def __init__(self, source: CdcSource, store_dsn: str, log_path: Path) -> None:
        settings = source.settings()
        self.port = _free_port()
        self.log_path = log_path
        env = os.environ | {
            "OPTIMA_BI_DLQ_TOPIC": settings.dlq_topic,
            "OPTIMA_BI_SINK_BATCH_MS": "100",
        }
        command = [
            sys.executable,
            "-m",
            "optima_bi_mcp.cli",
            "sink",
            "--store",
            store_dsn,
            "--bootstrap",
            settings.kafka_bootstrap,
            "--group",
            settings.kafka_group,
            "--topic-prefix",
            settings.kafka_topic_prefix,
            "--metrics-port",
            str(self.port),
        ]
        with log_path.open("a") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)

    def applied_lsn(self) -> dict[str, float]:
        """The sink's `optima_bi_sink_applied_lsn` per table ({} until it serves metrics)."""
        if self.process.poll() is not None:
            pytest.fail(f"sink exited {self.process.returncode}:\n{self.log_tail()}")
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        except httpx.TransportError:
            return {}
        return {
            sample.labels["table"]: sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "optima_bi_sink_applied_lsn"
            for sample in family.samples
        }

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-40:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        pause.wait(0.2)


@pytest.mark.parametrize(
    "stop",
    [signal.SIGKILL, signal.SIGTERM],
    ids=["killed", "stopped"],
)
def test_killed_and_restarted_sink_leaves_the_store_exact(
    make_cdc_source: Callable[..., CdcSource], tmp_path: Path, stop: signal.Signals
) -> None:
    """`stop` twice mid-stream, restart each time; the final store equals the source.

    A stopped sink drains the batch in hand and leaves the messages it polled ahead
    uncommitted, so its successor reads them again.
    """
    source = make_cdc_source(seed=5)
    store_dsn = f"chdb://{tmp_path / 'store'}?database=optima"
    log_path = tmp_path / "sink.log"
    sinks = [SinkProcess(source, store_dsn, log_path)]
    wait_until(lambda: bool(sinks[-1].applied_lsn()), "the first sink to apply the snapshot")

    def kill_and_restart(n: int) -> None:
        if n in (300, 900):
            # Stopped once it has applied changes: mid-stream, not while starting up.
            wait_until(lambda: bool(sinks[-1].applied_lsn()), "the sink to apply changes")
            sinks[-1].process.send_signal(stop)
            sinks[-1].process.wait(60)
            sinks.append(SinkProcess(source, store_dsn, log_path))

    source.workload.run(1_500, each=kill_and_restart)
    lsn = mark(source.dsn)
    last = sinks[-1]
    wait_until(
        lambda: all(last.applied_lsn().get(t.name, 0) >= lsn for t in TABLES),
        f"the restarted sink to apply LSN {lsn}",
    )
    last.process.send_signal(signal.SIGTERM)
    assert last.process.wait(60) == 0, last.log_tail()

    dumped = subprocess.run(
        [sys.executable, str(DUMPS), store_dsn], capture_output=True, text=True, timeout=300
    )
    assert dumped.returncode == 0, dumped.stderr[-3000:]
    assert differences(dump_source(source.dsn), json.loads(dumped.stdout)) == {}
    ended = 0 if stop == signal.SIGTERM else -stop
    assert [s.process.returncode for s in sinks] == [ended, ended, 0]
