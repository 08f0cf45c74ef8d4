"""What the tool layer needs from a cache, and the cache that caches nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

Layer = Literal["L1", "L2", "none"]
Compute = Callable[[], Awaitable[dict[str, Any]]]


class ToolCache(Protocol):
    """Caches tool results by tool, normalized arguments, scope and data version.

    `scope` is the principal's data scope (`admin` or `merchant:<uuid>`); the
    `data_scopes` are the scopes whose data the answer reads (cache.scopes: a
    data domain of one merchant or of all, such as `orders:<uuid>:past`), whose
    data versions go into the key so that a change bumps every answer that read it.
    """

    async def get_or_compute(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        scope: str,
        data_scopes: tuple[str, ...],
        compute: Compute,
    ) -> tuple[dict[str, Any], Layer]: ...

    def stats(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class NullCache:
    """No caching: every call computes (the layer reported is `none`)."""

    async def get_or_compute(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        scope: str,
        data_scopes: tuple[str, ...],
        compute: Compute,
    ) -> tuple[dict[str, Any], Layer]:
        return await compute(), "none"

    def stats(self) -> dict[str, Any]:
        return {"enabled": False}

    async def aclose(self) -> None:
        return None
