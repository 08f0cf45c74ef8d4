-- `merchant_day_customers` (0006) with each customer's figures of the day.
--
-- Listing only the customers of a day made every refreshed day recompute the
-- facts of all its customers (about 1,500 a day for the largest merchant). With
-- each customer's counted orders, amount and first and last order of the day
-- kept beside its key, a refresh compares the day's old and new lists and
-- recomputes the facts of the customers whose figures moved, and only those:
-- a customer's facts are a function of its figures over all days.
--
-- The table is rebuilt from `orders FINAL` with a version above any written
-- before (the clock in nanoseconds, as optima_bi_mcp.store.rollups writes).
--
-- Both day-list tables (this one and `merchant_day_items`, 0008) get granules of
-- at most 128 rows and 1 MiB: a refresh reads the lists of a few days, and FINAL
-- merges whole granules, so with 8192 rows (or 10 MiB) a granule held a
-- merchant's lists of months (the largest merchant's day of items is ~150 KiB).

DROP TABLE IF EXISTS merchant_day_customers;

CREATE TABLE merchant_day_customers (
    merchant_id UUID,
    day Date,
    customers Array(Tuple(
        key UInt128,
        orders UInt64,
        ltv Decimal(38, 2),
        first_order_at DateTime64(6, 'UTC'),
        last_order_at DateTime64(6, 'UTC')
    )),
    _version UInt64
) ENGINE = ReplacingMergeTree(_version)
ORDER BY (merchant_id, day)
SETTINGS index_granularity = 128, index_granularity_bytes = 1048576;

INSERT INTO merchant_day_customers
SELECT merchant_id, day, groupArray((customer_key, orders, ltv, first_order_at, last_order_at)),
       toUInt64(toUnixTimestamp64Nano(now64(9)))
FROM (
    SELECT merchant_id, toDate(created_at) AS day, customer_key, count() AS orders,
           sum(amount_total) AS ltv, min(created_at) AS first_order_at,
           max(created_at) AS last_order_at
    FROM orders FINAL
    WHERE status IN ('paid', 'shipped', 'delivered', 'completed')
    GROUP BY merchant_id, day, customer_key
)
GROUP BY merchant_id, day
SETTINGS max_execution_time = 0;

DROP TABLE IF EXISTS merchant_day_items_0009;

CREATE TABLE merchant_day_items_0009 (
    merchant_id UUID,
    day Date,
    items Array(Tuple(
        created_at DateTime64(6, 'UTC'),
        product_id UUID,
        quantity Int64,
        amount Decimal(12, 2),
        order_id UUID
    )),
    _version UInt64
) ENGINE = ReplacingMergeTree(_version)
ORDER BY (merchant_id, day)
SETTINGS index_granularity = 128, index_granularity_bytes = 1048576;

INSERT INTO merchant_day_items_0009
SELECT merchant_id, day, items, _version FROM merchant_day_items
SETTINGS max_execution_time = 0;

EXCHANGE TABLES merchant_day_items AND merchant_day_items_0009;

DROP TABLE merchant_day_items_0009;
