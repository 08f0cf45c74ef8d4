-- The items of each merchant's counted orders per UTC day of the order, as one
-- row: the order's created_at, product_id, quantity, amount and order_id.
-- Questions cut at an instant inside a day (inventory_status's 30 days before
-- now, top_products over `days`) take their whole days from `product_daily` and
-- split the days at their edges with this row, instead of reading every item of
-- the merchant to find the orders of those few hours.
--
-- It is written together with `product_daily`, from the same recomputation of
-- order_items FINAL joined with orders FINAL per touched (merchant_id, day) key,
-- and stays exact the same way: the whole row is written again with a higher
-- _version (an empty list when the key's items all vanished), so updates,
-- deletes and redelivered changes leave it equal to the latest state
-- (optima_bi_mcp.store.rollups).

CREATE TABLE IF NOT EXISTS merchant_day_items (
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
ORDER BY (merchant_id, day);

INSERT INTO merchant_day_items
SELECT i.merchant_id, o.day,
       groupArray((o.created_at, i.product_id, toInt64(i.quantity), i.amount, i.order_id)), 1
FROM order_items AS i FINAL
INNER JOIN (
    SELECT id, merchant_id, created_at, toDate(created_at) AS day FROM orders FINAL
    WHERE status IN ('paid', 'shipped', 'delivered', 'completed')
) AS o ON o.id = i.order_id AND o.merchant_id = i.merchant_id
GROUP BY i.merchant_id, o.day
SETTINGS max_execution_time = 0;
