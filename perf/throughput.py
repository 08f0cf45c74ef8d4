"""Throughput over streamable HTTP: N concurrent MCP sessions against `optima-bi serve --http`.

The server runs as it is deployed embedded (`serve --http --as admin`, L1
cache on) in its own process on a free loopback port, restarted for every
level of concurrency. The sessions all connect first; then, together, each
calls tools from the mix in a loop: `WARMUP_S` seconds uncounted, so the cache
holds what this traffic keeps warm, then the measured window. The mix is Zipf
over merchants, tools and periods, so popular questions repeat and the tail
does not; the share answered from the cache is reported with the figures.
Client and server share the machine's cores, so the CPU time of each is
reported beside them.

The sessions are spoken by `McpHttpSession`, a deliberately small MCP client:
initialize, notifications/initialized, the `Mcp-Session-Id` header on every
later request, tools/call, and DELETE at the end, as the streamable HTTP
transport defines them, over one keep-alive HTTP/1.1 connection per session.
It reads JSON and SSE answers alike. The SDK's client cost the load generator
several milliseconds of CPU per call, taken from the server being measured on
a small machine; this one costs about 0.2 ms.

    python -m perf.throughput --store DSN [--sessions 10,50,200] [--seconds 20] [--warmup 10]
    python -m perf.throughput --url http://127.0.0.1:PORT/mcp --pid PID   # a running server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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
from urllib.parse import urlsplit

import httpx

from perf.stats import percentile, zipf_weights

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_VERSION = "2025-11-25"
ZIPF_S = 1.1
# Seconds of the mix before each measured window (see `run_load`).
WARMUP_S = 10.0

# Tools in order of popularity, Zipf-weighted: merchants asking about their shop
# dominate; administrators look at the platform now and then.
TOOLS = (
    "get_sales",
    "top_products",
    "customer_summary",
    "inventory_status",
    "platform_overview",
    "churned_customers",
    "platform_merchants",
    "whoami",
    "platform_revenue",
    "platform_mrr",
)
PERIOD_DAYS = (7, 30, 90, 365)
SEGMENTS = ("top", "active", "sleeping", "churned")


@dataclass
class Mix:
    """Draws the calls of a population of assistants: Zipf over merchants, tools and periods.

    Merchants are ranked in a shuffled order (fixed by `seed`), so popularity
    is not tied to size; every session draws from the same popularity ranking.
    """

    merchants: list[str]
    seed: int
    _ranked: list[str] = field(init=False)
    _merchant_w: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self._ranked = list(self.merchants)
        random.Random(self.seed).shuffle(self._ranked)
        self._merchant_w = zipf_weights(len(self._ranked), ZIPF_S)

    def call(self, rng: random.Random) -> tuple[str, dict[str, Any]]:
        """One call: a tool and the arguments an assistant would send."""
        tool = rng.choices(TOOLS, _TOOL_W)[0]
        days = rng.choices(PERIOD_DAYS, _PERIOD_W)[0]
        if tool.startswith("platform_"):
            if tool == "platform_revenue":
                return tool, {"days": days}
            if tool == "platform_merchants":
                return tool, {"segment": rng.choices(SEGMENTS, _SEGMENT_W)[0]}
            return tool, {}
        if tool == "whoami":
            return tool, {}
        merchant = {"merchant_id": rng.choices(self._ranked, self._merchant_w)[0]}
        if tool in ("get_sales", "top_products", "customer_summary"):
            return tool, merchant | {"days": days}
        return tool, merchant


_TOOL_W = zipf_weights(len(TOOLS), ZIPF_S)
_PERIOD_W = zipf_weights(len(PERIOD_DAYS), ZIPF_S)
_SEGMENT_W = zipf_weights(len(SEGMENTS), ZIPF_S)


# ---------------------------------------------------------------- the client


class McpHttpError(Exception):
    """The server answered a request with an HTTP or JSON-RPC error."""


class McpHttpSession:
    """One MCP session over streamable HTTP, on one keep-alive HTTP/1.1 connection."""

    def __init__(self, url: str, timeout_s: float = 120) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.authority = parts.netloc
        self.timeout_s = timeout_s
        self.session_id: str | None = None
        self._next_id = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Connect, initialize and confirm with notifications/initialized."""
        await self._connect()
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "optima-bi-throughput", "version": "1"},
        }
        _, headers, _ = await self._post(self._request("initialize", params))
        self.session_id = headers.get("mcp-session-id")
        if not self.session_id:
            raise McpHttpError("initialize answered without an Mcp-Session-Id")
        status, _, _ = await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status != 202:
            raise McpHttpError(f"notifications/initialized answered HTTP {status}")

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The result of tools/call (a tool error is a result with isError, not an exception)."""
        _, _, message = await self._post(
            self._request("tools/call", {"name": name, "arguments": arguments})
        )
        if message is None or "result" not in message:
            raise McpHttpError(f"tools/call answered {str(message)[:80]}")
        return message["result"]  # type: ignore[no-any-return]

    async def close(self) -> None:
        """End the session (DELETE) and the connection, quietly: the run is over."""
        with contextlib.suppress(OSError, McpHttpError, asyncio.IncompleteReadError):
            if self.session_id and self._writer is not None:
                await asyncio.wait_for(self._send(b"DELETE", b""), 5)
        if self._writer is not None:
            self._writer.close()

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        return {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def _post(self, message: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        body = json.dumps(message, separators=(",", ":")).encode()
        status, headers, payload = await asyncio.wait_for(self._send(b"POST", body), self.timeout_s)
        if status >= 400:
            raise McpHttpError(f"HTTP {status}: {payload[:80]!r}")
        if not payload:
            return status, headers, None
        if headers.get("content-type", "").startswith("text/event-stream"):
            return status, headers, _answer_in_events(payload, message.get("id"))
        return status, headers, json.loads(payload)

    async def _send(self, method: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self._writer is None or self._writer.is_closing():
            await self._connect()
        assert self._reader is not None and self._writer is not None
        head = [
            b"%s %s HTTP/1.1" % (method, self.path.encode()),
            b"Host: " + self.authority.encode(),
            b"Accept: application/json, text/event-stream",
            b"Content-Type: application/json",
            b"Content-Length: %d" % len(body),
        ]
        if self.session_id:
            head.append(b"Mcp-Session-Id: " + self.session_id.encode())
            head.append(b"Mcp-Protocol-Version: " + PROTOCOL_VERSION.encode())
        self._writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        try:
            status, headers, payload = await _read_response(self._reader)
        except BaseException:
            # Cancelled or failed half way, the rest of this answer would be read as
            # the next one's: the next request gets a new connection instead.
            self._writer.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self._writer.close()
        return status, headers, payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response: status, lower-cased headers and the body (sized or chunked)."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise McpHttpError(f"not an HTTP/1.1 status line: {lines[0][:40]!r}")
    status = int(rest[:3])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return status, headers, b""
    chunks = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        chunks.append((await reader.readexactly(size + 2))[:-2])
    await reader.readuntil(b"\r\n")  # the blank line after the last chunk (no trailers)
    return status, headers, b"".join(chunks)


def _answer_in_events(payload: bytes, request_id: Any) -> Any:
    """The JSON-RPC answer to `request_id` among the events of an SSE body."""
    for event in payload.decode().replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(
            line[5:].lstrip() for line in event.split("\n") if line.startswith("data:")
        )
        if data:
            message = json.loads(data)
            if message.get("id") == request_id:
                return message
    return None


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

    def hit_share(self) -> float:
        """Share of answered calls served from a cache layer (whoami never is)."""
        hits = sum(n for layer, n in self.layers.items() if layer not in ("none", "?"))
        return hits / sum(self.layers.values()) if self.layers else 0.0

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
            "cache_hit_share": self.hit_share(),
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
    url: str,
    server_pid: int,
    sessions: int,
    seconds: float,
    mix: Mix,
    seed: int,
    warmup_s: float = 0.0,
) -> LoadResult:
    """`sessions` MCP sessions calling the mix for `seconds`, all starting together.

    The first `warmup_s` are not counted: the sessions already call the mix, so
    the window measures a server whose cache holds what this traffic keeps warm
    (not an empty one, nor one warmed by anything but the mix). Calls in flight
    at the deadline get `seconds / 2` more to finish (their latency counts, not
    their throughput); whatever is still unanswered then is cancelled and
    reported as unfinished. Errors count from the first call.
    """
    result = LoadResult(sessions=sessions, seconds=seconds)
    clients = [McpHttpSession(url) for _ in range(sessions)]
    started = time.perf_counter()
    opened = await asyncio.gather(*(c.open() for c in clients), return_exceptions=True)
    for outcome in opened:
        if isinstance(outcome, BaseException):  # a failed session is an error of the run
            _count(result.errors, f"session: {_describe(outcome)}")
    result.connect_s = time.perf_counter() - started

    live = [c for c, outcome in zip(clients, opened, strict=True) if outcome is None]
    start = time.monotonic() + warmup_s
    window: dict[str, float] = {"inflight": 0, "start": start, "deadline": start + seconds}
    loops = [
        asyncio.create_task(_loop(c, random.Random(seed * 100_003 + i), mix, window, result))
        for i, c in enumerate(live)
    ]
    await asyncio.sleep(warmup_s)
    cpu_client, cpu_server = own_cpu_seconds(), cpu_seconds(server_pid)
    _, pending = await asyncio.wait(loops, timeout=seconds * 1.5) if loops else (set(), set())
    result.unfinished = int(window["inflight"])
    result.client_cpu_s = own_cpu_seconds() - cpu_client
    result.server_cpu_s = cpu_seconds(server_pid) - cpu_server

    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await asyncio.gather(*(c.close() for c in clients))
    return result


def _count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:60]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _loop(
    client: McpHttpSession,
    rng: random.Random,
    mix: Mix,
    window: dict[str, float],
    out: LoadResult,
) -> None:
    while time.monotonic() < window["deadline"]:
        tool, arguments = mix.call(rng)
        counted = time.monotonic() >= window["start"]
        started = time.perf_counter()
        window["inflight"] += counted
        try:
            answer = await client.call_tool(tool, arguments)
        except Exception as exc:
            _count(out.errors, f"{tool}: {_describe(exc)}")
            continue
        finally:
            window["inflight"] -= counted
        if answer.get("isError"):
            _count(out.errors, f"{tool}: error result")
        if not counted:
            continue
        out.latencies_ms.append((time.perf_counter() - started) * 1000)
        if time.monotonic() <= window["deadline"]:
            out.in_window += 1
        _count(out.layers, str((answer.get("_meta") or {}).get("cache", "?")))


def measure(
    store_dsn: str,
    levels: list[int],
    seconds: float,
    merchants: list[str],
    out_dir: Path,
    warmup_s: float = WARMUP_S,
) -> list[dict[str, Any]]:
    """Run every level of concurrency against a fresh server; returns one summary each."""
    summaries = []
    mix = Mix(merchants, seed=1)
    for sessions in levels:
        with server(store_dsn, out_dir / "server.log") as (url, pid):
            load = run_load(url, pid, sessions, seconds, mix, sessions, warmup_s)
            result = asyncio.run(load)
        summaries.append(result.summary() | {"warmup_s": warmup_s})
    return summaries


async def list_merchants(url: str) -> list[str]:
    """Every merchant's id, asked of the server itself (as an administrator)."""
    client = McpHttpSession(url)
    await client.open()
    merchants: list[str] = []
    arguments: dict[str, Any] = {"segment": "top", "limit": 500}
    try:
        while True:
            page = (await client.call_tool("platform_merchants", arguments))["structuredContent"]
            merchants += [item["merchant_id"] for item in page["items"]]
            if not page["next_cursor"]:
                return merchants
            arguments["cursor"] = page["next_cursor"]
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.throughput", description=__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--store", help="serve this store, restarted for every level")
    target.add_argument("--url", help="an already running server's /mcp URL (needs --pid)")
    parser.add_argument("--pid", type=int, help="the running server's process id, for its CPU")
    parser.add_argument("--sessions", default="10,50,200", help="concurrency levels")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument(
        "--warmup", type=float, default=WARMUP_S, help="uncounted seconds before each run"
    )
    parser.add_argument("--out", type=Path, help="write the summaries here as JSON")
    ns = parser.parse_args(argv)
    levels = [int(n) for n in ns.sessions.split(",") if n.strip()]
    if ns.url:
        if ns.pid is None:
            parser.error("--url needs --pid")
        mix = Mix(asyncio.run(list_merchants(ns.url)), seed=1)
        summaries = []
        for n in levels:
            load = run_load(ns.url, ns.pid, n, ns.seconds, mix, n, ns.warmup)
            summaries.append(asyncio.run(load).summary())
    else:
        out_dir = ROOT / "perf" / "out"
        out_dir.mkdir(parents=True, exist_ok=True)
        with server(ns.store, out_dir / "server.log") as (url, _):
            merchants = asyncio.run(list_merchants(url))
        summaries = measure(ns.store, levels, ns.seconds, merchants, out_dir, ns.warmup)
    for summary in summaries:
        print(json.dumps(summary))
    if ns.out:
        ns.out.write_text(json.dumps(summaries, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
