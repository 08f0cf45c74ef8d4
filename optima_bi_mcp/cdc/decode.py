"""Decoding Debezium change events (JSON converter) into typed rows of the seven tables.

A change event's value is `{"schema": …, "payload": {"before", "after", "source",
"op", …}}` (or the bare payload when the converter runs without schemas). The
payload's column values are decoded by the store column's kind, using the field
schema to tell which encoding Debezium chose:

- numeric: `org.apache.kafka.connect.data.Decimal` bytes (base64 big-endian
  two's-complement unscaled value, scale in the schema's parameters), a
  `VariableScaleDecimal` struct, or a string (`decimal.handling.mode=string`).
  Doubles are refused: they are not exact.
- timestamptz: `io.debezium.time.ZonedTimestamp` ISO strings; timestamp
  without zone: `MicroTimestamp` / `NanoTimestamp` / `Timestamp` integers.
- uuid: `io.debezium.data.Uuid` strings.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from optima_bi_mcp.data.tables import BY_NAME, SourceTable
from optima_bi_mcp.errors import ChangeEventError

OPS = frozenset({"c", "u", "d", "r"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_UUID = frozenset({"id", "merchant_id", "order_id", "product_id"})
_DECIMAL = frozenset({"price", "cost", "amount_total", "platform_fee", "unit_price", "amount"})
_TIMESTAMP = frozenset({"created_at", "updated_at", "started_at", "trial_ends_at", "canceled_at"})
_INTEGER = frozenset({"stock_quantity", "low_stock_threshold", "quantity"})
NULLABLE = frozenset({"cost", "trial_ends_at", "canceled_at"})

# Columns of each table's sorting key in the store: a deletion must carry them
# all, or ReplacingMergeTree keeps the row it was meant to remove.
SORTING_KEY: dict[str, tuple[str, ...]] = {
    "merchants": ("id",),
    "orders": ("merchant_id", "created_at", "id"),
}
DEFAULT_SORTING_KEY = ("merchant_id", "id")


def sorting_key(table: str) -> tuple[str, ...]:
    """The store's sorting-key columns of a table."""
    return SORTING_KEY.get(table, DEFAULT_SORTING_KEY)


@dataclass(frozen=True)
class ChangeEvent:
    """One decoded row change, positioned by its WAL LSN."""

    table: SourceTable
    op: str
    id: UUID
    # The new row for c/u/r; None for d.
    after: dict[str, Any] | None
    # The old row for u/d: every column under REPLICA IDENTITY FULL, else the key only.
    before: dict[str, Any] | None
    lsn: int
    # Source commit time (ms since the epoch).
    ts_ms: int

    @property
    def is_delete(self) -> bool:
        return self.op == "d"

    @property
    def committed_at(self) -> datetime:
        return EPOCH + timedelta(milliseconds=self.ts_ms)


def table_of_topic(topic: str, prefix: str) -> SourceTable | None:
    """The source table of a change topic `<prefix>.public.<table>`, if it is one."""
    head = f"{prefix}.public."
    if not topic.startswith(head):
        return None
    return BY_NAME.get(topic[len(head) :])


def decode_event(topic: str, prefix: str, value: bytes) -> ChangeEvent:
    """Decode one change event; raises ChangeEventError with the reason if it cannot."""
    table = table_of_topic(topic, prefix)
    if table is None:
        raise ChangeEventError(f"topic {topic} is not a change topic of prefix {prefix}")
    payload, fields = _payload_and_fields(value)

    op = payload.get("op")
    if op not in OPS:
        raise ChangeEventError(f"unknown op {op!r}")
    source = payload.get("source")
    if not isinstance(source, dict):
        raise ChangeEventError("event has no source block")
    lsn: Any = source.get("lsn")
    ts_ms: Any = source.get("ts_ms")
    if not _is_int(lsn) or not _is_int(ts_ms):
        raise ChangeEventError("source.lsn and source.ts_ms must be integers")

    raw_after, schemas = payload.get("after"), fields.get("after")
    after = _row(table, raw_after, schemas, partial=False)
    like = (raw_after, after) if fields.get("before") == schemas else (None, None)
    before = _row(table, payload.get("before"), fields.get("before"), partial=True, like=like)
    image = before if op == "d" else after
    if image is None or "id" not in image:
        side = "before" if op == "d" else "after"
        raise ChangeEventError(f"op {op} needs a {side} image with the id")
    return ChangeEvent(table, op, image["id"], after, before, int(lsn), int(ts_ms))


def _parse_json(value: bytes) -> Any:
    # orjson: parsing is most of the per-message cost of decoding, and orjson does it
    # about four times faster than the standard library, with the same results here.
    try:
        return orjson.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ChangeEventError(f"value is not JSON: {exc}") from exc


def _payload_and_fields(value: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The payload and, per envelope field (before/after), its column schemas by name.

    The JSON converter repeats the same schema (about three quarters of the
    bytes) in every message; it is parsed once per distinct schema text and
    only the payload is parsed per message.
    """
    start, cut = value.find(_SCHEMA_HEAD), value.find(_PAYLOAD_HEAD)
    if start == 0 and cut > 0 and value.endswith(b"}"):
        schema_text = value[len(_SCHEMA_HEAD) : cut]
        fields = _SCHEMA_CACHE.get(schema_text)
        if fields is None:
            fields = _schema_fields(_parse_json(schema_text))
            if len(_SCHEMA_CACHE) >= 256:
                _SCHEMA_CACHE.clear()
            _SCHEMA_CACHE[schema_text] = fields
        payload = _parse_json(value[cut + len(_PAYLOAD_HEAD) : -1])
        if not isinstance(payload, dict):
            raise ChangeEventError("payload is not a JSON object")
        return payload, fields

    envelope = _parse_json(value)
    if not isinstance(envelope, dict):
        raise ChangeEventError("value is not a JSON object")
    if "payload" not in envelope:
        return envelope, {}
    payload = envelope["payload"]
    if not isinstance(payload, dict):
        raise ChangeEventError("payload is not a JSON object")
    return payload, _schema_fields(envelope.get("schema"))


_SCHEMA_HEAD = b'{"schema":'
_PAYLOAD_HEAD = b',"payload":'
_SCHEMA_CACHE: dict[bytes, dict[str, Any]] = {}


def _schema_fields(schema: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for part in (schema or {}).get("fields", []) if isinstance(schema, dict) else []:
        if isinstance(part, dict) and part.get("field") in ("before", "after"):
            fields[part["field"]] = {
                f.get("field"): f for f in part.get("fields", []) if isinstance(f, dict)
            }
    return fields


def _row(
    table: SourceTable,
    data: Any,
    schemas: dict[str, Any] | None,
    *,
    partial: bool,
    like: tuple[Any, dict[str, Any] | None] = (None, None),
) -> dict[str, Any] | None:
    """A row image decoded by column.

    `like` is the other image of the event, raw and decoded: an update's old
    row mostly repeats the new one, and a value whose encoding is the same
    (under the same column schema) decodes to the same value, so it is not
    decoded twice.
    """
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ChangeEventError("row image is not a JSON object")
    missing = [c for c in table.columns if c not in data]
    if missing and not partial:
        raise ChangeEventError(f"{table.name} row lacks columns {missing}")
    schemas = schemas or {}
    raw, decoded = like
    if not isinstance(raw, dict) or decoded is None:
        raw, decoded = {}, {}
    row = {}
    for column in table.columns:
        if column not in data:
            continue
        value = data[column]
        if column in decoded and raw.get(column, _ABSENT) == value:
            row[column] = decoded[column]
        else:
            row[column] = decode_column(column, value, schemas.get(column))
    return row


_ABSENT = object()


def decode_column(column: str, value: Any, schema: dict[str, Any] | None = None) -> Any:
    """One column value in the Python type the store insert expects."""
    if value is None:
        if column in NULLABLE:
            return None
        raise ChangeEventError(f"column {column} is null")
    try:
        return _DECODERS.get(column, _text)(column, value, schema or {})
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ChangeEventError(f"column {column}: {exc}") from exc


def _uuid(column: str, value: Any, schema: dict[str, Any]) -> UUID:
    return UUID(_expect(value, str, column))


def _decimal(column: str, value: Any, schema: dict[str, Any]) -> Decimal:
    return _money(decode_decimal(value, schema))


def _timestamp(column: str, value: Any, schema: dict[str, Any]) -> datetime:
    return decode_timestamp(value, schema)


def _integer(column: str, value: Any, schema: dict[str, Any]) -> int:
    return int(_expect(value, int, column))


def _text(column: str, value: Any, schema: dict[str, Any]) -> str:
    return str(_expect(value, str, column))


# The decoder of each column by name, chosen once rather than per value.
_DECODERS: dict[str, Callable[[str, Any, dict[str, Any]], Any]] = {
    **dict.fromkeys(_UUID, _uuid),
    **dict.fromkeys(_DECIMAL, _decimal),
    **dict.fromkeys(_TIMESTAMP, _timestamp),
    **dict.fromkeys(_INTEGER, _integer),
}


def decode_decimal(value: Any, schema: dict[str, Any]) -> Decimal:
    """A Debezium numeric, exactly: bytes with the schema's scale, a struct, or a string."""
    name = schema.get("name")
    if isinstance(value, dict):
        # io.debezium.data.VariableScaleDecimal: numeric columns without a scale.
        return _unscaled(base64.b64decode(value["value"], validate=True), int(value["scale"]))
    if name == "org.apache.kafka.connect.data.Decimal" and isinstance(value, str):
        scale = int((schema.get("parameters") or {}).get("scale", 0))
        return _unscaled(base64.b64decode(value, validate=True), scale)
    if isinstance(value, str):
        decoded = Decimal(value)
        if not decoded.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return decoded
    raise ValueError(f"{type(value).__name__} is not an exact decimal encoding")


def _money(value: Decimal) -> Decimal:
    """A numeric(12,2) value, or an error: one the store cannot hold would stall every batch."""
    if value != value.quantize(_CENT) or abs(value) >= _MONEY_LIMIT:
        raise ValueError(f"{value} does not fit numeric(12,2)")
    return value


_CENT = Decimal("0.01")
_MONEY_LIMIT = Decimal(10) ** 10


def _unscaled(raw: bytes, scale: int) -> Decimal:
    return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)


def decode_timestamp(value: Any, schema: dict[str, Any]) -> datetime:
    """A Debezium timestamp as an aware UTC datetime."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone")
        return parsed.astimezone(UTC)
    name = schema.get("name", "io.debezium.time.MicroTimestamp")
    ticks = _expect(value, int, "timestamp")
    if name == "io.debezium.time.NanoTimestamp":
        return EPOCH + timedelta(microseconds=ticks // 1000)
    if name in ("io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp"):
        return EPOCH + timedelta(milliseconds=ticks)
    return EPOCH + timedelta(microseconds=ticks)


def _expect(value: Any, kind: type, column: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{column} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
