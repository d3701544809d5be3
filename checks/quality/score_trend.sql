-- dqwatch
-- description = "Quality score must not drop against yesterday and a week ago"
-- connection  = "warehouse"
-- schedule    = "30 7 * * *"
-- category    = "quality_degradation"
-- tags        = ["quality"]
-- keys        = ["dataset"]
-- metric      = "drop_pct_day"
-- severity_column = "risk_level"
-- [severity_map]
-- HIGH   = "P1"
-- MEDIUM = "P2"
-- LOW    = "pass"
WITH s AS (
    SELECT t.dataset,
           t.score AS today,
           (SELECT score FROM quality_scores p WHERE p.dataset = t.dataset AND p.score_date = date('now', '-1 day')) AS yesterday,
           (SELECT score FROM quality_scores p WHERE p.dataset = t.dataset AND p.score_date = date('now', '-7 day')) AS week_ago
    FROM quality_scores t
    WHERE t.score_date = date('now')
), d AS (
    SELECT dataset,
           100.0 * (yesterday - today) / yesterday AS drop_pct_day,
           100.0 * (week_ago - today) / week_ago AS drop_pct_week
    FROM s
)
SELECT dataset, ROUND(drop_pct_day, 2) AS drop_pct_day, ROUND(drop_pct_week, 2) AS drop_pct_week,
       CASE WHEN drop_pct_day > 5 AND drop_pct_week > 10 THEN 'HIGH'
            WHEN drop_pct_day > 2 AND drop_pct_week > 5 THEN 'MEDIUM'
            ELSE 'LOW' END AS risk_level
FROM d
