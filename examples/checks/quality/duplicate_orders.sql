-- dqwatch
-- description = "No order id is loaded twice"
-- connection  = "warehouse"
-- schedule    = "0 * * * *"
-- category    = "duplicate_load"
-- tags        = ["quality"]
-- keys        = ["order_id"]
-- severity    = "P2"
SELECT order_id, COUNT(*) AS copies FROM orders GROUP BY order_id HAVING COUNT(*) > 1
