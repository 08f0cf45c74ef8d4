"""Opaque cursors for paginated lists.

A cursor carries the offset of the next page and a fingerprint of the query it
belongs to, so a cursor from another question is refused rather than misread.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from optima_bi_mcp.errors import InvalidArgumentError

MAX_LIMIT = 500


def fingerprint(query: dict[str, Any]) -> str:
    blob = json.dumps(query, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def encode_cursor(offset: int, query: dict[str, Any]) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, query: dict[str, Any]) -> int:
    """The offset a cursor points at (0 without a cursor)."""
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = int(data["o"])
        matches = data["q"] == fingerprint(query)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(
            "cursor is not one this tool returned", argument="cursor"
        ) from exc
    if offset < 0 or not matches:
        raise InvalidArgumentError(
            "cursor belongs to a different query; repeat the call without it", argument="cursor"
        )
    return offset


def page(
    rows: list[Any], offset: int, limit: int, query: dict[str, Any]
) -> tuple[list[Any], str | None]:
    """Split `limit + 1` fetched rows into a page and the next cursor."""
    if len(rows) > limit:
        return rows[:limit], encode_cursor(offset + limit, query)
    return rows, None
