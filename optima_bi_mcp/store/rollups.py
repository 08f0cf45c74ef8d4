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
`merchant_daily FINAL`, and the facts of every customer in the day's customer
list before or after the batch; all are written again with a new version,
zeros, empty lists and deletions included, so the result never depends on how
many times or in which order changes arrived.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from loguru import logger

from optima_bi_mcp.store.client import Store

log = logger.bind(module=__name__)

COUNTED_STATUSES = ("paid", "shipped", "delivered", "completed")
COUNTED_SQL = "status IN ('paid', 'shipped', 'delivered', 'completed')"

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

_COLUMNS = [
    "day",
    "merchant_id",
    "orders",
    "gmv",
    "platform_fees",
    "first_order_at",
    "last_order_at",
    "_version",
]

# One pass over the batch's days: per customer, then per day, so the day's
# figures, its order list and its customer list come from the same read.
_RECOMPUTE = f"""
SELECT day, merchant_id,
       sum(n) AS orders, sum(amount) AS gmv, sum(fees) AS platform_fees,
       min(first_at) AS first_order_at, max(last_at) AS last_order_at,
       arrayFlatten(groupArray(order_list)) AS order_list,
       groupArray((customer_key, n, amount, first_at, last_at)) AS customers
FROM (
    SELECT toDate(created_at) AS day, merchant_id, customer_key, count() AS n,
           sum(amount_total) AS amount, sum(platform_fee) AS fees,
           min(created_at) AS first_at, max(created_at) AS last_at,
           groupArray((created_at, amount_total, platform_fee, id)) AS order_list
    FROM orders FINAL
    WHERE merchant_id IN {{merchants:Array(UUID)}}
      AND created_at >= {{lo:DateTime64(6, 'UTC')}} AND created_at < {{hi:DateTime64(6, 'UTC')}}
      AND {COUNTED_SQL}
    GROUP BY day, merchant_id, customer_key
)
GROUP BY day, merchant_id
"""


_MONTHLY_COLUMNS = ["month", *_COLUMNS[1:]]
_DAY_ORDERS_COLUMNS = ["day", "merchant_id", "orders", "_version"]

_DAY_CUSTOMERS_COLUMNS = ["merchant_id", "day", "customers", "_version"]
_FACTS_COLUMNS = [
    "merchant_id",
    "customer_key",
    "email",
    "first_order_at",
    "last_order_at",
    "orders_count",
    "ltv",
    "_version",
    "_is_deleted",
]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_DAY_CUSTOMERS = """
SELECT merchant_id, day,
       CAST(customers AS Array(Tuple(UInt128, UInt64, Decimal(38, 2),
                                     DateTime64(6, 'UTC'), DateTime64(6, 'UTC'))))
FROM merchant_day_customers FINAL
WHERE merchant_id IN {merchants:Array(UUID)}
  AND day >= toDate({lo:DateTime64(6, 'UTC')}) AND day < toDate({hi:DateTime64(6, 'UTC')})
"""

# Per merchant and day, each customer's counted orders, amount, first and last order.
_DAY_CUSTOMERS_SELECT = f"""
SELECT merchant_id, day,
       groupArray((customer_key, orders, ltv, first_order_at, last_order_at))
FROM (
    SELECT merchant_id, toDate(created_at) AS day, customer_key, count() AS orders,
           sum(amount_total) AS ltv, min(created_at) AS first_order_at,
           max(created_at) AS last_order_at
    FROM orders FINAL
    WHERE {COUNTED_SQL} {{where}}
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
WHERE {COUNTED_SQL} {{where}}
GROUP BY merchant_id, customer_key
"""
# The orders of the touched customers are found without FINAL (any version), and
# their (merchant_id, created_at) sorting-key prefixes restrict the FINAL read to
# the granules holding them: every version of an order shares its sorting key, so
# the latest one is among those read, and the customer filter applies after FINAL.
_RECOMPUTE_FACTS = _FACTS_SELECT.format(
    where="""AND customer_key IN {keys:Array(UInt128)}
      AND (merchant_id, created_at) IN (
          SELECT merchant_id, created_at FROM orders
          WHERE merchant_id IN {merchants:Array(UUID)} AND customer_key IN {keys:Array(UInt128)}
      )"""
)

_PRODUCT_COLUMNS = [
    "merchant_id",
    "day",
    "product_id",
    "revenue",
    "quantity",
    "orders",
    "_version",
    "_is_deleted",
]

_DAY_ITEMS_COLUMNS = ["merchant_id", "day", "items", "_version"]

# created_at is part of the sorting key and never changes, so every version of an
# order (deletions included) tells its day: no FINAL needed.
_ORDER_DAYS = """
SELECT DISTINCT merchant_id, toDate(created_at) FROM orders
WHERE merchant_id IN {merchants:Array(UUID)} AND id IN {ids:Array(UUID)}
"""


# Items are matched to counted orders on both ids, as the merchant tools read them.
_ITEMS_SELECT = f"""
SELECT i.merchant_id, o.day,
       groupArray((o.created_at, i.product_id, toInt64(i.quantity), i.amount, i.order_id))
FROM order_items AS i FINAL
INNER JOIN (
    SELECT id, merchant_id, created_at, toDate(created_at) AS day FROM orders FINAL
    WHERE {COUNTED_SQL} {{where}}
) AS o ON o.id = i.order_id AND o.merchant_id = i.merchant_id
{{items}}
GROUP BY i.merchant_id, o.day
"""
# The lists are cast to unnamed tuples: the driver builds a dict per named tuple
# in Python, which for a large merchant's day of items cost more than the read.
_DAY_ITEMS = """
SELECT merchant_id, day,
       CAST(items AS Array(Tuple(DateTime64(6, 'UTC'), UUID, Int64, Decimal(12, 2), UUID)))
FROM merchant_day_items FINAL
WHERE merchant_id IN {merchants:Array(UUID)}
  AND day >= toDate({lo:DateTime64(6, 'UTC')}) AND day < toDate({hi:DateTime64(6, 'UTC')})
"""
# Read by the (merchant_id, order_id) prefix of the sorting key: only the granules
# holding those orders' items are merged.
_ORDER_ITEMS = """
SELECT merchant_id, order_id, product_id, toInt64(quantity), amount FROM order_items FINAL
WHERE merchant_id IN {merchants:Array(UUID)} AND order_id IN {ids:Array(UUID)}
"""
_PRODUCTS_FROM_ITEMS = """
SELECT merchant_id, day, t.2, sum(t.4), sum(t.3), uniqExact(t.5)
FROM merchant_day_items FINAL ARRAY JOIN items AS t
GROUP BY merchant_id, day, t.2
"""

_RECOMPUTE_MONTHLY = """
SELECT toStartOfMonth(day) AS month, merchant_id,
       sum(orders), sum(gmv), sum(platform_fees), min(first_order_at), max(last_order_at)
FROM merchant_daily FINAL
WHERE merchant_id IN {merchants:Array(UUID)} AND day >= {lo:Date} AND day < {hi:Date}
GROUP BY month, merchant_id
"""


def next_version() -> int:
    """A version larger than any written before by this clock (nanoseconds)."""
    return time.time_ns()


def refresh_rollups(
    store: Store,
    keys: Iterable[tuple[UUID, date]],
    item_orders: Iterable[tuple[UUID, UUID]] = (),
    order_days: Mapping[tuple[UUID, UUID], date] | None = None,
) -> int:
    """Recompute every order rollup for a batch's touched keys; returns the day rows written.

    The one call a writer makes after each batch of changes, with the
    (merchant_id, UTC day) of every changed order (old and new image) and the
    (merchant_id, order_id) of every changed order item. The days of those
    items' orders join the keys (`order_days` holds those the caller already
    knows, such as the orders of the same batch, so only the others are looked
    up); for all of them the rows of `merchant_daily`, `merchant_day_orders`,
    `merchant_day_customers` and `product_daily` are recomputed, then the
    `merchant_monthly` rows of the months holding those days, and the
    `customer_facts` of every customer who had a counted order on one of those
    days before or after the batch.
    """
    pairs = {(UUID(str(m)), UUID(str(o))) for m, o in item_orders}
    known = order_days or {}
    wanted = {(UUID(str(m)), d) for m, d in keys}
    wanted |= {(m, known[(m, o)]) for m, o in pairs if (m, o) in known}
    wanted |= _order_days(store, [pair for pair in pairs if pair not in known])
    if not wanted:
        return 0
    merchants = sorted({m for m, _ in wanted}, key=str)
    days = [d for _, d in wanted]
    bounds = {
        "merchants": merchants,
        "lo": f"{min(days).isoformat()} 00:00:00",
        # Half-open at the next midnight: an order at 23:59:59.999999 belongs to the day.
        "hi": f"{(max(days) + timedelta(days=1)).isoformat()} 00:00:00",
    }
    rows = store.query(_RECOMPUTE, bounds)
    version = next_version()
    computed = {(UUID(str(r[1])), r[0]): r for r in rows}
    out: list[tuple[Any, ...]] = []
    lists: list[tuple[Any, ...]] = []
    for merchant_id, day in sorted(wanted, key=lambda k: (k[1], str(k[0]))):
        row = computed.get((merchant_id, day))
        if row is None:
            out.append((day, merchant_id, 0, 0, 0, None, None, version))
            lists.append((day, merchant_id, [], version))
        else:
            out.append((day, merchant_id, row[2], row[3], row[4], row[5], row[6], version))
            lists.append((day, merchant_id, [_plain(o)[:3] for o in row[7]], version))
    store.insert("merchant_daily", out, _COLUMNS)
    store.insert("merchant_day_orders", lists, _DAY_ORDERS_COLUMNS)
    _refresh_merchant_monthly(store, {(m, d.replace(day=1)) for m, d in wanted})
    _refresh_customers(store, wanted, bounds, [(r[1], r[0], r[8]) for r in rows])
    orders = {key: {o[3]: o[0] for o in map(_plain, r[7])} for key, r in computed.items()}
    _refresh_product_daily(store, wanted, bounds, orders, {o for _, o in pairs})
    return len(out)


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


def _refresh_product_daily(
    store: Store,
    wanted: set[tuple[UUID, date]],
    bounds: dict[str, Any],
    orders: dict[tuple[UUID, date], dict[Any, Any]],
    item_orders: set[UUID],
) -> None:
    """Rewrite the item lists and product rows of the wanted days.

    `orders` maps each day to its counted orders (id to created_at) now. A day's
    new list keeps the stored items of orders still counted and not in
    `item_orders`, and reads the items of the others (orders newly counted, or
    whose items changed) by their sorting-key prefix, so a refresh reads the
    items of the changed orders only. A product no longer sold that day is deleted.
    """
    days: dict[tuple[UUID, date], _DayItems] = {}
    for m, day, items in store.query(_DAY_ITEMS, bounds):
        if (UUID(str(m)), day) in wanted:
            days[(UUID(str(m)), day)] = _DayItems(stored=[_plain(t) for t in items])
    reread: dict[Any, tuple[tuple[UUID, date], Any]] = {}
    for key in wanted:
        counted = orders.get(key, {})
        day_items = days.setdefault(key, _DayItems(stored=[]))
        for t in day_items.stored:
            kept = t[4] in counted and t[4] not in item_orders
            (day_items.kept if kept else day_items.dropped).append(t)
        kept_orders = {t[4] for t in day_items.kept}
        reread.update((o, (key, at)) for o, at in counted.items() if o not in kept_orders)
    for merchant_id, order_id, product, quantity, amount in _order_items(store, reread):
        key, created_at = reread[order_id]
        if UUID(str(merchant_id)) == key[0]:  # items count with their own merchant's order only
            days[key].added.append((created_at, product, quantity, amount, order_id))
    _write_product_days(store, days)


@dataclass
class _DayItems:
    """A day's stored item list split into the items kept and dropped, and the items added."""

    stored: list[tuple[Any, ...]]
    kept: list[tuple[Any, ...]] = field(default_factory=list)
    dropped: list[tuple[Any, ...]] = field(default_factory=list)
    added: list[tuple[Any, ...]] = field(default_factory=list)


def _plain(value: Any) -> tuple[Any, ...]:
    """A tuple element of an array column as a plain tuple (named tuples come back as dicts)."""
    return tuple(value.values()) if isinstance(value, dict) else tuple(value)


def _order_items(store: Store, reread: dict[Any, Any]) -> list[tuple[Any, ...]]:
    """The latest items of the given orders, read by (merchant_id, order_id)."""
    if not reread:
        return []
    merchants = sorted({str(key[0]) for key, _ in reread.values()})
    return store.query(_ORDER_ITEMS, {"merchants": merchants, "ids": sorted(map(str, reread))})


def _write_product_days(store: Store, days: dict[tuple[UUID, date], _DayItems]) -> None:
    """Write the day lists that changed, and the product rows whose figures changed.

    A day's new list is the kept items plus the added ones, so it differs from
    the stored list exactly when the dropped and added items differ (as
    multisets), and only the products among those can change figures: they are
    summed over the stored and new lists, while the rest of a large day is not
    looked at again. The stored lists are what `product_daily` was computed
    from; a product no longer sold that day is deleted. Product rows go first: a
    batch retried after a failure between the two writes still finds the old lists.
    """
    version = next_version()
    rows: list[tuple[Any, ...]] = []
    out: list[tuple[Any, ...]] = []
    for merchant_id, day in sorted(days, key=lambda k: (str(k[0]), k[1])):
        d = days[(merchant_id, day)]
        if Counter(d.dropped) == Counter(d.added):
            continue
        items = d.kept + sorted(d.added, key=_item_order)
        rows.append((merchant_id, day, items, version))
        products = {t[1] for t in d.dropped} | {t[1] for t in d.added}
        old = _product_sales([t for t in d.stored if t[1] in products])
        new = _product_sales([t for t in items if t[1] in products])
        out += [
            (merchant_id, day, product, *figures, version, 0)
            for product, figures in new.items()
            if old.get(product) != figures
        ]
        out += [(merchant_id, day, p, 0, 0, 0, version, 1) for p in old.keys() - new.keys()]
    store.insert("product_daily", out, _PRODUCT_COLUMNS)
    store.insert("merchant_day_items", rows, _DAY_ITEMS_COLUMNS)


def _item_order(item: tuple[Any, ...]) -> tuple[Any, ...]:
    """Items by time, order and product (a UUID's integer orders as its text does)."""
    created_at, product, _, _, order_id = item
    return (created_at, _uuid(order_id).int, _uuid(product).int)


def _uuid(value: Any) -> UUID:
    """A UUID as such: the store returns UUID objects, which need no conversion."""
    return value if isinstance(value, UUID) else UUID(str(value))


def _product_sales(items: list[tuple[Any, ...]]) -> dict[UUID, tuple[Any, int, int]]:
    """Revenue, quantity and distinct orders per product of one day's item list.

    Keyed by the UUIDs' integers while counting: a day of a large merchant holds
    thousands of items, and integers hash much faster than UUID objects.
    """
    revenue: dict[int, Any] = {}
    quantity: dict[int, int] = {}
    orders: dict[int, set[int]] = {}
    for _, product, units, amount, order_id in items:
        key = _uuid(product).int
        revenue[key] = revenue.get(key, 0) + amount
        quantity[key] = quantity.get(key, 0) + int(units)
        orders.setdefault(key, set()).add(_uuid(order_id).int)
    return {UUID(int=key): (revenue[key], quantity[key], len(orders[key])) for key in revenue}


def _refresh_customers(
    store: Store,
    wanted: set[tuple[UUID, date]],
    bounds: dict[str, Any],
    lists: list[tuple[Any, ...]],
) -> None:
    """Write the customer lists of the wanted days, and the facts of customers who moved.

    `lists` holds the recomputed (merchant_id, day, customers) rows. A
    customer's facts depend only on its figures per day, so the customers whose
    figures on a refreshed day differ from the stored list (or who appear in only
    one of the two) are exactly those whose facts may have changed. Only changed
    lists are written, after the facts: a batch retried after a failure between
    the two writes still finds the old lists and recomputes the same customers.
    """
    old = _customer_lists(store.query(_DAY_CUSTOMERS, bounds), wanted)
    new = _customer_lists(lists, wanted)
    version = next_version()
    rows: list[tuple[Any, ...]] = []
    touched: set[tuple[UUID, int]] = set()
    for merchant_id, day in sorted(wanted, key=lambda k: (str(k[0]), k[1])):
        before, after = old.get((merchant_id, day), {}), new.get((merchant_id, day), {})
        if before == after:
            continue
        rows.append((merchant_id, day, list(after.values()), version))
        touched.update(
            (merchant_id, key)
            for key in before.keys() | after.keys()
            if before.get(key) != after.get(key)
        )
    _refresh_customer_facts(store, touched)
    store.insert("merchant_day_customers", rows, _DAY_CUSTOMERS_COLUMNS)


def _customer_lists(
    rows: list[tuple[Any, ...]], wanted: set[tuple[UUID, date]]
) -> dict[tuple[UUID, date], dict[int, tuple[Any, ...]]]:
    """Day lists of the wanted keys as {customer_key: (key, orders, ltv, first, last)}."""
    lists: dict[tuple[UUID, date], dict[int, tuple[Any, ...]]] = {}
    for m, day, customers in rows:
        key = (UUID(str(m)), day)
        if key in wanted:
            plain = map(_plain, customers)
            lists[key] = {int(c[0]): (int(c[0]), *c[1:]) for c in plain}
    return lists


def _refresh_customer_facts(store: Store, touched: set[tuple[UUID, int]]) -> None:
    """Recompute the facts of the touched customers; those left without orders are deleted."""
    if not touched:
        return
    rows = store.query(
        _RECOMPUTE_FACTS,
        {
            "merchants": sorted({m for m, _ in touched}, key=str),
            "keys": sorted({k for _, k in touched}),
        },
    )
    version = next_version()
    out = [(*row, version, 0) for row in rows]
    found = {(UUID(str(row[0])), int(row[1])) for row in rows}
    # A deleted row needs only its sorting key; the other columns take any value.
    out += [
        (m, key, "", _EPOCH, _EPOCH, 0, 0, version, 1)
        for m, key in sorted(touched - found, key=lambda k: (str(k[0]), k[1]))
    ]
    store.insert("customer_facts", out, _FACTS_COLUMNS)


def _refresh_merchant_monthly(store: Store, wanted: set[tuple[UUID, date]]) -> None:
    """Recompute the (merchant_id, month) rows from `merchant_daily FINAL`, zeros included."""
    merchants = sorted({m for m, _ in wanted}, key=str)
    months = [m for _, m in wanted]
    last = max(months)
    rows = store.query(
        _RECOMPUTE_MONTHLY,
        {
            "merchants": merchants,
            "lo": min(months),
            "hi": date(last.year + last.month // 12, last.month % 12 + 1, 1),
        },
    )
    version = next_version()
    computed = {(UUID(str(r[1])), r[0]): r for r in rows}
    out = []
    for merchant_id, month in sorted(wanted, key=lambda k: (k[1], str(k[0]))):
        row = computed.get((merchant_id, month))
        if row is None:
            out.append((month, merchant_id, 0, 0, 0, None, None, version))
        else:
            out.append((month, merchant_id, row[2], row[3], row[4], row[5], row[6], version))
    store.insert("merchant_monthly", out, _MONTHLY_COLUMNS)


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
    customers = _DAY_CUSTOMERS_SELECT.format(where="")
    store.command(
        f"INSERT INTO merchant_day_customers SELECT *, {next_version()} FROM ({customers})"
    )
    facts = _FACTS_SELECT.format(where="")
    store.command(f"INSERT INTO customer_facts SELECT *, {next_version()}, 0 FROM ({facts})")
    items = _ITEMS_SELECT.format(where="", items="")
    store.command(f"INSERT INTO merchant_day_items SELECT *, {next_version()} FROM ({items})")
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
