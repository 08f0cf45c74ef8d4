"""What every merchant metric shares: the merchant row, query parameters, periods out.

Every merchant-scoped query filters by `merchant_id` first (the sorting keys
start with it) and reads the latest state with `FINAL`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from optima_bi_mcp.errors import NotFoundError
from optima_bi_mcp.metrics.models import PeriodOut
from optima_bi_mcp.metrics.periods import Period
from optima_bi_mcp.store.client import Store
from optima_bi_mcp.store.rollups import COUNTED_SQL

# The customer of METRICS.md: lower(trim(customer_email)) within one merchant.
CUSTOMER_SQL = "lowerUTF8(trimBoth(customer_email))"
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

_MERCHANT_SQL = """
SELECT name, currency FROM merchants FINAL WHERE id = {merchant:UUID}
"""


def merchant_info(store: Store, merchant_id: UUID) -> tuple[str, str]:
    """The merchant's (name, currency); NOT_FOUND naming `merchant_id` if it does not exist."""
    rows = store.query(_MERCHANT_SQL, {"merchant": str(merchant_id)})
    if not rows:
        raise NotFoundError(f"no merchant with id {merchant_id}", argument="merchant_id")
    name, currency = rows[0]
    return str(name), str(currency)


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
