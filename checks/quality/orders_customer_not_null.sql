-- dqwatch
-- description = "Every order has a customer"
-- connection  = "warehouse"
-- schedule    = "0 * * * *"
-- tags        = ["quality"]
-- severity    = "P2"
SELECT order_id FROM orders WHERE customer_id IS NULL
