"""Result caching: L1 in process, L2 in Redis, invalidated by change."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the protocol (base) does not load the Redis client.
    if name in {"create_cache", "TieredCache"}:
        from optima_bi_mcp.cache import tiered

        return getattr(tiered, name)
    raise AttributeError(name)
