"""The official TypeScript SDK, a client that is not ours, over stdio and streamable HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp_support import MERCHANT_A, child_env, dataset, optima_bi

NODE_DIR = Path(__file__).parent / "node"
A = str(dataset.MERCHANT_A)


@pytest.fixture(scope="module")
def node_client() -> list[str]:
    """The command running client.mjs, with its npm dependencies installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the TypeScript SDK client")
    if not (NODE_DIR / "node_modules").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600
        )
    return [node, str(NODE_DIR / "client.mjs")]


def run(command: list[str]) -> dict[str, Any]:
    out = subprocess.run(command, capture_output=True, text=True, timeout=180, env=child_env())
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_typescript_client_over_stdio(node_client, make_served_store):
    """The TypeScript SDK lists the tools and gets get_sales and a structured error over stdio."""
    server = [*optima_bi(), "serve", "--store", make_served_store(), "--as", MERCHANT_A]
    answer = run([*node_client, "stdio", json.dumps({"days": 7}), *server])
    assert len(answer["tools"]) == 10
    assert answer["sales"]["revenue"] == dataset.A_WEEK["revenue"]
    assert answer["bad"]["structured"]["error"]["code"] == "INVALID_ARGUMENT"


def test_typescript_client_over_http(node_client, http_server):
    """The TypeScript SDK calls whoami and get_sales over streamable HTTP."""
    arguments = json.dumps({"days": 7, "merchant_id": A})
    answer = run([*node_client, "http", http_server[0], arguments])
    assert answer["whoami"]["role"] == "admin"
    assert answer["sales"]["orders"] == dataset.A_WEEK["orders"]
