-- Customer facts per merchant over every counted order in the store, for
-- customer_summary and churned_customers without reading each order's e-mail.
--
-- `customer_facts` holds, per (merchant_id, customer_key), the customer's text
-- (lower(trim(customer_email))), first and last counted order, their count and
-- the sum of their amount_total (METRICS.md, "Customer facts" with T after the
-- merchant's last order; the query layer reads the orders instead when T is
-- earlier). `merchant_day_customers` lists, per merchant and UTC day, the keys of
-- the customers with a counted order that day.
--
-- Both are recomputed from `orders FINAL` like `merchant_daily`
-- (optima_bi_mcp.store.rollups): for the (merchant_id, day) keys a batch of
-- changes touches, the day lists are read before they are rewritten, so the
-- customers whose facts may have moved are those in the old list or the new
-- one; their facts are recomputed and written whole with a higher _version, and
-- a customer left without counted orders is written with _is_deleted = 1.
-- Recomputing is idempotent, so updates, deletes and redelivered changes leave
-- both equal to the latest state.

CREATE TABLE IF NOT EXISTS customer_facts (
    merchant_id UUID,
    customer_key UInt128,
    email String,
    first_order_at DateTime64(6, 'UTC'),
    last_order_at DateTime64(6, 'UTC'),
    orders_count UInt64,
    ltv Decimal(38, 2),
    _version UInt64,
    _is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(_version, _is_deleted)
ORDER BY (merchant_id, customer_key);

CREATE TABLE IF NOT EXISTS merchant_day_customers (
    merchant_id UUID,
    day Date,
    customers Array(UInt128),
    _version UInt64
) ENGINE = ReplacingMergeTree(_version)
ORDER BY (merchant_id, day);

INSERT INTO merchant_day_customers
SELECT merchant_id, toDate(created_at) AS day, groupUniqArray(customer_key), 1
FROM orders FINAL
WHERE status IN ('paid', 'shipped', 'delivered', 'completed')
GROUP BY merchant_id, day
SETTINGS max_execution_time = 0;

INSERT INTO customer_facts
SELECT merchant_id, customer_key, lowerUTF8(trimBoth(any(customer_email))),
       min(created_at), max(created_at), count(), sum(amount_total), 1, 0
FROM orders FINAL
WHERE status IN ('paid', 'shipped', 'delivered', 'completed')
GROUP BY merchant_id, customer_key
SETTINGS max_execution_time = 0;
