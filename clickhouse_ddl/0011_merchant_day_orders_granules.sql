-- merchant_day_orders in small granules, so that reading a few days' lists
-- reads little else.
--
-- Platform answers cut at an instant (`now`, `now - 30 days`, `now - 60 days`)
-- read the order lists of those days only. With 8192 rows per granule, one
-- granule held about a month of merchant-days, and a read with FINAL, which
-- merges whole granules, decoded every list of the month to keep three days'.
-- 128 rows per granule is a fraction of one day's merchants.
--
-- What the table holds, and how it stays exact (optima_bi_mcp.store.rollups),
-- is unchanged. The rows move to a new table, which then takes the old name.

DROP TABLE IF EXISTS merchant_day_orders_0011;

CREATE TABLE merchant_day_orders_0011 (
    day Date,
    merchant_id UUID,
    orders Array(Tuple(
        created_at DateTime64(6, 'UTC'),
        amount_total Decimal(12, 2),
        platform_fee Decimal(12, 2)
    )),
    _version UInt64
) ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(day)
ORDER BY (day, merchant_id)
SETTINGS index_granularity = 128;

INSERT INTO merchant_day_orders_0011
SELECT day, merchant_id, orders, _version FROM merchant_day_orders
SETTINGS max_execution_time = 0;

EXCHANGE TABLES merchant_day_orders AND merchant_day_orders_0011;

DROP TABLE merchant_day_orders_0011;
