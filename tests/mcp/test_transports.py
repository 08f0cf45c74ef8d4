"""The server over a real stdio subprocess and real streamable HTTP, and `optima-bi call`."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters
from mcp_support import MERCHANT_A, call, child_env, dataset, optima_bi

A = str(dataset.MERCHANT_A)


async def test_stdio_subprocess_serves_tools(make_served_store):
    """A stdio server subprocess lists the tools and answers get_sales."""
    dsn = make_served_store()
    params = StdioServerParameters(
        command=optima_bi()[0],
        args=[*optima_bi()[1:], "serve", "--store", dsn, "--as", MERCHANT_A],
        env=child_env(),
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("get_sales", {"days": 7})
    assert "get_sales" in names
    assert result.structured_content["revenue"] == dataset.A_WEEK["revenue"]


async def test_http_serves_tools(http_server):
    """Streamable HTTP answers a merchant tool for the administrator."""
    result = await call(http_server[0], "get_sales", {"days": 7, "merchant_id": A})
    assert result.structured_content["orders"] == dataset.A_WEEK["orders"]


async def test_http_errors_are_tool_errors(http_server):
    """Over HTTP a bad argument is still our structured INVALID_ARGUMENT."""
    result = await call(http_server[0], "get_sales", {"merchant_id": A, "bucket": "year"})
    assert result.structured_content["error"]["code"] == "INVALID_ARGUMENT"


async def test_fifty_concurrent_sessions(http_server):
    """50 HTTP sessions calling tools at once all get correct answers."""
    answers: list[Any] = []

    async def session(i: int) -> None:
        tool = "get_sales" if i % 2 else "whoami"
        arguments = {"days": 7, "merchant_id": A} if i % 2 else {}
        result = await call(http_server[0], tool, arguments)
        answers.append(
            result.structured_content.get("revenue", result.structured_content.get("role"))
        )

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(session, i)
    assert sorted(map(str, answers)) == sorted(
        ["admin"] * 25 + [str(dataset.A_WEEK["revenue"])] * 25
    )


def test_health_ready_and_metrics(http_server):
    """/healthz and /readyz answer 200; /metrics counts calls per tool."""
    base = http_server[0].removesuffix("/mcp")
    anyio.run(call, http_server[0], "whoami", {})
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert httpx.get(f"{base}/readyz").json() == {"ready": True}
    assert (
        'optima_bi_tool_calls_total{outcome="ok",tool="whoami"}'
        in httpx.get(f"{base}/metrics").text
    )


def test_call_goes_through_the_holding_server(http_server):
    """`optima-bi call` on a store held by a server goes through it, as its principal."""
    command = [*optima_bi(), "call", "whoami", "--store", http_server[1], "--json"]
    out = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=120)
    assert json.loads(out.stdout)["role"] == "admin"


def test_call_prints_exactly_the_structured_result(make_served_store):
    """`optima-bi call --json` prints the structured content and nothing else."""
    dsn = make_served_store()
    args = json.dumps({"days": 7})
    command = [*optima_bi(), "call", "get_sales", "--args", args, "--as", MERCHANT_A]
    out = subprocess.run(
        [*command, "--store", dsn, "--json"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert json.loads(out.stdout)["revenue"] == dataset.A_WEEK["revenue"]
    assert out.returncode == 0


def test_call_error_exits_non_zero(tmp_path):
    """A tool error prints the structured error and exits non-zero."""
    command = [*optima_bi(), "call", "get_sales", "--args", '{"bucket": "year"}']
    out = subprocess.run(
        [*command, "--as", MERCHANT_A, "--store", f"chdb://{tmp_path}/s", "--json"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert json.loads(out.stdout)["error"]["code"] == "INVALID_ARGUMENT"
    assert out.returncode == 1


def test_as_refused_on_public_http_host(tmp_path):
    """--as with --http on a non-loopback host exits with a clear error."""
    command = [*optima_bi(), "serve", "--http", "--host", "0.0.0.0", "--as", "admin"]
    out = subprocess.run(
        [*command, "--store", f"chdb://{tmp_path}/s"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert out.returncode == 2
    assert "loopback" in out.stderr


async def test_stdio_goes_through_the_holding_server(http_server):
    """A stdio server finding the store held serves through the holder, as its principal."""
    params = StdioServerParameters(
        command=optima_bi()[0],
        args=[*optima_bi()[1:], "serve", "--store", http_server[1], "--as", "admin"],
        env=child_env(),
    )
    async with Client(params) as client:
        result = await client.call_tool("get_sales", {"days": 7, "merchant_id": A})
        status = await client.read_resource("bi://status")
    assert result.structured_content["revenue"] == dataset.A_WEEK["revenue"]
    assert '"orders": 7' in status.contents[0].text


def test_call_as_another_principal_is_refused(http_server):
    """`call --as merchant:…` through a server acting as admin is refused, not widened."""
    command = [*optima_bi(), "call", "whoami", "--as", MERCHANT_A, "--store", http_server[1]]
    out = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, env=child_env(), timeout=120
    )
    assert json.loads(out.stdout)["error"]["code"] == "FORBIDDEN"
    assert out.returncode == 1


async def test_served_answers_are_cached(http_server):
    """`serve` runs with the L1 cache: the same question again is answered from L1."""
    arguments = {"days": 30, "merchant_id": A, "bucket": "week"}
    async with Client(http_server[0]) as client:
        await client.call_tool("get_sales", arguments)
        again = await client.call_tool("get_sales", arguments)
    assert (again.meta or {})["cache"] == "L1"
