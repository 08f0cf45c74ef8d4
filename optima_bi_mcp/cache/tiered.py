"""The tool cache: L1 in process, L2 in Redis, data versions bumped by change.

How an answer is found (`get_or_compute`):

1. Pending change notices are applied first (see "Freshness" below).
2. The key is built from the tool, its normalized arguments, the principal's
   scope, and the data version of every data scope the answer reads.
3. L1 (a bounded `TTLCache` of JSON text), then L2 (Redis, JSON text), then
   the computation. Identical concurrent calls in this process share one
   computation; across processes, a short Redis lock (`SET NX PX`) lets one
   compute while the others poll L2 for its answer for a bounded time, then
   compute themselves if the holder is slow or gone.

Data versions. With Redis, each scope's shared version is a counter in Redis
(`INCR`), announced on a pub/sub channel; every instance keeps a local copy,
raised by the messages and read with `MGET` when unknown. Each instance also
keeps a local counter per scope, raised with every change it learns of (from
its bus, or from another instance's message announcing a change): the L1 key
holds the local versions, the L2 key the shared ones. So this instance's own
answers change at once, without a round trip, and a bump that only records
changes already applied here retires nothing. Until the shared bump is
recorded in Redis (the bump is "owed", e.g. while Redis is down), L2 is not
used for that scope, since L2 answers under the current shared version may
predate the change. Owed bumps are recorded when Redis answers again; an
answer that finds its scope's bump being recorded waits for that one round
trip (at most FLUSH_WAIT_S), so it can use L2 under the new version.
On every reconnection the shared versions are forgotten and read again after
the subscription is live, and L1 is emptied, since a message missed meanwhile
may have announced a change; a restarted Redis has a new run id, which is
part of every L2 key, so nothing from before a restart is ever read.

XXX: a version counter that Redis evicted would restart at 1 and could make an
answer of the same number reachable again; `infra/redis/up` therefore evicts
only keys with a TTL (`volatile-lru`), and a production Redis must do the same.
Pinned by tests/cache/test_l2.py::test_version_counter_lives_in_redis.

Freshness, exactly: no answer is older than the newest change this instance
has been told of, and coalescing never delays that. Let I be
`invalidation_interval_ms` (500 ms by default).
- Every change notice raises this instance's local version of each scope it
  names (part of every L1 key) before `ChangeBus.publish` returns (when
  published on the event loop's thread), or before the next `get_or_compute`
  starts (from any other thread): every answer begun after that is computed
  anew, or read from L2 under a version recorded after the change.
- What I coalesces is the *shared* version: a scope quiet for I is bumped in
  Redis at once (leading edge), further changes within I are recorded by one
  more bump at its end (trailing edge), so a busy scope gets at most two new
  shared versions, and L2 at most two generations of its answers, per I.
  Until a change is recorded (pending or owed, see above), answers reading
  its scope skip L2, whose entries under the current shared version may
  predate it.
- Other instances learn of a leading-edge bump from its pub/sub message, and
  of a change folded into a trailing bump from a `changed` message published
  at once (normally a millisecond later, either way): it raises their local
  version too, and they skip L2 for the scope until a bump of it arrives
  (or, should its owner die before recording it, record one themselves after
  I plus HOLD_SLACK_S). Pinned by tests/cache/test_coalesce.py.
- A process running the sink apart from the servers must hold a cache
  attached to the sink's bus, or no change reaches Redis.
- While Redis is unreachable, an instance still applies the notices of its
  own bus; see the XXX note in `get_or_compute` for the rest.

Refresh-ahead (cache.refresh): after a bump, questions asked repeatedly in the
last `refresh_window_s` that read a bumped scope are recomputed in the
background, one at a time and only while no caller's answer is being computed
(the store's spare time), so that their next ask is a hit on fresh data. A
request arriving during such a recomputation joins it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis.asyncio as redis
from cachetools import TTLCache
from loguru import logger
from prometheus_client import CollectorRegistry

from optima_bi_mcp.cache.base import Compute, Layer, ToolCache
from optima_bi_mcp.cache.coalesce import Coalescer
from optima_bi_mcp.cache.keys import canonical_json, result_key
from optima_bi_mcp.cache.redis_link import RedisLink
from optima_bi_mcp.cache.refresh import Recipe, RefreshPlan
from optima_bi_mcp.cache.stats import CacheMetrics
from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from optima_bi_mcp.settings import Settings

log = logger.bind(module=__name__)

# A lock outlives any sane computation, so a crashed holder blocks others at
# most this long; waiters give up sooner and compute themselves.
LOCK_TTL_MS = 5000
LOCK_WAIT_S = 2.0
LOCK_POLL_S = (0.005, 0.05)
# How long an answer waits for a bump of its data scope to be recorded in Redis.
FLUSH_WAIT_S = 1.0
# How long past the interval another instance's announced change may wait for the bump
# that records it before this instance records one itself (its owner may be gone).
HOLD_SLACK_S = 2.0

# Increment each scope's counter and announce the new versions, atomically and
# in one round trip. KEYS: the counters; ARGV: the channel, the sender, then per
# key its scope and 1 if the bump announces a change (0: it records changes
# already announced with a `changed` message).
BUMP_LUA = """
local versions, bumps = {}, {}
for i, key in ipairs(KEYS) do
  versions[i] = redis.call('INCR', key)
  bumps[i] = {ARGV[2 * i + 1], versions[i], tonumber(ARGV[2 * i + 2])}
end
redis.call('PUBLISH', ARGV[1], cjson.encode({by = ARGV[2], bumps = bumps}))
return versions
"""
# Release a lock only if it is still ours (it may have expired and been retaken).
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class _Keys:
    l1: tuple[str, tuple[int, ...]]
    l2: str
    use_l2: bool


@dataclass(frozen=True)
class _Answer:
    text: str | None  # None: the result could not be serialized and was not cached
    result: dict[str, Any] | None
    layer: Layer

    def value(self) -> dict[str, Any]:
        # Each caller decodes its own copy, so no caller can alter another's answer.
        return json.loads(self.text) if self.text is not None else dict(self.result or {})


class TieredCache(ToolCache):
    """L1 + optional L2 tool cache, invalidated by change notices (see the module doc).

    Build it inside the running event loop (it belongs to that loop), then
    `await start()`; `create_cache` does both and subscribes it to the bus.
    """

    def __init__(
        self,
        *,
        l1_ttl_s: float = 60.0,
        l1_max_entries: int = 10_000,
        l2_ttl_s: float = 300.0,
        invalidation_interval_ms: int = 500,
        redis_url: str | None = None,
        namespace: str = "optima-bi",
        registry: CollectorRegistry | None = None,
        lock_wait_s: float = LOCK_WAIT_S,
        refresh_min_asks: int = 2,
        refresh_window_s: float | None = None,
        refresh_max_recipes: int = 2000,
        **link_options: float,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._l1: TTLCache[tuple[str, tuple[int, ...]], str] = TTLCache(
            maxsize=l1_max_entries, ttl=l1_ttl_s
        )
        self._settings = {
            "l1_ttl_s": l1_ttl_s,
            "l1_max_entries": l1_max_entries,
            "l2_ttl_s": l2_ttl_s,
            "invalidation_interval_ms": invalidation_interval_ms,
            "refresh_min_asks": refresh_min_asks,
        }
        self._l2_ttl_ms = int(l2_ttl_s * 1000)
        self._lock_wait_s = lock_wait_s
        self.metrics = CacheMetrics(registry)

        self._shared: dict[str, int] = {}
        self._local: dict[str, int] = {}
        self._owed: dict[str, int] = {}  # scope -> sequence number of its newest owed bump
        self._owed_new: set[str] = set()  # owed bumps that announce a change
        self._owed_seq = 0
        self._inbox: deque[tuple[str, ...]] = deque()
        # Scopes another instance announced a change of that no bump has recorded yet.
        self._held: set[str] = set()
        self._announcing: set[asyncio.Task[None]] = set()
        self._closing = False
        self._interval_s = invalidation_interval_ms / 1000
        self._inflight: dict[tuple[str, tuple[int, ...]], asyncio.Task[_Answer]] = {}
        self._loading: dict[str, asyncio.Task[None]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._coalescer = Coalescer(
            invalidation_interval_ms / 1000,
            partial(self._bump, new=True),
            trailing=partial(self._bump, new=False),
        )
        # A question is worth refreshing while its answer could still be in L1.
        self._plan = RefreshPlan(
            min_asks=refresh_min_asks,
            window_s=l1_ttl_s if refresh_window_s is None else refresh_window_s,
            max_recipes=refresh_max_recipes,
        )
        self._refresher: asyncio.Task[None] | None = None
        self._computing = 0  # callers' computations running now
        self._idle = asyncio.Event()
        self._idle.set()

        self._link: RedisLink | None = None
        if redis_url:
            self._link = RedisLink(
                redis_url,
                namespace,
                on_message=self._on_message,
                on_up=self._on_redis_up,
                on_error=self._on_redis_error,
                **link_options,
            )

    async def start(self) -> None:
        """Connect to Redis if configured (never fails: without Redis, L1 serves)."""
        if self._link is not None:
            await self._link.start()

    def attach(self, bus: ChangeBus) -> None:
        """Apply the change notices published on `bus` from now on."""
        self._unsubscribe = bus.subscribe(self.on_change)

    # The tool layer's entry point -------------------------------------------

    async def get_or_compute(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        scope: str,
        data_scopes: tuple[str, ...],
        compute: Compute,
    ) -> tuple[dict[str, Any], Layer]:
        """The cached answer and the layer that gave it, or `compute()`'s (layer `none`).

        `arguments` must be the validated model's JSON dump (defaults filled),
        and `compute` must return JSON-compatible data; anything else is
        answered but not cached. Redis failures never reach the caller.

        XXX: while Redis is unreachable, changes applied by another process
        (a sink elsewhere) cannot reach this one, so its L1 may serve answers
        up to `l1_ttl_s` old; versions are read again when Redis answers, which
        retires them. Pinned by
        tests/cache/test_redis_outage.py::test_outage_serves_l1_without_error.
        """
        self._drain()
        self.metrics.request()
        keys = await self._keys(tool, arguments, scope, data_scopes)
        self._plan.asked(
            (tool, scope, canonical_json(arguments)),
            Recipe(tool, arguments, scope, data_scopes, compute),
            self._loop.time(),
        )

        text = self._l1.get(keys.l1)
        if text is not None:
            self.metrics.hit("L1")
            return json.loads(text), "L1"
        self.metrics.miss("L1")

        task = self._inflight.get(keys.l1)
        if task is not None:
            self.metrics.joined()
            self._notify()
        else:
            task = self._loop.create_task(self._fill(keys, compute))
            self._inflight[keys.l1] = task
            task.add_done_callback(lambda done: self._forget(keys.l1, done))
        # Shielded: one caller giving up must not cancel the others' answer.
        answer = await asyncio.shield(task)
        return answer.value(), answer.layer

    def stats(self) -> dict[str, Any]:
        """Layers, Redis state, sizes and counters, with the hit ratio (`bi://status`)."""
        redis_state = "off" if self._link is None else ("up" if self._link.up else "down")
        return {
            "enabled": True,
            "layers": ["L1"] if self._link is None else ["L1", "L2"],
            "redis": redis_state,
            "l1_entries": len(self._l1),
            **self._settings,
            "pending_bumps": len(self._coalescer.pending),
            "owed_bumps": len(self._owed),
            "held_scopes": len(self._held),
            "refresh_recipes": len(self._plan),
            "refresh_queued": self._plan.due,
            "refreshing": self._refresher is not None and not self._refresher.done(),
            **self.metrics.snapshot(),
        }

    async def aclose(self) -> None:
        """Apply pending bumps (recording them in Redis if it answers), then disconnect."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._drain()
        self._closing = True
        self._coalescer.flush()
        self._plan.clear_due()
        await asyncio.gather(*self._announcing, return_exceptions=True)
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._link is not None:
            await self._link.aclose()

    # Change notices -----------------------------------------------------------

    def on_change(self, notice: ChangeNotice) -> None:
        """ChangeBus listener; safe to call from any thread."""
        self._inbox.append(notice.data_scopes)
        if threading.get_ident() == self._thread:
            self._drain()
        else:
            self._loop.call_soon_threadsafe(self._drain)

    def known_versions(self, data_scopes: tuple[str, ...]) -> tuple[int, ...]:
        """The local versions of `data_scopes`, as L1 keys on them (see ToolCache)."""
        self._drain()
        return tuple(self._local.get(s, 0) for s in data_scopes)

    def version(self, scope: str) -> tuple[int, int]:
        """This instance's (shared, local) version of a scope; shared -1 if unknown."""
        shared = self._shared.get(scope, -1 if self._link is not None else 0)
        return shared, self._local.get(scope, 0)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` holds, re-checked on every version or link change."""
        async with asyncio.timeout(timeout):
            while not predicate():
                waiter = self._loop.create_future()
                self._waiters.append(waiter)
                await waiter
        return True

    def _drain(self) -> None:
        while self._inbox:
            scopes = self._inbox.popleft()
            self._retire(scopes)
            folded = self._coalescer.changed(scopes)
            if folded and self._link is not None:
                task = self._loop.create_task(self._announce(folded))
                self._announcing.add(task)
                task.add_done_callback(self._announcing.discard)

    def _retire(self, scopes: Iterable[str]) -> None:
        """Raise the local version of each scope: this instance's answers of it are retired."""
        scopes = list(scopes)
        for scope in scopes:
            self._local[scope] = self._local.get(scope, 0) + 1
        self.metrics.invalidated(len(scopes))
        self._notify()
        self._refresh_soon(scopes)

    def _bump(self, scopes: list[str], *, new: bool) -> None:
        """Record new shared versions of `scopes` in Redis; `new`: announcing changes
        no other instance has heard of (a leading edge), else recording announced ones."""
        if self._link is None:
            return
        for scope in scopes:
            self._owed_seq += 1
            self._owed[scope] = self._owed_seq
            if new:
                self._owed_new.add(scope)
        log.debug("data versions bumped scopes={}", len(scopes))
        self._flush_soon()
        self._notify()

    async def _announce(self, scopes: list[str]) -> None:
        """Tell the other instances at once of changes folded into a trailing bump."""
        assert self._link is not None
        link = self._link
        message = json.dumps({"changed": scopes, "by": link.client_name})
        await link.run(lambda r: r.publish(link.channel, message))

    def _on_changed(self, scopes: list[str]) -> None:
        """Another instance's change, not yet recorded by a bump: retire, and hold L2."""
        self._held.update(scopes)
        self._retire(scopes)
        self._loop.call_later(self._interval_s + HOLD_SLACK_S, self._unhold, scopes)

    def _unhold(self, scopes: list[str]) -> None:
        # The bump that records these changes never came: record one here (one bump more
        # at worst), so that L2 is used again under a version newer than the changes.
        late = [s for s in scopes if s in self._held]
        if late and not self._closing:
            self._bump(late, new=False)

    # Refresh-ahead -------------------------------------------------------------

    def _refresh_soon(self, scopes: list[str]) -> None:
        if not self._plan.bumped(scopes, self._loop.time()):
            return
        if self._refresher is None or self._refresher.done():
            self._refresher = self._loop.create_task(self._refresh_due())

    async def _refresh_due(self) -> None:
        """Recompute queued recipes one at a time (the store answers one query at a time)."""
        while True:
            # Callers first: a refresh waits until no caller's answer is being computed.
            while self._computing:
                self._idle.clear()
                await self._idle.wait()
            recipe = self._plan.next_due()
            if recipe is None:
                return
            try:
                await self._refresh(recipe)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The next ask computes it the ordinary way and reports any error itself.
                log.info("refresh-ahead failed tool={} error={}", recipe.tool, type(exc).__name__)

    async def _refresh(self, recipe: Recipe) -> None:
        keys = await self._keys(recipe.tool, recipe.arguments, recipe.scope, recipe.data_scopes)
        if keys.l1 in self._l1 or keys.l1 in self._inflight:
            return  # already answered (or being answered) under the new versions
        task = self._loop.create_task(self._fill(keys, recipe.compute, refresh=True))
        self._inflight[keys.l1] = task
        task.add_done_callback(lambda done: self._forget(keys.l1, done))
        await asyncio.shield(task)

    def _flush_soon(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = self._loop.create_task(self._flush())

    async def _flush(self) -> None:
        """Record owed bumps in Redis and announce them; on failure, retried on reconnect."""
        assert self._link is not None
        link = self._link
        while self._owed and link.up:
            batch = dict(self._owed)
            scopes = sorted(batch)
            keys = [self._version_key(s) for s in scopes]
            args = [link.channel, link.client_name]
            for scope in scopes:
                args += [scope, "1" if scope in self._owed_new else "0"]
            ok, versions = await link.run(partial(_record_bumps, keys=keys, args=args))
            if not ok:
                return
            for scope, version in zip(scopes, versions, strict=True):
                self._raise_shared(scope, int(version))
                self._held.discard(scope)  # recorded after we heard of the change
                if self._owed.get(scope) == batch[scope]:
                    del self._owed[scope]
                    self._owed_new.discard(scope)
            self._notify()

    def _on_message(self, data: bytes) -> None:
        changes: list[str] = []
        try:
            message = json.loads(data)
            mine = self._link is not None and message["by"] == self._link.client_name
            if "changed" in message:
                if not mine:
                    self._on_changed([str(scope) for scope in message["changed"]])
                return
            for scope, version, new in message["bumps"]:
                self._raise_shared(str(scope), int(version))
                if mine:
                    continue  # applied here before it was recorded
                # A bump published after a change was announced records it; a new one
                # is a change of its own, retired here (and refreshed) like ours.
                self._held.discard(str(scope))
                if new:
                    changes.append(str(scope))
        except (ValueError, TypeError, KeyError):
            log.warning("ignored a malformed version message")
            return
        self._notify()
        if changes:
            self._retire(changes)

    def _on_redis_up(self) -> None:
        # Changes announced while we were away were missed: forget every shared
        # version, so that each is read again after the subscription is live, and
        # every L1 answer (their keys hold local versions only, which a missed
        # message did not raise). A restarted Redis has a new run id, hence new L2
        # keys altogether. Then record the bumps we owe.
        self._shared.clear()
        self._l1.clear()
        self._loop.call_soon(self._flush_soon)
        self._notify()

    def _on_redis_error(self) -> None:
        self.metrics.redis_error()
        self._notify()

    def _raise_shared(self, scope: str, version: int) -> bool:
        # Versions only grow; messages and MGET replies may arrive out of order.
        if version > self._shared.get(scope, -1):
            self._shared[scope] = version
            return True
        return False

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # Keys and layers ---------------------------------------------------------

    async def _keys(
        self, tool: str, arguments: Mapping[str, Any], scope: str, data_scopes: tuple[str, ...]
    ) -> _Keys:
        scopes = sorted(set(data_scopes))
        link = self._link
        if link is not None and link.up:
            await self._await_flush(scopes)
            await self._load_versions([s for s in scopes if s not in self._shared])
        shared = {s: self.version(s)[0] for s in scopes}
        use_l2 = (
            link is not None
            and link.up
            and all(v >= 0 for v in shared.values())
            and not any(self._unrecorded(s) for s in scopes)
        )
        namespace = link.namespace if link is not None else "-"
        l2 = result_key(namespace, tool, arguments, scope, shared)
        # L1 keys on local versions only: every change this instance knows of raises one
        # (its bus, `changed` messages, new bumps), while a bump recording changes already
        # applied here leaves the answers computed since then in place.
        l1 = result_key("l1", tool, arguments, scope, {})
        return _Keys((l1, tuple(self._local.get(s, 0) for s in scopes)), l2, use_l2)

    def _unrecorded(self, scope: str) -> bool:
        """Whether a change of `scope` is known here that no shared version records yet."""
        return scope in self._owed or scope in self._held or self._coalescer.is_pending(scope)

    async def _await_flush(self, scopes: list[str]) -> None:
        # A bump being recorded takes one round trip; waiting for it lets this
        # answer use (and fill) L2 under the new version, instead of computing
        # now without L2 and again once the version arrives.
        flusher = self._flusher
        if flusher is None or flusher.done() or not any(s in self._owed for s in scopes):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(flusher), FLUSH_WAIT_S)

    async def _load_versions(self, scopes: list[str]) -> None:
        """Read unknown shared versions from Redis, one MGET for concurrent askers."""
        missing = [s for s in scopes if s not in self._shared]
        fresh = [s for s in missing if s not in self._loading]
        if fresh:
            task = self._loop.create_task(self._mget_versions(fresh))
            self._loading.update(dict.fromkeys(fresh, task))
        tasks = {self._loading[s] for s in missing if s in self._loading}
        await asyncio.gather(*(asyncio.shield(t) for t in tasks))

    async def _mget_versions(self, scopes: list[str]) -> None:
        assert self._link is not None
        epoch = self._link.epoch
        keys = [self._version_key(s) for s in scopes]
        try:
            ok, values = await self._link.run(lambda r: r.mget(keys))
        finally:
            for scope in scopes:
                self._loading.pop(scope, None)
        if not ok or epoch != self._link.epoch:
            return
        for scope, value in zip(scopes, values, strict=True):
            self._raise_shared(scope, int(value or 0))

    def _version_key(self, scope: str) -> str:
        assert self._link is not None
        return f"{self._link.namespace}:v:{scope}"

    async def _fill(self, keys: _Keys, compute: Compute, *, refresh: bool = False) -> _Answer:
        """L2, then the computation; `refresh`: for no caller (only `refreshed` is counted)."""
        token = ""
        if keys.use_l2:
            text = await self._l2_get(keys.l2)
            if text is not None:
                return self._l2_hit(keys, text, count=not refresh)
            if not refresh:
                self.metrics.miss("L2")
            token = await self._lock(keys.l2)
            if not token:
                text = await self._await_holder(keys.l2)
                if text is not None:
                    return self._l2_hit(keys, text, count=not refresh)
                token = ""

        if not refresh:
            self._computing += 1
        try:
            result = await compute()
        except BaseException:
            await self._release(keys.l2, token)
            raise
        finally:
            if not refresh:
                self._computing -= 1
                if not self._computing:
                    self._idle.set()
        if refresh:
            self.metrics.refreshed()
        else:
            self.metrics.computed()
        text = _encode(result)
        if text is None:
            await self._release(keys.l2, token)
            return _Answer(None, result, "none")
        self._l1[keys.l1] = text
        if keys.use_l2:
            await self._l2_put(keys.l2, text, token)
        return _Answer(text, None, "none")

    def _l2_hit(self, keys: _Keys, text: str, *, count: bool = True) -> _Answer:
        if count:
            self.metrics.hit("L2")
        self._l1[keys.l1] = text
        return _Answer(text, None, "L2")

    def _forget(self, key: tuple[str, tuple[int, ...]], task: asyncio.Task[_Answer]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _l2_get(self, key: str) -> str | None:
        assert self._link is not None
        ok, value = await self._link.run(lambda r: r.get(key))
        return value.decode() if ok and value is not None else None

    async def _lock(self, key: str) -> str:
        """A token if we hold the compute lock (or Redis failed: just compute), "" if busy."""
        assert self._link is not None
        token = secrets.token_hex(8)
        ok, acquired = await self._link.run(
            lambda r: r.set(f"{key}:lock", token, nx=True, px=LOCK_TTL_MS)
        )
        if not ok:
            return "-"
        return token if acquired else ""

    async def _await_holder(self, key: str) -> str | None:
        """Poll L2 for the lock holder's answer; None if it is slow, gone or Redis fails."""
        assert self._link is not None
        self.metrics.lock_wait()
        self._notify()
        deadline = self._loop.time() + self._lock_wait_s
        delay, cap = LOCK_POLL_S
        while self._loop.time() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, cap)
            ok, reply = await self._link.run(lambda r: _value_and_lock(r, key))
            if not ok:
                return None
            value, held = reply
            if value is not None:
                return str(value.decode())
            if not held:
                return None
        log.info("cache lock holder too slow, computing here wait_s={}", self._lock_wait_s)
        return None

    async def _l2_put(self, key: str, text: str, token: str) -> None:
        assert self._link is not None
        ttl = self._l2_ttl_ms

        async def put(r: redis.Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                pipe.set(key, text, px=ttl)
                if token:
                    pipe.eval(RELEASE_LUA, 1, f"{key}:lock", token)
                await pipe.execute()

        await self._link.run(put)

    async def _release(self, key: str, token: str) -> None:
        if token and self._link is not None:
            await self._link.run(lambda r: r.eval(RELEASE_LUA, 1, f"{key}:lock", token))


def _encode(result: dict[str, Any]) -> str | None:
    try:
        return json.dumps(result, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        log.warning("tool result is not JSON data; answered without caching")
        return None


async def _record_bumps(client: redis.Redis, keys: list[str], args: list[str]) -> list[int]:
    versions = await client.register_script(BUMP_LUA)(keys=keys, args=args)
    return [int(v) for v in versions]


async def _value_and_lock(client: redis.Redis, key: str) -> tuple[Any, Any]:
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.exists(f"{key}:lock")
        value, held = await pipe.execute()
    return value, held


async def create_cache(
    settings: Settings,
    bus: ChangeBus | None,
    *,
    registry: CollectorRegistry | None = None,
    namespace: str | None = None,
) -> TieredCache:
    """The cache a server process uses: L1, plus L2 when `OPTIMA_BI_REDIS_URL` is set.

    Subscribes to `bus` so that the sink's change notices bump data versions.
    The Redis namespace defaults to `optima-bi:<database>`, so that servers on
    the same store share answers and servers on different stores do not.
    """
    cache = TieredCache(
        l1_ttl_s=settings.l1_ttl_s,
        l1_max_entries=settings.l1_max_entries,
        l2_ttl_s=settings.l2_ttl_s,
        invalidation_interval_ms=settings.invalidation_interval_ms,
        refresh_min_asks=settings.refresh_min_asks,
        redis_url=settings.redis_url,
        namespace=namespace or f"optima-bi:{settings.database}",
        registry=registry,
    )
    await cache.start()
    if bus is not None:
        cache.attach(bus)
    log.info("cache ready layers={}", "L1+L2" if settings.redis_url else "L1")
    return cache
