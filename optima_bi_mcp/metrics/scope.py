"""What every merchant metric shares: the merchant row, query parameters, periods out.

Every merchant-scoped query filters by `merchant_id` first (the sorting keys
start with it) and reads the latest state with `FINAL`.
"""

from __future__ import annotations

import weakref
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from optima_bi_mcp.errors import NotFoundError
from optima_bi_mcp.metrics.models import PeriodOut
from optima_bi_mcp.metrics.periods import Period
from optima_bi_mcp.store.client import Store
from optima_bi_mcp.store.rollups import COUNTED_SQL

# The customer of METRICS.md: lower(trim(customer_email)) within one merchant.
CUSTOMER_SQL = "lowerUTF8(trimBoth(customer_email))"
# The same customer as its 128-bit hash, stored with every order (0005_orders_layout.sql):
# what counting and grouping customers use, so no query lower-cases every e-mail.
CUSTOMER_KEY = "customer_key"
COUNTED = COUNTED_SQL

# Ids of the merchant's counted orders created in [start, end): items are
# filtered by their order's status and created_at, never by their own.
COUNTED_ORDER_IDS = f"""
    SELECT id FROM orders FINAL
    WHERE merchant_id = {{merchant:UUID}}
      AND created_at >= {{start:DateTime64(6, 'UTC')}}
      AND created_at < {{end:DateTime64(6, 'UTC')}}
      AND {COUNTED}
"""

# The items of the merchant's counted orders created in [start, days_start) or
# [days_end, end): the partial days around whole UTC days [days_start, days_end),
# from the day lists of `merchant_day_items` (0008_merchant_day_items.sql).
EDGE_ITEMS = """
FROM merchant_day_items FINAL ARRAY JOIN items AS t
WHERE merchant_id = {merchant:UUID}
  AND day >= toDate({start:DateTime64(6, 'UTC')}) AND day <= toDate({end:DateTime64(6, 'UTC')})
  AND (day < toDate({days_start:DateTime64(6, 'UTC')})
       OR day >= toDate({days_end:DateTime64(6, 'UTC')}))
  AND ((t.created_at >= {start:DateTime64(6, 'UTC')}
        AND t.created_at < {days_start:DateTime64(6, 'UTC')})
    OR (t.created_at >= {days_end:DateTime64(6, 'UTC')}
        AND t.created_at < {end:DateTime64(6, 'UTC')}))
"""

_MERCHANT_SQL = """
SELECT name, currency FROM merchants FINAL WHERE id = {merchant:UUID}
"""


_MERCHANT_ORDERS_SQL = """
SELECT name, currency, (
    SELECT sum(orders) FROM merchant_monthly FINAL
    WHERE merchant_id = {merchant:UUID} AND month >= toStartOfMonth({since:Date})
)
FROM merchants FINAL WHERE id = {merchant:UUID}
"""


class MerchantRow(NamedTuple):
    """What a merchant answer needs of the merchant's own row."""

    name: str
    currency: str


class KnownRow(Protocol):
    """Where a caller keeps a merchant's row while it is current (the tool layer's,
    retired by the next change to the row that it notices)."""

    def get(self) -> MerchantRow | None: ...

    def put(self, row: MerchantRow) -> None: ...


def merchant_info(store: Store, merchant_id: UUID, known: KnownRow | None = None) -> MerchantRow:
    """The merchant's row; NOT_FOUND naming `merchant_id` if it does not exist.

    The row `known` keeps is returned as it is; otherwise it is read and kept there.
    """
    row = known.get() if known is not None else None
    if row is not None:
        return row
    rows = store.query(_MERCHANT_SQL, {"merchant": str(merchant_id)})
    if not rows:
        raise NotFoundError(f"no merchant with id {merchant_id}", argument="merchant_id")
    name, currency = rows[0]
    row = MerchantRow(str(name), str(currency))
    if known is not None:
        known.put(row)
    return row


# The counts of `merchant_orders_since` per store, by (merchant, first month): how
# many calls each has served and its value. A count only picks the faster of two
# exact ways to answer, and a merchant's volume moves slowly, so one read serves the
# next ORDERS_HINT_USES calls, which read the merchant's row alone (about 1.5 ms
# instead of 5 at 10M orders: `merchant_monthly` is sorted by month first).
ORDERS_HINT_USES = 64
_ORDERS_HINTS: weakref.WeakKeyDictionary[Store, dict[tuple[str, date], list[int]]] = (
    weakref.WeakKeyDictionary()
)


def merchant_orders_since(
    store: Store, merchant_id: UUID, since: datetime, known: KnownRow | None = None
) -> tuple[str, int]:
    """The merchant's currency and its counted orders from the month of `since` on.

    The count (from `merchant_monthly`, so one small read, remembered for
    ORDERS_HINT_USES calls) lets a metric pick the cheaper way to answer: a small
    merchant's orders read faster than rollups; it never changes an answer.
    NOT_FOUND naming `merchant_id` if the merchant does not exist. `known` is
    the merchant's row as in `merchant_info`.
    """
    month = since.astimezone(UTC).date().replace(day=1)
    hints = _ORDERS_HINTS.setdefault(store, {})
    key = (str(merchant_id), month)
    hint = hints.get(key)
    if hint is not None and hint[0] < ORDERS_HINT_USES:
        _, currency = merchant_info(store, merchant_id, known)
        hint[0] += 1
        return currency, hint[1]
    rows = store.query(_MERCHANT_ORDERS_SQL, {"merchant": str(merchant_id), "since": month})
    if not rows:
        raise NotFoundError(f"no merchant with id {merchant_id}", argument="merchant_id")
    name, currency, orders = rows[0]
    if known is not None:
        known.put(MerchantRow(str(name), str(currency)))
    if len(hints) > 10_000:
        hints.clear()
    hints[key] = [1, int(orders or 0)]
    return str(currency), int(orders or 0)


def utc_midnight(value: datetime, *, up: bool = False) -> datetime:
    """The UTC midnight at or before `value` (at or after it with `up`)."""
    midnight = datetime.combine(value.astimezone(UTC).date(), time(), tzinfo=UTC)
    return midnight + timedelta(days=1) if up and midnight < value else midnight


def instant(value: datetime) -> str:
    """A UTC instant as a `DateTime64(6, 'UTC')` parameter (microseconds kept)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def period_params(merchant_id: UUID, period: Period) -> dict[str, Any]:
    """The parameters naming a merchant and a period, shared by most queries."""
    return {
        "merchant": str(merchant_id),
        "start": instant(period.start),
        "end": instant(period.end),
        "tz": period.timezone,
    }


def period_out(period: Period) -> PeriodOut:
    return PeriodOut(
        start=period.start,
        end=period.end,
        timezone=period.timezone,
        start_date=period.start_date,
        end_date=period.end_date,
    )


def exact(value: Any) -> Decimal:
    """A store value (Decimal, int or None) as an exact Decimal."""
    return Decimal(value) if value is not None else Decimal(0)


def quotient(numerator: Any, denominator: Any) -> Decimal:
    """numerator / denominator unrounded, 0 when the denominator is 0 (e.g. aov)."""
    den = exact(denominator)
    return exact(numerator) / den if den else Decimal(0)
