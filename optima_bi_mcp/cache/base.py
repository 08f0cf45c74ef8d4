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

    def known_versions(self, data_scopes: tuple[str, ...]) -> tuple[int, ...] | None:
        """This process's versions of `data_scopes`, raised by every change it knows of.

        A value read from the store while they were `v` may be kept under `v` and
        reused while they stay `v`, as L1 does. None: changes are not followed here,
        so nothing may be kept.
        """
        ...

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

    def known_versions(self, data_scopes: tuple[str, ...]) -> tuple[int, ...] | None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"enabled": False}

    async def aclose(self) -> None:
        return None
