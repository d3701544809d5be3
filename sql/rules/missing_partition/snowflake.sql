-- missing_partition (Snowflake): expected partitions from a recursive calendar, rows found per partition.
WITH RECURSIVE expected (p) AS (
    SELECT DATEADD('second', -{{params.lookback}}, DATE_TRUNC('{{params.granularity}}', CURRENT_TIMESTAMP()::TIMESTAMP_NTZ))
    UNION ALL
    SELECT DATEADD('{{params.granularity}}', 1, p) FROM expected
    WHERE DATEADD('{{params.granularity}}', 1, p) < DATE_TRUNC('{{params.granularity}}', CURRENT_TIMESTAMP()::TIMESTAMP_NTZ)
), calendar AS (
    SELECT DISTINCT DATE_TRUNC('{{params.granularity}}', p) AS p FROM expected
    WHERE DATE_TRUNC('{{params.granularity}}', p) < DATE_TRUNC('{{params.granularity}}', CURRENT_TIMESTAMP()::TIMESTAMP_NTZ)
), found AS (
    SELECT DATE_TRUNC('{{params.granularity}}', {{params.partition_column}}::TIMESTAMP_NTZ) AS p, COUNT(*) AS n
    FROM {{params.table}}
    WHERE {{params.partition_column}} >= (SELECT MIN(p) FROM calendar)
    GROUP BY 1
)
SELECT {{#if (eq params.granularity "day")}}TO_VARCHAR(e.p::DATE){{else}}TO_VARCHAR(e.p::DATE) || ' ' || LPAD(TO_VARCHAR(HOUR(e.p)), 2, '0') || ':00'{{/if}} AS "partition",
       COALESCE(f.n, 0) AS rows_found
FROM calendar e LEFT JOIN found f ON f.p = e.p
WHERE COALESCE(f.n, 0) < {{params.min_rows}}
ORDER BY 1
