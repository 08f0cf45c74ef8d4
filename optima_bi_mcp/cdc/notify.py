"""Change notifications: what a durable batch of changes touched.

The sink publishes one `ChangeNotice` after each batch is written; the cache
subscribes to bump data versions, and the server reports `freshness`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from loguru import logger

log = logger.bind(module=__name__)


@dataclass(frozen=True)
class ChangeNotice:
    merchant_ids: frozenset[UUID] = field(default_factory=frozenset)
    platform: bool = False
    # Source commit time of the newest change applied (the data's freshness).
    freshness: datetime | None = None

    @property
    def data_scopes(self) -> tuple[str, ...]:
        """Scopes whose data changed: `merchant:<uuid>` each, and `platform`."""
        scopes = tuple(f"merchant:{m}" for m in sorted(self.merchant_ids, key=str))
        return (*scopes, "platform") if self.platform else scopes


Listener = Callable[[ChangeNotice], None]


class ChangeBus:
    """In-process fan-out of change notices to subscribers (the cache, status)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.freshness: datetime | None = None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, notice: ChangeNotice) -> None:
        if notice.freshness and (self.freshness is None or notice.freshness > self.freshness):
            self.freshness = notice.freshness
        for listener in list(self._listeners):
            try:
                listener(notice)
            except Exception:
                log.exception("change listener failed")
