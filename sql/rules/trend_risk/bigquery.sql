{{#if params.of}}-- trend_risk of = {{params.of}}: computed by dqwatch from the stored metric history; no query runs.
SELECT 1 AS unused
{{else}}-- trend_risk (BigQuery): the latest value per key against the day before and a week before.
WITH h AS (
    SELECT {{params.key_column}} AS k, DATE({{params.date_column}}) AS d, {{params.value_column}} AS v FROM {{params.table}}
), l AS (
    SELECT k, MAX(d) AS d FROM h GROUP BY k
), c AS (
    SELECT l.k, cur.v AS latest, prev.v AS day_before, wk.v AS week_before
    FROM l
    LEFT JOIN h cur ON cur.k = l.k AND cur.d = l.d
    LEFT JOIN h prev ON prev.k = l.k AND prev.d = DATE_SUB(l.d, INTERVAL 1 DAY)
    LEFT JOIN h wk ON wk.k = l.k AND wk.d = DATE_SUB(l.d, INTERVAL 7 DAY)
), p AS (
    SELECT k,
           CASE WHEN day_before <> 0 THEN 100.0 * (day_before - latest) / day_before END AS drop_pct_day,
           CASE WHEN week_before <> 0 THEN 100.0 * (week_before - latest) / week_before END AS drop_pct_week
    FROM c
)
SELECT k AS subject, drop_pct_day, drop_pct_week,
       CASE WHEN drop_pct_day > {{params.drop_high_pct_day}} AND drop_pct_week > {{params.drop_high_pct_week}} THEN '{{params.high_severity}}'
            WHEN drop_pct_day > {{params.drop_medium_pct_day}} AND drop_pct_week > {{params.drop_medium_pct_week}} THEN '{{params.medium_severity}}'
            ELSE 'pass' END AS risk
FROM p
{{/if}}
