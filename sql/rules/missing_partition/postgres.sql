-- missing_partition (PostgreSQL): expected partitions from a calendar, rows found per partition.
WITH expected AS (
    SELECT p FROM generate_series(
        date_trunc('{{params.granularity}}', date_trunc('{{params.granularity}}', now()) - interval '{{params.lookback}} seconds'),
        date_trunc('{{params.granularity}}', now()) - interval '1 {{params.granularity}}',
        interval '1 {{params.granularity}}') AS p
), found AS (
    SELECT date_trunc('{{params.granularity}}', {{params.partition_column}}) AS p, COUNT(*) AS n
    FROM {{params.table}}
    WHERE {{params.partition_column}} >= date_trunc('{{params.granularity}}', date_trunc('{{params.granularity}}', now()) - interval '{{params.lookback}} seconds')
    GROUP BY 1
)
SELECT to_char(e.p, {{#if (eq params.granularity "day")}}'YYYY-MM-DD'{{else}}'YYYY-MM-DD HH24:00'{{/if}}) AS partition,
       COALESCE(f.n, 0) AS rows_found
FROM expected e LEFT JOIN found f ON f.p = e.p
WHERE COALESCE(f.n, 0) < {{params.min_rows}}
ORDER BY 1
