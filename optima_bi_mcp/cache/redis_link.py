"""The cache's connection to Redis: bounded timeouts, reconnects with backoff, pub/sub.

Redis is an accelerator, never a dependency: every command is bounded by a
short timeout, a failure marks the link down (callers then skip Redis at once
instead of waiting on it again), and a background task probes with growing
delays until Redis answers, then subscribes again and tells the cache, which
must assume it missed invalidations while it was away.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from loguru import logger
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logger.bind(module=__name__)

Op = Callable[[redis.Redis], Awaitable[Any]]

# A command that takes longer than this is treated as Redis being unavailable.
REDIS_TIMEOUT_S = 0.2
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0
# How long one pub/sub read waits before looping (and noticing cancellation).
PUBSUB_POLL_S = 1.0
FAILURES = (RedisError, OSError, TimeoutError)


class RedisLink:
    """One Redis client plus a pub/sub subscription, with an up/down state.

    `on_message(data)` receives each pub/sub message on this link's channel;
    `on_up()` runs on every (re)connection, after the subscription is live and
    before any command goes through the new connection.
    """

    def __init__(
        self,
        url: str,
        base_namespace: str,
        on_message: Callable[[bytes], None],
        on_up: Callable[[], None],
        on_error: Callable[[], None],
        *,
        timeout_s: float = REDIS_TIMEOUT_S,
        backoff_min_s: float = BACKOFF_MIN_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        # No retries inside redis-py: its default retries with backoff would
        # turn a dead Redis into seconds of latency on every tool call.
        # Named, so that an operator (or a test) can tell this instance's
        # connections apart in CLIENT LIST.
        self.client_name = f"optima-bi-cache-{secrets.token_hex(4)}"
        self.client = redis.Redis.from_url(
            url,
            client_name=self.client_name,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._base = base_namespace
        self._on_message = on_message
        self._on_up = on_up
        self._on_error = on_error
        self._timeout_s = timeout_s
        self._backoff = (backoff_min_s, backoff_max_s)
        self.up = False
        # Bumped on every connection, so that a reply from an earlier
        # connection is not mistaken for a current one.
        self.epoch = 0
        self.namespace = f"{base_namespace}:-"
        self._listener: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def channel(self) -> str:
        """The pub/sub channel of version bumps, inside the current namespace."""
        return f"{self.namespace}:bumps"

    async def start(self) -> None:
        """Connect once; if Redis is not there, keep trying in the background."""
        if not await self._connect():
            log.warning("redis unavailable at start, serving from L1 and the store")
            self._schedule_reconnect()

    async def run(self, op: Op) -> tuple[bool, Any]:
        """Run `op(client)` within the timeout: `(True, result)`, or `(False, None)`.

        While the link is down this returns at once without touching Redis.
        """
        if not self.up:
            return False, None
        try:
            # Socket timeouts bound each read; this bounds the whole operation
            # (pool checkout, several replies of a pipeline).
            async with asyncio.timeout(self._timeout_s * 3):
                return True, await op(self.client)
        except FAILURES as exc:
            self._lost(exc)
            return False, None

    async def aclose(self) -> None:
        """Stop the background tasks and close the connections."""
        self._closed = True
        self.up = False
        for task in (self._listener, self._reconnector):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.client.aclose()

    def _lost(self, exc: BaseException) -> None:
        self._on_error()
        if not self.up or self._closed:
            return
        self.up = False
        log.warning("redis unavailable, serving from L1 and the store error={}", type(exc).__name__)
        if self._listener is not None and self._listener is not asyncio.current_task():
            self._listener.cancel()
        self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        if self._closed or (self._reconnector is not None and not self._reconnector.done()):
            return
        self._reconnector = asyncio.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay, cap = self._backoff
        while not self._closed:
            # Jitter, so that many instances do not probe in lockstep.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            if await self._connect():
                log.info("redis reconnected namespace={}", self.namespace)
                return
            delay = min(delay * 2, cap)

    async def _connect(self) -> bool:
        await self._drop_connections()
        pubsub: PubSub | None = None
        try:
            async with asyncio.timeout(self._timeout_s * 5):
                info = await self.client.info("server")
                # The server's run id changes on every restart: keys made under
                # an earlier run (restored from a snapshot, say) are never read.
                self.namespace = f"{self._base}:{str(info.get('run_id', '-'))[:8]}"
                pubsub = self.client.pubsub(ignore_subscribe_messages=False)
                await pubsub.subscribe(self.channel)
                await _confirmed(pubsub)
        except FAILURES:
            if pubsub is not None:
                await _close_quietly(pubsub)
            return False

        self.epoch += 1
        self._on_up()
        self.up = True
        self._listener = asyncio.create_task(self._listen(pubsub))
        log.debug("redis connected namespace={}", self.namespace)
        return True

    async def _listen(self, pubsub: PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=PUBSUB_POLL_S
                )
                if message is not None and message.get("type") == "message":
                    self._on_message(message["data"])
        except FAILURES as exc:
            self._lost(exc)
        finally:
            await _close_quietly(pubsub)

    async def _drop_connections(self) -> None:
        try:
            await self.client.connection_pool.disconnect()
        except FAILURES:
            log.debug("closing stale redis connections failed")


async def _confirmed(pubsub: PubSub) -> None:
    """Wait for the subscription's confirmation: from then on no bump is missed."""
    while True:
        message = await pubsub.get_message(timeout=REDIS_TIMEOUT_S)
        if message is not None and message.get("type") == "subscribe":
            return


async def _close_quietly(pubsub: PubSub) -> None:
    try:
        await asyncio.shield(pubsub.aclose())
    except (*FAILURES, asyncio.CancelledError):
        log.debug("closing the redis subscription failed")
