-- dqwatch
-- description = "Critical datasets are updated at least every 30 minutes"
-- connection  = "warehouse"
-- schedule    = "*/10 * * * *"
-- category    = "stale_data"
-- tags        = ["freshness"]
-- keys        = ["dataset_name"]
-- metric      = "lag_seconds"
-- [thresholds]
-- P1 = "> 2h"
-- P3 = "> 30m"
SELECT dataset_name,
       CAST((julianday('now') - julianday(last_updated)) * 86400 AS INTEGER) AS lag_seconds
FROM critical_datasets
