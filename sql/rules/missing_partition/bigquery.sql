-- missing_partition (BigQuery): expected partitions from a generated calendar, rows found per partition.
-- partition_column may be the pseudo-column _PARTITIONDATE (or _PARTITIONTIME) of an ingestion-time
-- partitioned table; the filter on it keeps the scan to the lookback window's partitions.
WITH expected AS (
    SELECT p FROM UNNEST(GENERATE_TIMESTAMP_ARRAY(
        TIMESTAMP_TRUNC(TIMESTAMP_SUB(TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}}), INTERVAL {{params.lookback}} SECOND), {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}}),
        TIMESTAMP_SUB(TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}}), INTERVAL 1 {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}}),
        INTERVAL 1 {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}})) AS p
), found AS (
    SELECT TIMESTAMP_TRUNC(TIMESTAMP({{params.partition_column}}), {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}}) AS p, COUNT(*) AS n
    FROM {{params.table}}
    WHERE TIMESTAMP({{params.partition_column}}) >= TIMESTAMP_TRUNC(TIMESTAMP_SUB(TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}}), INTERVAL {{params.lookback}} SECOND), {{#if (eq params.granularity "day")}}DAY{{else}}HOUR{{/if}})
    GROUP BY 1
)
SELECT FORMAT_TIMESTAMP({{#if (eq params.granularity "day")}}'%Y-%m-%d'{{else}}'%Y-%m-%d %H:00'{{/if}}, e.p) AS `partition`,
       COALESCE(f.n, 0) AS rows_found
FROM expected e LEFT JOIN found f ON f.p = e.p
WHERE COALESCE(f.n, 0) < {{params.min_rows}}
ORDER BY 1
