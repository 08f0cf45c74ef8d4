"""Throughput over streamable HTTP: N concurrent MCP sessions against `optima-bi serve --http`.

The server runs as it is deployed embedded (`serve --http --as admin`, L1
cache on) in its own process on a free loopback port, restarted for every
level of concurrency so each level starts from a cold cache. The sessions all
connect first; then, together, each calls tools from a realistic mix in a loop
until the time is up. Client and server share the machine's cores, so the
CPU time of each is reported beside the figures.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp.client import Client

from perf.stats import percentile

ROOT = Path(__file__).resolve().parents[1]

# (tool, weight): merchants asking about their shop dominate; admins look at the platform.
MIX: tuple[tuple[str, int], ...] = (
    ("get_sales", 30),
    ("top_products", 15),
    ("customer_summary", 10),
    ("churned_customers", 5),
    ("inventory_status", 10),
    ("whoami", 5),
    ("platform_overview", 8),
    ("platform_merchants", 7),
    ("platform_mrr", 5),
    ("platform_revenue", 5),
)
DAYS = ((7, 40), (30, 35), (90, 15), (365, 10))


def mix_call(rng: random.Random, merchants: list[str]) -> tuple[str, dict[str, Any]]:
    """One call of the mix: a tool and arguments an assistant would send."""
    tool = rng.choices([t for t, _ in MIX], [w for _, w in MIX])[0]
    days = rng.choices([d for d, _ in DAYS], [w for _, w in DAYS])[0]
    merchant = {"merchant_id": rng.choice(merchants)}
    if tool in ("get_sales", "top_products", "customer_summary"):
        return tool, merchant | {"days": days}
    if tool in ("churned_customers", "inventory_status"):
        return tool, merchant
    if tool == "platform_revenue":
        return tool, {"days": rng.choice((30, 365))}
    if tool == "platform_merchants":
        return tool, {"segment": rng.choice(("top", "active", "sleeping", "churned"))}
    return tool, {}


@dataclass
class LoadResult:
    """What one level of concurrency did within its window of `seconds`."""

    sessions: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    in_window: int = 0  # calls answered before the deadline
    unfinished: int = 0  # calls still unanswered when the run was stopped
    errors: dict[str, int] = field(default_factory=dict)
    layers: dict[str, int] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    connect_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "seconds": self.seconds,
            "calls": self.in_window,
            "calls_per_s": self.in_window / self.seconds if self.seconds else 0.0,
            "p50_ms": percentile(self.latencies_ms, 50),
            "p99_ms": percentile(self.latencies_ms, 99),
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "unfinished": self.unfinished,
            "cache_layers": self.layers,
            "client_cpu_s": self.client_cpu_s,
            "server_cpu_s": self.server_cpu_s,
            "connect_s": self.connect_s,
        }


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(store_dsn: str, log_path: Path, timeout_s: float = 120) -> Iterator[tuple[str, int]]:
    """`optima-bi serve --http --as admin` on a free loopback port; yields (url, pid)."""
    port = free_port()
    # Logging at the default level (INFO, one line per call), as a deployed server logs.
    command = [sys.executable, "-m", "optima_bi_mcp.cli", "serve"]
    command += ["--http", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--as", "admin", "--store", store_dsn]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process, timeout_s)
        yield f"http://127.0.0.1:{port}/mcp", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(base: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the server at {base} was not ready within {timeout_s:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- the load


async def run_load(
    url: str, server_pid: int, sessions: int, seconds: float, merchants: list[str], seed: int
) -> LoadResult:
    """`sessions` MCP sessions calling the mix for `seconds`, all starting together.

    Calls in flight at the deadline get `seconds / 2` more to finish (their
    latency counts, not their throughput); whatever is still unanswered then is
    cancelled and reported as unfinished.
    """
    result = LoadResult(sessions=sessions, seconds=seconds)
    all_connected, go, all_done = anyio.Event(), anyio.Event(), anyio.Event()
    window: dict[str, float] = {"inflight": 0}
    counts = {"connected": 0, "done": 0}

    def tally(key: str, event: anyio.Event) -> None:
        counts[key] += 1
        if counts[key] == sessions:
            event.set()

    async def session(index: int) -> None:
        rng = random.Random(seed * 100_003 + index)
        try:
            async with Client(url, cache=None, read_timeout_seconds=120) as client:
                tally("connected", all_connected)
                await go.wait()
                await _loop(client, rng, merchants, window, result)
        except Exception as exc:  # a failed session is an error of the run, not a crash
            _count(result.errors, f"session: {_describe(exc)}")
            if not all_connected.is_set():
                tally("connected", all_connected)
        finally:
            tally("done", all_done)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for index in range(sessions):
            tg.start_soon(session, index)
        await all_connected.wait()
        result.connect_s = time.perf_counter() - started
        cpu_client, cpu_server = own_cpu_seconds(), cpu_seconds(server_pid)
        window["deadline"] = time.monotonic() + seconds
        go.set()
        with anyio.move_on_after(seconds * 1.5):
            await all_done.wait()
        result.unfinished = int(window["inflight"])
        result.client_cpu_s = own_cpu_seconds() - cpu_client
        result.server_cpu_s = cpu_seconds(server_pid) - cpu_server
        tg.cancel_scope.cancel()
    return result


def _count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:60]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _loop(
    client: Client,
    rng: random.Random,
    merchants: list[str],
    window: dict[str, float],
    out: LoadResult,
) -> None:
    while time.monotonic() < window["deadline"]:
        tool, arguments = mix_call(rng, merchants)
        started = time.perf_counter()
        window["inflight"] += 1
        try:
            answer = await client.call_tool(tool, arguments)
        except Exception as exc:
            _count(out.errors, f"{tool}: {_describe(exc)}")
            continue
        finally:
            window["inflight"] -= 1
        out.latencies_ms.append((time.perf_counter() - started) * 1000)
        if time.monotonic() <= window["deadline"]:
            out.in_window += 1
        if answer.is_error:
            _count(out.errors, f"{tool}: error result")
        _count(out.layers, str((answer.meta or {}).get("cache", "?")))


def measure(
    store_dsn: str, levels: list[int], seconds: float, merchants: list[str], out_dir: Path
) -> list[dict[str, Any]]:
    """Run every level of concurrency against a fresh server; returns one summary each."""
    summaries = []
    for sessions in levels:
        with server(store_dsn, out_dir / "server.log") as (url, pid):
            result = anyio.run(run_load, url, pid, sessions, seconds, merchants, sessions)
        summaries.append(result.summary())
    return summaries
