-- dqwatch
-- description = "Every day of the last week has an events partition"
-- connection  = "warehouse"
-- schedule    = "0 6 * * *"
-- category    = "missing_data"
-- tags        = ["events"]
-- keys        = ["partition_date"]
-- severity    = "P1"
WITH RECURSIVE days(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM days WHERE n < 7)
SELECT date('now', '-' || n || ' day') AS partition_date
FROM days
WHERE NOT EXISTS (
    SELECT 1 FROM events WHERE event_date = date('now', '-' || n || ' day')
)
