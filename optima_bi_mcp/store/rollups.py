"""Keeping the order rollups exact by recomputing the keys a batch of changes touched.

Per merchant and UTC day, of the counted orders (METRICS.md) of the latest state:
`merchant_daily` sums them, `merchant_day_orders` lists them (created_at,
amount_total, platform_fee) for splitting a day at an instant, and
`merchant_day_customers` lists their customers; `merchant_monthly` sums them per
month. Per merchant, day and product, `product_daily` sums their items, and
`merchant_day_items` lists those items for splitting a day. `customer_facts`
holds every customer's facts over all counted orders.

Writers call `refresh_rollups` with the (merchant_id, day) keys a batch of
changes touched (both the old and the new day of a changed order) and the orders
of changed items: the day rows of those keys are recomputed from `orders FINAL`
(and `order_items FINAL`), the month rows holding those days from
`merchant_daily FINAL`, and the facts of every customer whose figures on one of
those days moved; all are written again with a new version, zeros, empty lists
and deletions included, so the result never depends on how many times or in
which order changes arrived.

Each rollup is refreshed by one `INSERT … SELECT`, so the lists of a large
merchant's day (thousands of orders and items, rewritten whole at every batch
that touches the day) are read, compared and written inside the engine and
never pass through Python; a refresh is about seven statements whatever the
batch holds, in three chains that run beside each other (the order, customer and
item rollups), each statement on one thread. Subqueries a statement reads more
than once are `MATERIALIZED` common table expressions (`enable_materialized_cte`),
computed once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from loguru import logger

from optima_bi_mcp.store.client import Store

log = logger.bind(module=__name__)

COUNTED_STATUSES = ("paid", "shipped", "delivered", "completed")
COUNTED_SQL = "status IN ('paid', 'shipped', 'delivered', 'completed')"

# A refresh statement reads and writes the few keys of one batch: on one thread it
# builds no parallel pipeline for them, which costs more than it saves at that size,
# and the chains that run beside each other (refresh_rollups) use the cores instead.
_ONE_THREAD = "max_threads = 1"

# Every table Optima BI reads: the latest state (0001_latest_state.sql) and the
# rollups, all read with FINAL; compacted after bulk loads, counted by bi://status.
STORE_TABLES = (
    "merchants",
    "customers",
    "products",
    "orders",
    "order_items",
    "subscriptions",
    "transfers",
    "merchant_daily",
    "merchant_monthly",
    "merchant_day_orders",
    "merchant_day_customers",
    "customer_facts",
    "product_daily",
    "merchant_day_items",
)

_ORDER_ROLLUPS = (
    "merchant_day_orders",
    "merchant_daily",
    "merchant_monthly",
    "merchant_day_customers",
    "customer_facts",
    "product_daily",
    "merchant_day_items",
)

# The statements below work on a batch's keys inside the store: the lists of a
# large merchant's day (thousands of orders and items) are read, compared and
# written by the engine, never decoded into Python. Their parameters:
# `keys` the (merchant_id, day) pairs, `merchants` and [lo, hi) / [first, last]
# their bounds (for the sorting keys), `version` the rows' new version.
_KEY_ROWS = """(
    SELECT k.1 AS merchant_id, k.2 AS day
    FROM (SELECT arrayJoin({keys:Array(Tuple(UUID, Date))}) AS k)
)"""
_DAY_KEYS = """merchant_id IN {merchants:Array(UUID)}
      AND day >= {first:Date} AND day <= {last:Date}
      AND (merchant_id, day) IN {keys:Array(Tuple(UUID, Date))}"""
_COUNTED_OF_KEYS = f"""merchant_id IN {{merchants:Array(UUID)}}
      AND created_at >= {{lo:DateTime64(6, 'UTC')}} AND created_at < {{hi:DateTime64(6, 'UTC')}}
      AND (merchant_id, toDate(created_at)) IN {{keys:Array(Tuple(UUID, Date))}}
      AND {COUNTED_SQL}"""

# Every key's list is written, an empty one when the day has no counted order left.
_WRITE_DAY_ORDERS = f"""
INSERT INTO merchant_day_orders (day, merchant_id, orders, _version)
SELECT day, merchant_id, orders, {{version:UInt64}}
FROM {_KEY_ROWS} AS k
LEFT JOIN (
    SELECT merchant_id, toDate(created_at) AS day,
           groupArray((created_at, amount_total, platform_fee)) AS orders
    FROM orders FINAL
    WHERE {_COUNTED_OF_KEYS}
    GROUP BY merchant_id, day
) AS o USING (merchant_id, day)
SETTINGS {_ONE_THREAD}, join_use_nulls = 0
"""
# The day rows are the sums of the lists just written (zeros for an empty list).
_WRITE_DAILY = f"""
INSERT INTO merchant_daily
    (day, merchant_id, orders, gmv, platform_fees, first_order_at, last_order_at, _version)
SELECT day, merchant_id, length(orders), arraySum(o -> o.2, orders),
       arraySum(o -> o.3, orders), if(empty(orders), NULL, arrayMin(o -> o.1, orders)),
       if(empty(orders), NULL, arrayMax(o -> o.1, orders)), {{version:UInt64}}
FROM merchant_day_orders FINAL
WHERE {_DAY_KEYS}
SETTINGS {_ONE_THREAD}
"""
# Every month of a key has at least that key's day row, so every month gets a row.
_WRITE_MONTHLY = f"""
INSERT INTO merchant_monthly
    (month, merchant_id, orders, gmv, platform_fees, first_order_at, last_order_at, _version)
SELECT toStartOfMonth(day) AS month, merchant_id, sum(orders), sum(gmv), sum(platform_fees),
       min(first_order_at), max(last_order_at), {{version:UInt64}}
FROM merchant_daily FINAL
WHERE merchant_id IN {{merchants:Array(UUID)}}
  AND day >= {{month_lo:Date}} AND day < {{month_hi:Date}}
  AND (merchant_id, toStartOfMonth(day)) IN {{months:Array(Tuple(UUID, Date))}}
GROUP BY month, merchant_id
SETTINGS {_ONE_THREAD}
"""

# Per merchant, day and customer: counted orders, amount, first and last order.
_DAY_CUSTOMER_FIGURES = f"""
    SELECT merchant_id, toDate(created_at) AS day, customer_key AS key, count() AS n,
           sum(amount_total) AS ltv, min(created_at) AS first_at, max(created_at) AS last_at
    FROM orders FINAL
    WHERE {_COUNTED_OF_KEYS}
    GROUP BY merchant_id, day, key"""
_STORED_CUSTOMERS = f"""
    SELECT merchant_id, day,
           CAST(customers AS Array(Tuple(UInt128, UInt64, Decimal(38, 2),
                                         DateTime64(6, 'UTC'), DateTime64(6, 'UTC')))) AS customers
    FROM merchant_day_customers FINAL
    WHERE {_DAY_KEYS}"""
# The customers whose figures on a key's day differ between the latest state and
# the stored list, or who are in only one of the two (such a figure tuple
# appears once, an unchanged one twice).
_MOVED_ON_KEYS = f"""
    SELECT DISTINCT merchant_id, key AS customer_key
    FROM (
        {_DAY_CUSTOMER_FIGURES}
        UNION ALL
        SELECT merchant_id, day, c.1, c.2, c.3, c.4, c.5
        FROM ({_STORED_CUSTOMERS}) ARRAY JOIN customers AS c
    )
    GROUP BY merchant_id, day, key, n, ltv, first_at, last_at
    HAVING count() = 1"""
# The customers of the given (merchant_id, customer_email) pairs.
_MOVED_BY_EMAIL = """
    SELECT DISTINCT c.1 AS merchant_id,
           reinterpretAsUInt128(sipHash128(lowerUTF8(trimBoth(c.2)))) AS customer_key
    FROM (SELECT arrayJoin({customers:Array(Tuple(UUID, String))}) AS c)"""
# Facts of the `moved` customers over all their counted orders; a customer left
# without any is written deleted (its other columns take any value). The orders
# are found without FINAL (any version), and their (merchant_id, created_at)
# sorting-key prefixes restrict the FINAL read to the granules holding them:
# every version of an order shares its sorting key, so the latest one is among
# those read, and the customer filter applies after FINAL.
_WRITE_FACTS = f"""
INSERT INTO customer_facts (merchant_id, customer_key, email, first_order_at, last_order_at,
                            orders_count, ltv, _version, _is_deleted)
WITH moved AS MATERIALIZED ({{moved}})
SELECT merchant_id, customer_key, lowerUTF8(trimBoth(anyIf(customer_email, counted))),
       minIf(created_at, counted), maxIf(created_at, counted), countIf(counted),
       sumIf(amount_total, counted), {{{{version:UInt64}}}}, countIf(counted) = 0
FROM (
    SELECT merchant_id, customer_key, customer_email, created_at, amount_total, 1 AS counted
    FROM orders FINAL
    WHERE {COUNTED_SQL}
      AND (merchant_id, customer_key) IN (SELECT merchant_id, customer_key FROM moved)
      AND (merchant_id, created_at) IN (
          SELECT merchant_id, created_at FROM orders
          WHERE merchant_id IN {{{{merchants:Array(UUID)}}}}
            AND (merchant_id, customer_key) IN (SELECT merchant_id, customer_key FROM moved)
      )
    UNION ALL
    SELECT merchant_id, customer_key, '', toDateTime64(0, 6, 'UTC'), toDecimal64(0, 2), 0
    FROM moved
)
GROUP BY merchant_id, customer_key
SETTINGS {_ONE_THREAD}, enable_materialized_cte = 1
"""
_WRITE_FACTS_ON_KEYS = _WRITE_FACTS.format(moved=_MOVED_ON_KEYS)
_WRITE_FACTS_BY_EMAIL = _WRITE_FACTS.format(moved=_MOVED_BY_EMAIL)
# The customer lists of the keys: all of them, or (`_CHANGED_DAY_CUSTOMERS`)
# those that differ from the stored ones.
_NEW_DAY_CUSTOMERS = f"""
    SELECT merchant_id, day, c.customers AS customers
    FROM {_KEY_ROWS} AS k
    LEFT JOIN (
        SELECT merchant_id, day, groupArray((key, n, ltv, first_at, last_at)) AS customers
        FROM ({_DAY_CUSTOMER_FIGURES})
        GROUP BY merchant_id, day
    ) AS c USING (merchant_id, day)"""
_WRITE_DAY_CUSTOMERS = f"""
INSERT INTO merchant_day_customers (merchant_id, day, customers, _version)
SELECT merchant_id, day, customers, {{version:UInt64}}
FROM ({_NEW_DAY_CUSTOMERS})
SETTINGS {_ONE_THREAD}, join_use_nulls = 0
"""
_WRITE_CHANGED_DAY_CUSTOMERS = f"""
INSERT INTO merchant_day_customers (merchant_id, day, customers, _version)
SELECT merchant_id, day, n.customers, {{version:UInt64}}
FROM ({_NEW_DAY_CUSTOMERS}) AS n
LEFT JOIN ({_STORED_CUSTOMERS}) AS s USING (merchant_id, day)
WHERE arraySort(n.customers) != arraySort(s.customers)
SETTINGS {_ONE_THREAD}, join_use_nulls = 0
"""

# A key's new item list: its stored items but those of the `changed` orders,
# and the items of those orders that count, read by the (merchant_id, order_id)
# prefix of the sorting key (items count with their own merchant's order only).
# Only an order that changed, or whose items changed, can enter or leave a list
# or change its items there. With `all` set (the caller does not know which
# orders changed) every order of the keys' days counts as changed: the lists
# are rebuilt. A list is written only if the items it drops and the items it
# adds differ (as multisets), that is if it differs from the stored one.
_CHANGED_ORDER = "({all:UInt8} OR has({changed:Array(UUID)}, t.5))"
_WRITE_DAY_ITEMS = f"""
INSERT INTO merchant_day_items (merchant_id, day, items, _version)
WITH reread AS MATERIALIZED (
    SELECT merchant_id, id, created_at FROM orders FINAL
    WHERE {_COUNTED_OF_KEYS} AND ({{all:UInt8}} OR id IN {{changed:Array(UUID)}})
)
SELECT merchant_id, day, arrayConcat(arrayFilter(t -> NOT {_CHANGED_ORDER}, s.items), a.items),
       {{version:UInt64}}
FROM {_KEY_ROWS} AS k
LEFT JOIN (
    SELECT merchant_id, day, items FROM merchant_day_items FINAL WHERE {_DAY_KEYS}
) AS s USING (merchant_id, day)
LEFT JOIN (
    SELECT i.merchant_id AS merchant_id, toDate(r.created_at) AS day,
           groupArray((r.created_at, i.product_id, toInt64(i.quantity), i.amount,
                       i.order_id)) AS items
    FROM order_items AS i FINAL
    INNER JOIN reread AS r ON r.merchant_id = i.merchant_id AND r.id = i.order_id
    WHERE i.merchant_id IN {{merchants:Array(UUID)}}
      AND i.order_id IN (SELECT id FROM reread)
    GROUP BY merchant_id, day
) AS a USING (merchant_id, day)
WHERE arraySort(arrayFilter(t -> {_CHANGED_ORDER}, s.items)) != arraySort(a.items)
SETTINGS {_ONE_THREAD}, join_use_nulls = 0, enable_materialized_cte = 1
"""
# The product rows of the keys' stored lists that differ from `product_daily`; a
# product no longer sold that day is written deleted.
_WRITE_PRODUCT_DAYS = f"""
INSERT INTO product_daily
    (merchant_id, day, product_id, revenue, quantity, orders, _version, _is_deleted)
SELECT merchant_id, day, product_id, n.revenue, n.quantity, n.orders, {{version:UInt64}},
       n.orders = 0
FROM (
    SELECT merchant_id, day, t.2 AS product_id, sum(t.4) AS revenue, sum(t.3) AS quantity,
           uniqExact(t.5) AS orders
    FROM merchant_day_items FINAL ARRAY JOIN items AS t
    WHERE {_DAY_KEYS}
    GROUP BY merchant_id, day, product_id
) AS n
FULL OUTER JOIN (
    SELECT merchant_id, day, product_id, revenue, quantity, orders
    FROM product_daily FINAL
    WHERE {_DAY_KEYS}
) AS o USING (merchant_id, day, product_id)
WHERE (n.revenue, n.quantity, n.orders) != (o.revenue, o.quantity, o.orders)
SETTINGS {_ONE_THREAD}, join_use_nulls = 0
"""

# Rebuilds (rebuild_rollups): per merchant and day, each customer's counted
# orders, amount, first and last order; per customer, its facts.
_DAY_CUSTOMERS_SELECT = f"""
SELECT merchant_id, day,
       groupArray((customer_key, orders, ltv, first_order_at, last_order_at))
FROM (
    SELECT merchant_id, toDate(created_at) AS day, customer_key, count() AS orders,
           sum(amount_total) AS ltv, min(created_at) AS first_order_at,
           max(created_at) AS last_order_at
    FROM orders FINAL
    WHERE {COUNTED_SQL}
    GROUP BY merchant_id, day, customer_key
)
GROUP BY merchant_id, day
"""
# The customer's text is taken from one of its orders: all of them give the same
# lower(trim(...)), which is computed once per customer instead of once per order.
_FACTS_SELECT = f"""
SELECT merchant_id, customer_key, lowerUTF8(trimBoth(any(customer_email))),
       min(created_at), max(created_at), count(), sum(amount_total)
FROM orders FINAL
WHERE {COUNTED_SQL}
GROUP BY merchant_id, customer_key
"""
# Items are matched to counted orders on both ids, as the merchant tools read them.
_ITEMS_SELECT = f"""
SELECT i.merchant_id, o.day,
       groupArray((o.created_at, i.product_id, toInt64(i.quantity), i.amount, i.order_id))
FROM order_items AS i FINAL
INNER JOIN (
    SELECT id, merchant_id, created_at, toDate(created_at) AS day FROM orders FINAL
    WHERE {COUNTED_SQL}
) AS o ON o.id = i.order_id AND o.merchant_id = i.merchant_id
GROUP BY i.merchant_id, o.day
"""
_PRODUCTS_FROM_ITEMS = """
SELECT merchant_id, day, t.2, sum(t.4), sum(t.3), uniqExact(t.5)
FROM merchant_day_items FINAL ARRAY JOIN items AS t
GROUP BY merchant_id, day, t.2
"""

# created_at is part of the sorting key and never changes, so every version of an
# order (deletions included) tells its day: no FINAL needed.
_ORDER_DAYS = """
SELECT DISTINCT merchant_id, toDate(created_at) FROM orders
WHERE merchant_id IN {merchants:Array(UUID)} AND id IN {ids:Array(UUID)}
"""


def next_version() -> int:
    """A version larger than any written before by this clock (nanoseconds)."""
    return time.time_ns()


def refresh_rollups(
    store: Store,
    keys: Iterable[tuple[UUID, date]],
    item_orders: Iterable[tuple[UUID, UUID]] = (),
    order_days: Mapping[tuple[UUID, UUID], date] | None = None,
    changed_orders: Iterable[UUID] | None = None,
    customers: Iterable[tuple[UUID, str]] | None = None,
) -> int:
    """Recompute every order rollup for a batch's touched keys; returns the keys refreshed.

    The one call a writer makes after each batch of changes, with the
    (merchant_id, UTC day) of every changed order (old and new image) and the
    (merchant_id, order_id) of every changed order item. The days of those
    items' orders join the keys (`order_days` holds those the caller already
    knows, such as the orders of the same batch, so only the others are looked
    up). `changed_orders`, when the caller knows them, are the ids of every
    order changed in the batch (orders of changed items excepted): only the
    items of those orders and of `item_orders` are read again; without it
    the keys' item lists are rebuilt. `customers`, likewise, are the
    (merchant_id, customer_email) of every image of those orders, old and new:
    only their facts are recomputed; without it, the facts of the customers
    whose figures on the keys' days moved. For all of them the rows of
    `merchant_daily`, `merchant_day_orders`,
    `merchant_day_customers`, `merchant_day_items` and `product_daily` are
    recomputed, then the `merchant_monthly` rows of the months holding those
    days, and the `customer_facts` of every customer whose figures on one of
    those days moved.
    """
    pairs = {(UUID(str(m)), UUID(str(o))) for m, o in item_orders}
    known = order_days or {}
    wanted = {(UUID(str(m)), d) for m, d in keys}
    wanted |= {(m, known[(m, o)]) for m, o in pairs if (m, o) in known}
    wanted |= _order_days(store, [pair for pair in pairs if pair not in known])
    if not wanted:
        return 0
    version = next_version()
    bounds = _bounds(wanted) | {"version": version}
    changed = None if changed_orders is None else {UUID(str(o)) for o in changed_orders}
    reread = None if changed is None else changed | {o for _, o in pairs}
    # Three chains that read only the latest-state tables and their own rollups, never
    # each other's: the order rollups (day lists, then days, then months), the customer
    # rollups and the item rollups. They run beside each other, each statement on a
    # pooled connection (an embedded store runs statements of different connections at
    # once). All are done on return, and a failure of any is raised: the caller retries
    # the whole refresh, which recomputes the same rows.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="rollups") as beside:
        items = beside.submit(_refresh_product_days, store, bounds, reread)
        people = beside.submit(_refresh_customers, store, bounds, customers)
        store.command(_WRITE_DAY_ORDERS, bounds)
        store.command(_WRITE_DAILY, bounds)
        _refresh_merchant_monthly(store, wanted, version)
        people.result()
        items.result()
    return len(wanted)


def _bounds(keys: Iterable[tuple[UUID, date]]) -> dict[str, Any]:
    """The parameters naming a set of (merchant_id, day) keys, sorted for stable statements.

    Ids stay UUID objects: the driver quotes those as they are, while it escapes a
    string character by character (thousands of ids in a bulk load's batch).
    """
    ordered = sorted(keys, key=lambda k: (str(k[0]), k[1]))
    days = [d for _, d in ordered]
    return {
        "keys": ordered,
        "merchants": sorted({m for m, _ in ordered}, key=str),
        "first": min(days),
        "last": max(days),
        "lo": f"{min(days).isoformat()} 00:00:00",
        # Half-open at the next midnight: an order at 23:59:59.999999 belongs to the day.
        "hi": f"{(max(days) + timedelta(days=1)).isoformat()} 00:00:00",
    }


def _order_days(store: Store, pairs: list[tuple[UUID, UUID]]) -> set[tuple[UUID, date]]:
    """The (merchant_id, UTC day) of the stored orders of changed items.

    An item whose order is not (yet) stored counts nowhere; when the order
    arrives, its own change touches its day.
    """
    if not pairs:
        return set()
    rows = store.query(
        _ORDER_DAYS,
        {
            "merchants": sorted({m for m, _ in pairs}, key=str),
            "ids": sorted({o for _, o in pairs}, key=str),
        },
    )
    return {(UUID(str(m)), day) for m, day in rows}


def _refresh_merchant_monthly(store: Store, wanted: set[tuple[UUID, date]], version: int) -> None:
    """Recompute the (merchant_id, month) rows holding the wanted days from `merchant_daily`."""
    months = sorted({(m, d.replace(day=1)) for m, d in wanted}, key=lambda k: (str(k[0]), k[1]))
    last = max(month for _, month in months)
    store.command(
        _WRITE_MONTHLY,
        {
            "months": months,
            "merchants": sorted({m for m, _ in months}, key=str),
            "month_lo": min(month for _, month in months),
            "month_hi": date(last.year + last.month // 12, last.month % 12 + 1, 1),
            "version": version,
        },
    )


def _refresh_customers(
    store: Store, bounds: dict[str, Any], customers: Iterable[tuple[UUID, str]] | None
) -> None:
    """Rewrite the facts of the customers who may have moved, then the keys' customer lists.

    A customer's facts depend on its counted orders only, so they can move only
    for the customers of changed orders (`customers`, from the change events).
    Without them, the customers whose figures on a refreshed day differ from
    the stored list (or who appear in only one of the two) are exactly those
    whose facts may have changed; the facts then go first, so a batch retried
    after a failure between the two writes still finds the old lists and
    recomputes the same customers, and only the lists that changed are written.
    """
    if customers is None:
        store.command(_WRITE_FACTS_ON_KEYS, bounds)
        store.command(_WRITE_CHANGED_DAY_CUSTOMERS, bounds)
        return
    pairs = sorted({(UUID(str(m)), email) for m, email in customers}, key=str)
    if pairs:
        store.command(_WRITE_FACTS_BY_EMAIL, bounds | {"customers": pairs})
    store.command(_WRITE_DAY_CUSTOMERS, bounds)


def _refresh_product_days(store: Store, bounds: dict[str, Any], changed: set[UUID] | None) -> None:
    """Rewrite the item lists of the keys that changed, then their product rows.

    A day's new list keeps the stored items of the orders not `changed` (all of
    them when None), and reads the items of the changed ones that count, so a
    refresh reads the items of the changed orders only. The product rows are
    then made equal to the sums over every key's stored list, writing only
    those that differ: a batch retried after a failure between the two writes
    finds its lists written and completes the product rows from them.
    """
    orders = {"all": int(changed is None), "changed": sorted(changed or (), key=str)}
    store.command(_WRITE_DAY_ITEMS, bounds | orders)
    store.command(_WRITE_PRODUCT_DAYS, bounds)


def rebuild_rollups(store: Store) -> None:
    """Recompute every order rollup from the latest state (after a backfill or seed).

    `orders FINAL` is scanned into `merchant_day_orders`; the daily rows are
    summed from those lists and the monthly rows from the daily rows. The
    customer lists and facts take one more scan each.
    """
    for table in _ORDER_ROLLUPS:
        store.command(f"TRUNCATE TABLE {table}")
    store.command(
        f"""
        INSERT INTO merchant_day_orders
        SELECT toDate(created_at) AS day, merchant_id,
               groupArray((created_at, amount_total, platform_fee)), {next_version()}
        FROM orders FINAL
        WHERE {COUNTED_SQL}
        GROUP BY day, merchant_id
        """
    )
    store.command(
        f"""
        INSERT INTO merchant_daily
        SELECT day, merchant_id, length(orders), arraySum(o -> o.2, orders),
               arraySum(o -> o.3, orders), arrayMin(o -> o.1, orders),
               arrayMax(o -> o.1, orders), {next_version()}
        FROM merchant_day_orders FINAL
        """
    )
    store.command(
        f"""
        INSERT INTO merchant_monthly
        SELECT toStartOfMonth(day) AS month, merchant_id, sum(orders), sum(gmv),
               sum(platform_fees), min(first_order_at), max(last_order_at), {next_version()}
        FROM merchant_daily FINAL
        GROUP BY month, merchant_id
        """
    )
    store.command(
        f"INSERT INTO merchant_day_customers "
        f"SELECT *, {next_version()} FROM ({_DAY_CUSTOMERS_SELECT})"
    )
    store.command(
        f"INSERT INTO customer_facts SELECT *, {next_version()}, 0 FROM ({_FACTS_SELECT})"
    )
    store.command(
        f"INSERT INTO merchant_day_items SELECT *, {next_version()} FROM ({_ITEMS_SELECT})"
    )
    store.command(
        f"INSERT INTO product_daily SELECT *, {next_version()}, 0 FROM ({_PRODUCTS_FROM_ITEMS})"
    )


def compact(store: Store) -> None:
    """Merge every latest-state table and rollup into one part per partition.

    Run after a bulk load (seed, backfill): `FINAL` over a single part needs
    no merge at read time, which roughly halves the merchant tools' latency.
    """
    started = time.perf_counter()
    for table in STORE_TABLES:
        store.command(f"OPTIMIZE TABLE {table} FINAL")
    log.info(
        "compact done tables={} duration_ms={:.0f}",
        len(STORE_TABLES),
        (time.perf_counter() - started) * 1000,
    )
