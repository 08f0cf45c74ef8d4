"""Comparing a tool result with the oracle's plain values, field by field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from optima_bi_mcp.metrics.pagination import MAX_LIMIT


def project(got: Any, like: Any) -> Any:
    """`got` reduced to the keys the oracle computed (recursively), for a readable diff."""
    if isinstance(like, dict) and isinstance(got, dict):
        return {key: project(got.get(key), value) for key, value in like.items()}
    if isinstance(like, list) and isinstance(got, list):
        return [project(g, v) for g, v in zip(got, like, strict=False)] + got[len(like) :]
    return got


def as_json(result: BaseModel) -> dict[str, Any]:
    return result.model_dump(mode="json")


def all_pages(call: Callable[[str | None], BaseModel]) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every item of a paginated metric, following next_cursor; also each page's JSON."""
    items: list[Any] = []
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_LIMIT):
        page = as_json(call(cursor))
        pages.append(page)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
    raise AssertionError("pagination did not end")
