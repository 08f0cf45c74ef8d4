"""The data scopes an answer reads: its key holds their versions, and nothing else's.

Each tool reads a few data domains (cdc.notify.DOMAINS), of one merchant or of
the whole platform (`*`). An answer about a period that ended more than
`PAST_READ_AFTER` ago reads the *past* version of the dated domains, which
only changes that touch rows created more than `PAST_AFTER` before they were
applied bump; so today's orders leave last month's answers cached, while a
refund of an order of last month retires them.

Why this is never stale: let an answer be keyed at t (this process's clock)
on a period ending at E <= t - PAST_READ_AFTER. A change it could miss is
applied after its computation read the store, and touches a row it read, so
one created before E. The cache that turns the change's notice into bumps
does so later, at t' by its own clock; if that clock is at most
PAST_READ_AFTER - PAST_AFTER (an hour) behind ours, the row was created more
than PAST_AFTER before t', so the notice bumps the past version. Time zones do
not enter: E and `created_at` are instants.

An answer read up to now (last N days, this month, as of today) also depends
on the date: its key holds a scope naming today in the answer's zone
(`today_scope`), so that after midnight it is computed for the new day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from optima_bi_mcp.cdc.notify import DATED, PAST_AFTER
from optima_bi_mcp.metrics.periods import (
    local_midnight,
    month_bounds,
    parse_month,
    resolve_period,
    zone,
)

PAST_READ_AFTER = PAST_AFTER + timedelta(hours=1)

# The domains each tool reads (rollups count as `orders`: they are recomputed from it).
# tests/cache/test_scopes.py checks these against the tables each tool's SQL names.
READS: dict[str, tuple[str, ...]] = {
    "get_sales": ("merchants", "orders"),
    "top_products": ("merchants", "orders", "order_items", "catalog"),
    "customer_summary": ("merchants", "orders"),
    "churned_customers": ("merchants", "orders"),
    "inventory_status": ("merchants", "orders", "order_items", "products"),
    "platform_overview": ("merchants", "orders"),
    "platform_merchants": ("merchants", "orders"),
    "platform_mrr": ("subscriptions",),
    "platform_revenue": ("orders", "subscriptions", "transfers"),
}


def data_scopes(
    tool: str, arguments: dict[str, Any], merchant_id: UUID | None, now: datetime
) -> tuple[str, ...]:
    """The scopes an answer of `tool` reads: `merchant_id`'s, or the platform's if None.

    `arguments` are the validated arguments' JSON dump. Arguments that fail to
    resolve (a bad zone, say) give the full versions; the tool refuses them anyway.
    """
    owner = "*" if merchant_id is None else str(merchant_id)
    try:
        end = period_end(tool, arguments, now)
        up_to_now = end is None
    except Exception:
        end, up_to_now = None, False
    past = end is not None and end <= now - PAST_READ_AFTER
    scopes = tuple(
        f"{domain}:{owner}:past" if past and domain in DATED else f"{domain}:{owner}"
        for domain in READS[tool]
    )
    return (*scopes, today_scope(arguments, now)) if up_to_now else scopes


def today_scope(arguments: dict[str, Any], now: datetime) -> str:
    """The scope naming today's date in the answer's zone, for answers read up to now.

    It is never bumped; its name changes at midnight, and so does the key of
    every answer whose period (last N days, this month, as of today) moves then.
    """
    name = arguments.get("timezone") or "UTC"
    try:
        tz = zone(name)
    except Exception:
        name, tz = "UTC", zone("UTC")
    return f"day:{name}:{now.astimezone(tz).date().isoformat()}"


def period_end(tool: str, arguments: dict[str, Any], now: datetime) -> datetime | None:
    """The end of the time an answer of `tool` reads rows of, or None if it reads up to now."""
    if tool in {"get_sales", "top_products", "customer_summary", "platform_revenue"}:
        if arguments.get("end") is None:
            return None  # `days`: up to now
        return resolve_period(
            start=_date(arguments.get("start")),
            end=_date(arguments.get("end")),
            days=None,
            timezone=arguments.get("timezone") or "UTC",
            default_days=1,
            now=now,
        ).end
    if tool == "churned_customers" and arguments.get("as_of") is not None:
        tz = zone(arguments.get("timezone") or "UTC")
        return local_midnight(date.fromisoformat(arguments["as_of"]) + timedelta(days=1), tz)
    if tool == "platform_overview" and arguments.get("month") is not None:
        return month_bounds(parse_month(arguments["month"], now))[1]
    return None


def _date(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(str(value))
