"""Change notifications: what a durable batch of changes touched.

The sink publishes one `ChangeNotice` after each batch is written; the cache
subscribes to bump data versions, and the server reports `freshness`.

A notice says what changed in *data domains*, per merchant: the parts of the
source an answer can read (see `DOMAINS`). A change bumps only the domains
whose read values it alters: an order moving from `paid` to `shipped` alters
no figure (both count), so it bumps nothing, while a refund does. Rows of the
dated domains carry the instant metrics filter them by (`created_at`); a change
to rows created more than `PAST_AFTER` before it is applied also bumps the
domain's *past* version, which answers about periods that ended long enough
ago read instead of the full one (`cache.scopes`). Scope names:
`<domain>:<merchant uuid>` and `<domain>:*` (every merchant), each with a
`:past` twin for the dated domains.

Order items are dated by their order, as metrics select them: an item change
whose order changed in the same batch carries that order's `created_at`; and
an item of an order that counted neither before nor after the batch (an order
placed pending together with its items) alters no figure, so it bumps nothing:
the order's own change bumps `orders` when it starts to count, and every
answer that reads items reads orders too (cache.scopes.READS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from loguru import logger

log = logger.bind(module=__name__)

# What answers read, by domain: rows of one table, or the columns of one that
# some answer reads (`catalog`: what names a product in top_products).
DOMAINS = (
    "merchants",
    "orders",
    "order_items",
    "products",
    "catalog",
    "subscriptions",
    "transfers",
)
# Domains whose rows metrics select by an instant column, and that column. Order items
# are selected by their order's created_at (`Touched` dates them by their order).
DATED = {"orders": "created_at", "order_items": "created_at", "transfers": "created_at"}
# A change to rows dated more than this before the change alters the past: answers about
# periods that ended before it are then retired too. Newer rows (today's orders and their
# payments) leave such answers alone.
PAST_AFTER = timedelta(hours=1)

# METRICS.md: an order counts in these statuses; no figure tells the four apart.
COUNTED = frozenset({"paid", "shipped", "delivered", "completed"})
# Every column of an order some metric reads, beside its status (counted or not).
ORDER_FIGURES = (
    "id",
    "merchant_id",
    "created_at",
    "amount_total",
    "platform_fee",
    "customer_email",
)
_ORDER_READ = (*ORDER_FIGURES, "status")
CATALOG_COLUMNS = ("id", "merchant_id", "sku", "name", "category")

Image = Mapping[str, Any] | None


@dataclass
class _Order:
    """An order changed in the batch: its earliest `created_at`, and whether it may count."""

    created: datetime | None
    counted: bool
    # An old row of unknown date (an update without it): `created` is then meaningless.
    undated: bool = False

    @property
    def date(self) -> datetime | None:
        return None if self.undated else self.created


@dataclass
class Touched:
    """What one batch changed: per (domain, merchant) the earliest row instant touched.

    The instant is None when unknown (a dated row without its date) or the
    domain is not dated; None sorts before every instant, so it counts as old.
    Feed it every row change of the batch in order (`add`), then read `earliest`.
    """

    _dated: dict[tuple[str, UUID], datetime | None] = field(default_factory=dict)
    # Orders changed in the batch, and the (merchant, order) of every changed item.
    _orders: dict[UUID, _Order] = field(default_factory=dict)
    _items: set[tuple[UUID, UUID | None]] = field(default_factory=set)

    def add(self, table: str, merchant_column: str, op: str, before: Image, after: Image) -> None:
        """Record one row change of `table`: its op (c, r, u, d) and before/after images."""
        if table == "orders":
            self._order(op, before, after)
        for domain in changed_domains(table, op, before, after):
            if domain == "order_items":
                self._item(op, before, after)
                continue
            date_column = DATED.get(domain)
            if op == "u" and before is None and after and after.get(merchant_column):
                # Without REPLICA IDENTITY FULL the old row is unknown: it may be of any date.
                self._note((domain, after[merchant_column]), None)
            for image in (before, after):
                if image is None or image.get(merchant_column) is None:
                    continue
                when = image.get(date_column) if date_column else None
                self._note((domain, image[merchant_column]), _utc(when) if when else None)

    @property
    def earliest(self) -> dict[tuple[str, UUID], datetime | None]:
        """Per (domain, merchant) the earliest instant touched, items dated by their orders."""
        earliest = Touched(dict(self._dated))
        for merchant, order_id in self._items:
            order = self._orders.get(order_id) if order_id is not None else None
            if order is None:
                earliest._note(("order_items", merchant), None)  # its order's date is unknown
            elif order.counted:
                earliest._note(("order_items", merchant), order.date)
        return earliest._dated

    def _order(self, op: str, before: Image, after: Image) -> None:
        images = [image for image in (before, after) if image is not None]
        if not images or images[0].get("id") is None:
            return
        order_id = images[0]["id"]
        known = self._orders.get(order_id)
        if known is None:
            # What the order was before the batch: absent (created in it), or its old row.
            prior_known = op == "c" or (before is not None and "status" in before)
            known = self._orders[order_id] = _Order(None, not prior_known)
        known.undated = known.undated or (op != "c" and before is None)
        for image in images:
            known.counted = known.counted or image.get("status") in COUNTED
            when = image.get("created_at")
            if when is None:
                continue
            if known.created is None or _utc(when) < known.created:
                known.created = _utc(when)

    def _item(self, op: str, before: Image, after: Image) -> None:
        if op == "u" and before is None and after and after.get("merchant_id"):
            self._items.add((after["merchant_id"], None))  # the old row may be of another order
        for image in (before, after):
            if image is not None and image.get("merchant_id") is not None:
                self._items.add((image["merchant_id"], image.get("order_id")))

    def _note(self, key: tuple[str, UUID], when: datetime | None) -> None:
        if key not in self._dated:
            self._dated[key] = when
            return
        known = self._dated[key]
        if known is not None and (when is None or when < known):
            self._dated[key] = when


def changed_domains(table: str, op: str, before: Image, after: Image) -> tuple[str, ...]:
    """The domains a row change of `table` alters (none for a table no answer reads)."""
    if table == "orders":
        return ("orders",) if _order_figures_changed(op, before, after) else ()
    if table == "products":
        if _same(before, after, CATALOG_COLUMNS):
            return ("products",)
        return ("products", "catalog")
    if table == "customers":
        return ()  # METRICS.md's customer is the order's e-mail; no answer reads this table
    return (table,)


def _order_figures_changed(op: str, before: Image, after: Image) -> bool:
    if op in {"u", "d"} and (before is None or any(c not in before for c in _ORDER_READ)):
        return True  # the old row is unknown, so it may have counted
    counted = [image is not None and image.get("status") in COUNTED for image in (before, after)]
    if not any(counted):
        return False  # neither version counts anywhere (pending, cancelled, refunded)
    return not all(counted) or not _same(before, after, ORDER_FIGURES)


def _same(before: Image, after: Image, columns: Iterable[str]) -> bool:
    if before is None or after is None:
        return False
    return all(c in before and c in after and before[c] == after[c] for c in columns)


@dataclass(frozen=True)
class ChangeNotice:
    merchant_ids: frozenset[UUID] = field(default_factory=frozenset)
    platform: bool = False
    # Source commit time of the newest change applied (the data's freshness).
    freshness: datetime | None = None
    # What changed per (domain, merchant) (see Touched); None: any data of the merchants
    # named, and (with them or `platform`) of the whole platform, may have changed.
    touched: Mapping[tuple[str, UUID], datetime | None] | None = None

    def scopes(self, now: datetime) -> tuple[str, ...]:
        """The data scopes to bump for this notice, applied at `now`."""
        if self.touched is None:
            return self._every_scope()
        old = now - PAST_AFTER
        scopes: set[str] = set()
        for (domain, merchant), earliest in self.touched.items():
            names = [f"{domain}:{merchant}", f"{domain}:*"]
            if domain in DATED and (earliest is None or _utc(earliest) < old):
                names += [f"{name}:past" for name in names]
            scopes.update(names)
        return tuple(sorted(scopes))

    @property
    def data_scopes(self) -> tuple[str, ...]:
        """The data scopes to bump if the notice is applied now."""
        return self.scopes(datetime.now(UTC))

    def _every_scope(self) -> tuple[str, ...]:
        owners = [str(m) for m in sorted(self.merchant_ids, key=str)]
        if self.platform or owners:
            owners.append("*")
        scopes = [f"{d}:{owner}" for owner in owners for d in DOMAINS]
        scopes += [f"{d}:{owner}:past" for owner in owners for d in DATED]
        return tuple(sorted(scopes))


def _utc(value: datetime) -> datetime:
    # The store hands back naive UTC instants; decoded events carry aware ones.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


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
