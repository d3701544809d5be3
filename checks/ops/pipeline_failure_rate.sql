-- dqwatch
-- description = "Pipeline failure rate over the last hour (at least 20 runs)"
-- connection  = "warehouse"
-- schedule    = "*/5 * * * *"
-- category    = "pipeline_failure"
-- tags        = ["pipelines"]
-- keys        = ["pipeline"]
-- metric      = "failure_pct"
-- [thresholds]
-- P1 = "> 25"
-- P2 = "> 10"
SELECT pipeline,
       100.0 * SUM(status = 'failed') / COUNT(*) AS failure_pct,
       COUNT(*) AS runs
FROM pipeline_runs
WHERE started_at >= datetime('now', '-1 hour')
GROUP BY pipeline
HAVING COUNT(*) >= 20
