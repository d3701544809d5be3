-- failure_rate_spike (BigQuery): failure percent in the window, NULL below the minimum volume.
SELECT {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}} AS subject,
       CASE WHEN COUNT(*) >= {{params.min_volume}}
            THEN 100.0 * SUM(CASE WHEN {{params.status_column}} IN ({{params.failure_values}}) THEN 1 ELSE 0 END) / COUNT(*)
       END AS failure_pct,
       COUNT(*) AS volume
FROM {{params.table}}
WHERE TIMESTAMP({{params.timestamp_column}}) >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {{params.window}} SECOND)
{{#if params.key_column}}GROUP BY {{params.key_column}}
{{/if}}
