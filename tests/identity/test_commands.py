"""`optima-bi login | whoami | logout` in a terminal, as subprocesses against the dev IdP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import MERCHANT_A, DevIdp, wait_for

CLI = [sys.executable, "-m", "optima_bi_mcp.cli"]


def cli_env(idp: DevIdp, token_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OPTIMA_BI_ISSUER": idp.issuer,
        "OPTIMA_BI_TOKEN_DIR": str(token_dir),
        "OPTIMA_BI_LOG_LEVEL": "DEBUG",
        # Never the developer's own keyring: the key goes to a 0600 file.
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def terminal_login(idp: DevIdp, tmp_path: Path) -> dict[str, str]:
    """Run `optima-bi login`, approve the code it prints as alice; returns its environment."""
    env = cli_env(idp, tmp_path / "tokens")
    out, err = tmp_path / "login.out", tmp_path / "login.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([*CLI, "login"], env=env, stdout=stdout, stderr=stderr)
    code = wait_for(
        lambda: re.search(r"enter the code (\S+)", out.read_text()), timeout=60, what="a code"
    )
    idp.approve(code.group(1), "alice")
    assert process.wait(timeout=60) == 0, err.read_text()
    return {**env, "LOGIN_STDERR": err.read_text(), "USER_CODE": code.group(1)}


def test_login_then_whoami_names_the_merchant(terminal_login):
    """After `login`, `whoami` in a new process prints the merchant from the saved tokens."""
    shown = run(["whoami"], terminal_login)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["merchant_id"] == str(MERCHANT_A)


def test_logout_then_whoami_is_unauthenticated(terminal_login):
    """After `logout` (revoked), `whoami` says to log in again and exits non-zero."""
    out = run(["logout"], terminal_login)
    shown = run(["whoami"], terminal_login)
    assert "revoked" in out.stdout
    assert shown.returncode == 1 and "not logged in" in shown.stderr


def test_login_logs_carry_no_code(terminal_login):
    """The login process's log (stderr) never shows the user code it printed for the person."""
    assert terminal_login["USER_CODE"] not in terminal_login["LOGIN_STDERR"]


def test_login_without_issuer_explains(tmp_path):
    """Without OPTIMA_BI_ISSUER, `login` says there is nothing to log in to."""
    env = {k: v for k, v in os.environ.items() if k != "OPTIMA_BI_ISSUER"}
    done = run(["login"], env)
    assert done.returncode == 2 and "OPTIMA_BI_ISSUER" in done.stderr
