"""What the figures were measured on: cores, memory, software versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

import psycopg

PACKAGES = ("chdb", "chdb-core", "clickhouse-connect", "mcp", "psycopg", "uvicorn")


def describe(source_dsn: str) -> dict[str, str]:
    """The machine and the versions of what runs on it (ClickHouse is added by the caller)."""
    info = {
        "cores": str(os.cpu_count() or 0),
        "cpu": _cpu_model(),
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": _postgres_version(source_dsn),
    }
    for name in PACKAGES:
        info[name] = _version(name)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        first = Path("/proc/meminfo").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"
    kib = int(first.split()[1])
    return f"{kib / 1024 / 1024:.1f} GiB"


def _postgres_version(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
