"""Writing a batch of decoded change events to the store, idempotently.

Every row is written with `_version` = the event's WAL LSN, so the store's
ReplacingMergeTree tables keep the newest change whatever order or how many
times events arrive: a redelivered batch writes the same versions again and
changes nothing. A deletion is a row with `_is_deleted = 1` carrying the old
row's sorting key. After the write, the `merchant_daily` rollup rows of every
(merchant, UTC day) an order change touched, old and new, are recomputed from
the latest state (store.rollups), so platform figures stay exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from loguru import logger

from optima_bi_mcp.cdc.decode import EPOCH, ChangeEvent, sorting_key
from optima_bi_mcp.cdc.notify import ChangeNotice, Touched
from optima_bi_mcp.data.tables import BY_NAME, SourceTable
from optima_bi_mcp.store import rollups
from optima_bi_mcp.store.client import Store

log = logger.bind(module=__name__)

# Tables whose changes move platform-wide figures (METRICS.md, platform metrics).
PLATFORM_TABLES = frozenset({"orders", "merchants", "subscriptions", "transfers"})


@dataclass
class AppliedBatch:
    """What one applied batch touched, for notices, freshness and metrics."""

    events: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    merchant_ids: set[UUID] = field(default_factory=set)
    platform: bool = False
    rollup_keys: set[tuple[UUID, date]] = field(default_factory=set)
    # (merchant_id, order_id) of changed order items: their orders' days are refreshed too.
    item_orders: set[tuple[UUID, UUID]] = field(default_factory=set)
    # The UTC day of each order the batch changed, by (merchant_id, order_id): the
    # day of an item of such an order needs no look-up in the store.
    order_days: dict[tuple[UUID, UUID], date] = field(default_factory=dict)
    # (merchant_id, customer_email) of every image of a changed order; None once an
    # order update came without its old row (its old customer is then unknown).
    customers: set[tuple[UUID, str]] | None = field(default_factory=set)
    max_ts_ms: int | None = None
    # Highest LSN applied per table.
    lsn: dict[str, int] = field(default_factory=dict)
    unresolved_deletes: int = 0
    # What changed per data domain and merchant, for the cache (cdc.notify).
    touched: Touched = field(default_factory=Touched)

    @property
    def freshness(self) -> datetime | None:
        return None if self.max_ts_ms is None else _ms(self.max_ts_ms)

    def notice(self) -> ChangeNotice:
        """What this batch changed, for the cache and `bi://status`."""
        return ChangeNotice(
            merchant_ids=frozenset(self.merchant_ids),
            platform=self.platform,
            freshness=self.freshness,
            touched=self.touched.earliest,
        )


def apply_events(store: Store, events: Sequence[ChangeEvent]) -> AppliedBatch:
    """Write the newest change per primary key and refresh the touched rollup rows."""
    applied = write_events(store, events)
    refresh_rollups(store, applied)
    return applied


def refresh_rollups(store: Store, applied: AppliedBatch) -> None:
    """Recompute the rollup rows of the keys a written batch touched."""
    rollups.refresh_rollups(
        store,
        applied.rollup_keys,
        applied.item_orders,
        applied.order_days,
        changed_orders=[order_id for _, order_id in applied.order_days],
        customers=applied.customers,
    )


def write_events(store: Store, events: Sequence[ChangeEvent]) -> AppliedBatch:
    """Write the newest change per primary key (rollups are `refresh_rollups`' job)."""
    applied = AppliedBatch(events=len(events))
    if not events:
        return applied

    full_images = _full_images(events)
    newest: dict[tuple[str, UUID], ChangeEvent] = {}
    extra: dict[str, list[tuple[Any, ...]]] = {}
    for event in events:
        _note(applied, event)
        key = (event.table.name, event.id)
        if key not in newest or newest[key].lsn <= event.lsn:
            newest[key] = event
        moved = _moved_row(event)
        if moved is not None:
            extra.setdefault(event.table.name, []).append(_store_row(event.table, moved, event, 1))

    rows = _rows_by_table(store, newest.values(), full_images, applied)
    for table_name, more in extra.items():
        rows.setdefault(table_name, []).extend(more)
    for table_name, table_rows in rows.items():
        store.insert(table_name, table_rows, BY_NAME[table_name].store_columns)
        applied.rows[table_name] = len(table_rows)
    return applied


def _note(applied: AppliedBatch, event: ChangeEvent) -> None:
    """Record the merchants, rollup keys, freshness and position an event touches."""
    name = event.table.name
    applied.platform = applied.platform or name in PLATFORM_TABLES
    applied.lsn[name] = max(applied.lsn.get(name, 0), event.lsn)
    applied.max_ts_ms = max(applied.max_ts_ms or 0, event.ts_ms)
    merchant_column = event.table.merchant_column or "id"
    applied.touched.add(name, merchant_column, event.op, event.before, event.after)
    if name == "orders" and event.op == "u" and "customer_email" not in (event.before or {}):
        applied.customers = None
    for image in (event.before, event.after):
        if image is None:
            continue
        merchant = image.get(merchant_column)
        if merchant is not None:
            applied.merchant_ids.add(merchant)
        if name == "orders" and merchant is not None and "created_at" in image:
            day = image["created_at"].date()
            applied.rollup_keys.add((merchant, day))
            applied.order_days[(merchant, event.id)] = day
            if applied.customers is not None and "customer_email" in image:
                applied.customers.add((merchant, image["customer_email"]))
        if name == "order_items" and merchant is not None and image.get("order_id") is not None:
            applied.item_orders.add((merchant, image["order_id"]))


def _full_images(events: Sequence[ChangeEvent]) -> dict[tuple[str, UUID], dict[str, Any]]:
    """The latest complete row per key seen in the batch, for key-only deletions."""
    images: dict[tuple[str, UUID], dict[str, Any]] = {}
    for event in events:
        for image in (event.before, event.after):
            if image is not None and len(image) == len(event.table.columns):
                images[(event.table.name, event.id)] = image
    return images


def _moved_row(event: ChangeEvent) -> dict[str, Any] | None:
    """The old row of an update that changed the sorting key (it must be deleted)."""
    if event.op != "u" or event.before is None or event.after is None:
        return None
    columns = sorting_key(event.table.name)
    if any(c not in event.before for c in columns):
        return None
    if all(event.before[c] == event.after[c] for c in columns):
        return None
    return event.before


def _rows_by_table(
    store: Store,
    newest: Iterable[ChangeEvent],
    full_images: dict[tuple[str, UUID], dict[str, Any]],
    applied: AppliedBatch,
) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {}
    lookups: dict[str, list[ChangeEvent]] = {}
    for event in newest:
        if not event.is_delete:
            assert event.after is not None
            rows.setdefault(event.table.name, []).append(
                _store_row(event.table, event.after, event, 0)
            )
            continue
        image = _complete(event.before, event.table) or full_images.get(
            (event.table.name, event.id)
        )
        if image is None:
            lookups.setdefault(event.table.name, []).append(event)
            continue
        rows.setdefault(event.table.name, []).append(_store_row(event.table, image, event, 1))

    for table_name, pending in lookups.items():
        found = _lookup_rows(store, BY_NAME[table_name], [e.id for e in pending])
        for event in pending:
            image = found.get(event.id)
            if image is None:
                # Never seen by the store, so there is nothing to delete.
                applied.unresolved_deletes += 1
                continue
            _note(applied, _with_before(event, image))
            rows.setdefault(table_name, []).append(_store_row(event.table, image, event, 1))
    return rows


def _complete(image: dict[str, Any] | None, table: SourceTable) -> dict[str, Any] | None:
    if image is None or len(image) != len(table.columns):
        return None
    return image


def _lookup_rows(store: Store, table: SourceTable, ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """Latest stored rows by id: the fallback for deletions that carry the key only."""
    columns = ", ".join(table.columns)
    # Identifiers come from TABLES, never from input.
    found = store.query(
        f"SELECT {columns} FROM {table.name} FINAL WHERE id IN {{ids:Array(UUID)}}",
        {"ids": ids},
    )
    rows = [dict(zip(table.columns, row, strict=True)) for row in found]
    return {UUID(str(row["id"])): row for row in rows}


def _with_before(event: ChangeEvent, image: dict[str, Any]) -> ChangeEvent:
    return ChangeEvent(event.table, event.op, event.id, None, image, event.lsn, event.ts_ms)


def _store_row(
    table: SourceTable, image: dict[str, Any], event: ChangeEvent, deleted: int
) -> tuple[Any, ...]:
    return (*(image[c] for c in table.columns), event.lsn, deleted)


def _ms(ts_ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ts_ms)
