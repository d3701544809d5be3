-- dqwatch
-- description = "Yesterday had at least 10 orders"
-- connection  = "warehouse"
-- schedule    = "0 8 * * *"
-- category    = "missing_data"
-- tags        = ["quality"]
-- metric      = "orders"
-- [thresholds]
-- P1 = "< 10"
SELECT COUNT(*) AS orders FROM orders WHERE order_date = date('now', '-1 day')
