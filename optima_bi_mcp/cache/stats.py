"""Counters of the cache: Prometheus collectors and the figures `bi://status` shows."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter

LAYERS = ("L1", "L2")


class CacheMetrics:
    """Hits, misses, computations and invalidations of one cache instance.

    The collectors are registered on the registry given, or on a registry of
    this instance's own, so that a process (or a test) can build any number of
    caches without duplicate registrations; the server exposes `registry`.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self._hits = Counter(
            "optima_bi_cache_hits", "Answers served from a cache layer.", ["layer"], registry=reg
        )
        self._misses = Counter(
            "optima_bi_cache_misses", "Lookups a cache layer missed.", ["layer"], registry=reg
        )
        self._computed = Counter(
            "optima_bi_cache_computations", "Answers computed from the store.", registry=reg
        )
        self._refreshed = Counter(
            "optima_bi_cache_refreshes",
            "Answers recomputed ahead of their next ask after a change (refresh-ahead).",
            registry=reg,
        )
        self._joined = Counter(
            "optima_bi_cache_singleflight_joins",
            "Calls that joined an identical computation already running.",
            registry=reg,
        )
        self._bumps = Counter(
            "optima_bi_cache_invalidations", "Data-version bumps applied.", registry=reg
        )
        self._redis_errors = Counter(
            "optima_bi_cache_redis_errors", "Redis commands that failed.", registry=reg
        )
        self.counts: dict[str, int] = dict.fromkeys(
            ("requests", "hits_L1", "hits_L2", "misses_L1", "misses_L2", "computed", "refreshed",
             "joined", "lock_waits", "invalidations", "redis_errors"),
            0,
        )  # fmt: skip

    def hit(self, layer: str) -> None:
        self._hits.labels(layer).inc()
        self.counts[f"hits_{layer}"] += 1

    def miss(self, layer: str) -> None:
        self._misses.labels(layer).inc()
        self.counts[f"misses_{layer}"] += 1

    def request(self) -> None:
        self.counts["requests"] += 1

    def computed(self) -> None:
        self._computed.inc()
        self.counts["computed"] += 1

    def refreshed(self) -> None:
        self._refreshed.inc()
        self.counts["refreshed"] += 1

    def joined(self) -> None:
        self._joined.inc()
        self.counts["joined"] += 1

    def lock_wait(self) -> None:
        self.counts["lock_waits"] += 1

    def invalidated(self, scopes: int = 1) -> None:
        self._bumps.inc(scopes)
        self.counts["invalidations"] += scopes

    def redis_error(self) -> None:
        self._redis_errors.inc()
        self.counts["redis_errors"] += 1

    def snapshot(self) -> dict[str, Any]:
        """The counts and the hit ratio: answers not computed by their own call."""
        c = self.counts
        served = c["hits_L1"] + c["hits_L2"] + c["joined"]
        ratio = round(served / c["requests"], 4) if c["requests"] else None
        return {**c, "hit_ratio": ratio}
