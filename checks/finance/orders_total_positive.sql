-- dqwatch
-- description = "No order has a negative or zero total"
-- connection  = "warehouse"
-- schedule    = "0 * * * *"
-- category    = "quality_degradation"
-- tags        = ["finance"]
-- severity    = "P1"
SELECT order_id, total
FROM orders
WHERE total <= 0
