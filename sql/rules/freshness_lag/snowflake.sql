-- freshness_lag (Snowflake): seconds since the newest row, per key (the session runs in UTC).
SELECT {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}} AS dataset,
       DATEDIFF('second', MAX({{params.timestamp_column}}), CURRENT_TIMESTAMP()::TIMESTAMP_NTZ) AS lag_seconds
FROM {{params.table}}
{{#if params.where}}WHERE {{params.where}}
{{/if}}{{#if params.key_column}}GROUP BY {{params.key_column}}
{{/if}}
