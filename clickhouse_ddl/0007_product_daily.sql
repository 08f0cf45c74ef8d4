-- Product sales per merchant, UTC day of the order and product, for top_products.
--
-- order_items is sorted by (merchant_id, order_id, id): it has no order time, so
-- a period's items are found through their orders' ids, which reads every item
-- of the merchant (three million for the largest). `product_daily` sums, over
-- the items of the counted orders created on each UTC day, the amount, the
-- quantity and the number of distinct orders per product; an order lies in one
-- day, so sums over whole days are exact for a period too.
--
-- It is recomputed like `merchant_daily` (optima_bi_mcp.store.rollups): for the
-- (merchant_id, day) keys a batch of changes touches (the days of changed orders,
-- and the days of the orders whose items changed), the rows of those keys are
-- read from order_items FINAL joined with orders FINAL and written whole with a
-- higher _version; a product that no longer sold that day is written with
-- _is_deleted = 1. Recomputing is idempotent, so updates, deletes and redelivered
-- changes leave it equal to the latest state.

CREATE TABLE IF NOT EXISTS product_daily (
    merchant_id UUID,
    day Date,
    product_id UUID,
    revenue Decimal(38, 2),
    quantity Int64,
    orders UInt64,
    _version UInt64,
    _is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(_version, _is_deleted)
ORDER BY (merchant_id, day, product_id);

INSERT INTO product_daily
SELECT i.merchant_id, o.day, i.product_id, sum(i.amount), sum(i.quantity), uniqExact(i.order_id),
       1, 0
FROM order_items AS i FINAL
INNER JOIN (
    SELECT id, merchant_id, toDate(created_at) AS day FROM orders FINAL
    WHERE status IN ('paid', 'shipped', 'delivered', 'completed')
) AS o ON o.id = i.order_id AND o.merchant_id = i.merchant_id
GROUP BY i.merchant_id, o.day, i.product_id
SETTINGS max_execution_time = 0;
