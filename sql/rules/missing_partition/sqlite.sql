-- missing_partition (SQLite): expected partitions from a recursive calendar (UTC).
WITH RECURSIVE expected (p) AS (
    SELECT {{#if (eq params.granularity "day")}}datetime(date(date('now'), '-{{params.lookback}} seconds')){{else}}strftime('%Y-%m-%d %H:00:00', strftime('%Y-%m-%d %H:00:00', 'now'), '-{{params.lookback}} seconds'){{/if}}
    UNION ALL
    SELECT datetime(p, '+1 {{params.granularity}}') FROM expected
    WHERE datetime(p, '+1 {{params.granularity}}') < {{#if (eq params.granularity "day")}}datetime(date('now')){{else}}strftime('%Y-%m-%d %H:00:00', 'now'){{/if}}
), found AS (
    SELECT strftime({{#if (eq params.granularity "day")}}'%Y-%m-%d 00:00:00'{{else}}'%Y-%m-%d %H:00:00'{{/if}}, {{params.partition_column}}) AS p, COUNT(*) AS n
    FROM {{params.table}}
    WHERE {{params.partition_column}} >= date('now', '-{{params.lookback}} seconds', '-1 day')
    GROUP BY 1
)
SELECT strftime({{#if (eq params.granularity "day")}}'%Y-%m-%d'{{else}}'%Y-%m-%d %H:00'{{/if}}, e.p) AS partition,
       COALESCE(f.n, 0) AS rows_found
FROM expected e LEFT JOIN found f ON f.p = e.p
WHERE COALESCE(f.n, 0) < {{params.min_rows}}
ORDER BY 1
