"""Logging setup: loguru to stderr (never stdout, which stdio MCP owns)."""

from __future__ import annotations

import re
import sys
from typing import Any

from loguru import logger

from optima_bi_mcp.settings import Settings

# Values that must never reach a log, whatever a message carries by mistake.
_SECRET = re.compile(
    r"(?i)((?:access_token|refresh_token|id_token|device_code|user_code|code|password|"
    r"client_secret|authorization)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)[^\s\"',&}]+"
)
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
_DSN_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")


def redact(text: str) -> str:
    """Mask tokens, codes and passwords in a log line."""
    text = _JWT.sub("[redacted-jwt]", text)
    text = _DSN_PASSWORD.sub(r"\1***@", text)
    return _SECRET.sub(r"\1[redacted]", text)


def _patch(record: Any) -> None:
    record["message"] = redact(record["message"])


def configure_logging(level: str | None = None, json_lines: bool | None = None) -> None:
    """Send logs to stderr, human-readable or as JSON lines, with secrets masked."""
    settings = Settings()
    logger.remove()
    logger.configure(patcher=_patch, extra={"module": "optima_bi"})
    logger.add(
        sys.stderr,
        level=(level or settings.log_level).upper(),
        serialize=bool(json_lines if json_lines is not None else settings.log_json),
        format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {extra[module]} {message}",
        backtrace=False,
        diagnose=False,
    )
