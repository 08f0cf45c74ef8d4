"""The tool boundary: every failure becomes a tool error with a stable code.

This is the only place that catches everything. A tool error is structured
content `{"error": {"code", "message", "details"}}` plus the same words as
text, with `isError` set; what went wrong inside stays in the log.
"""

from __future__ import annotations

import json
from typing import Any

from loguru import logger
from mcp_types import CallToolResult, TextContent
from pydantic import ValidationError

from optima_bi_mcp.errors import InvalidArgumentError, OptimaError

log = logger.bind(module=__name__)

INTERNAL_MESSAGE = "the server failed to answer; the failure was logged, try again or report it"


def invalid_argument(exc: ValidationError) -> InvalidArgumentError:
    """A pydantic validation failure as INVALID_ARGUMENT naming the first bad field."""
    first = exc.errors()[0]
    argument = ".".join(str(part) for part in first["loc"]) or None
    reason = first["msg"]
    if first["type"] == "extra_forbidden":
        reason = "is not an argument of this tool"
    elif first["type"] == "literal_error":
        reason = reason.replace("Input should be", "must be")
    message = f"{argument}: {reason}" if argument else reason
    return InvalidArgumentError(message, argument=argument)


def error_of(exc: BaseException, *, tool: str) -> dict[str, Any]:
    """The `{"code", "message", "details"}` a client sees for `exc`."""
    if isinstance(exc, ValidationError):
        exc = invalid_argument(exc)
    if isinstance(exc, OptimaError):
        details = {k: v for k, v in exc.details.items() if _is_json(v)}
        return {"code": exc.code, "message": exc.message, "details": details}
    log.opt(exception=exc).error("tool failed unexpectedly tool={}", tool)
    return {"code": "INTERNAL", "message": INTERNAL_MESSAGE, "details": {}}


def error_result(error: dict[str, Any], meta: dict[str, Any] | None = None) -> CallToolResult:
    """A tool error (isError) carrying the error as structured content and text."""
    text = f"{error['code']}: {error['message']}"
    argument = error["details"].get("argument")
    if argument:
        text += f" (argument: {argument})"
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content={"error": error},
        is_error=True,
        _meta=meta,
    )


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
