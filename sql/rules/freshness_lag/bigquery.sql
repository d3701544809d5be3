-- freshness_lag (BigQuery): seconds since the newest row, per key (TIMESTAMP() reads DATE, DATETIME and TIMESTAMP columns as UTC).
SELECT {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}} AS dataset,
       TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), TIMESTAMP(MAX({{params.timestamp_column}})), SECOND) AS lag_seconds
FROM {{params.table}}
{{#if params.where}}WHERE {{params.where}}
{{/if}}{{#if params.key_column}}GROUP BY {{params.key_column}}
{{/if}}
