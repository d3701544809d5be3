-- missing_partition (MySQL / MariaDB): expected partitions from a recursive calendar.
WITH RECURSIVE expected (p) AS (
    SELECT CAST(DATE_FORMAT({{#if (eq params.granularity "day")}}CAST(CURRENT_DATE AS DATETIME){{else}}CAST(DATE_FORMAT(NOW(), '%Y-%m-%d %H:00:00') AS DATETIME){{/if}} - INTERVAL {{params.lookback}} SECOND, {{#if (eq params.granularity "day")}}'%Y-%m-%d 00:00:00'{{else}}'%Y-%m-%d %H:00:00'{{/if}}) AS DATETIME)
    UNION ALL
    SELECT p + INTERVAL 1 {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}} FROM expected
    WHERE p + INTERVAL 1 {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}} < {{#if (eq params.granularity "day")}}CAST(CURRENT_DATE AS DATETIME){{else}}CAST(DATE_FORMAT(NOW(), '%Y-%m-%d %H:00:00') AS DATETIME){{/if}}
), found AS (
    SELECT CAST(DATE_FORMAT({{params.partition_column}}, {{#if (eq params.granularity "day")}}'%Y-%m-%d 00:00:00'{{else}}'%Y-%m-%d %H:00:00'{{/if}}) AS DATETIME) AS p, COUNT(*) AS n
    FROM {{params.table}}
    WHERE {{params.partition_column}} >= (SELECT MIN(p) FROM expected)
    GROUP BY 1
)
SELECT DATE_FORMAT(e.p, {{#if (eq params.granularity "day")}}'%Y-%m-%d'{{else}}'%Y-%m-%d %H:00'{{/if}}) AS `partition`,
       COALESCE(f.n, 0) AS rows_found
FROM expected e LEFT JOIN found f ON f.p = e.p
WHERE COALESCE(f.n, 0) < {{params.min_rows}}
ORDER BY 1
