"""`optima-bi sink`: the standalone CDC sink process."""

from __future__ import annotations

import argparse
import signal
from types import FrameType
from typing import TYPE_CHECKING

import anyio
from loguru import logger
from prometheus_client import start_http_server

from optima_bi_mcp.errors import OptimaError
from optima_bi_mcp.settings import Settings

if TYPE_CHECKING:
    from optima_bi_mcp.cdc.sink import Sink

log = logger.bind(module=__name__)


def run_sink(args: argparse.Namespace) -> int:
    """Consume the change topics into the store until SIGTERM/SIGINT, then drain."""
    from optima_bi_mcp.cdc.sink import Sink
    from optima_bi_mcp.store import open_store

    overrides = {
        "store": args.store,
        "kafka_bootstrap": args.bootstrap,
        "kafka_group": args.group,
        "kafka_topic_prefix": getattr(args, "topic_prefix", None),
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    store = open_store(settings.store, database=settings.database)
    sink = Sink(settings, store)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received signal={}; draining", signal.Signals(signum).name)
        sink.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    port = getattr(args, "metrics_port", None)
    if port is not None:
        start_http_server(port, addr="127.0.0.1", registry=sink.telemetry.registry)
        log.info("sink metrics at http://127.0.0.1:{}/metrics", port)
    try:
        if settings.redis_url:
            anyio.run(_run_announcing, sink, settings)
        else:
            sink.run()
    except OptimaError as exc:
        log.error("sink failed: {}", exc.message)
        return 2
    finally:
        store.close()
    return 0


async def _run_announcing(sink: Sink, settings: Settings) -> None:
    """Run the sink with its change notices bumping data versions in Redis.

    Serving processes share those versions through Redis pub/sub, so a change
    the sink applies retires their cached answers at once.
    """
    from optima_bi_mcp.cache import create_cache

    cache = await create_cache(settings, sink.bus)
    try:
        await anyio.to_thread.run_sync(sink.run)
    finally:
        await cache.aclose()
