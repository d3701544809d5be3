-- freshness_lag (sqlite): seconds since the newest row, per key.
SELECT {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}} AS dataset,
       CAST((julianday('now') - julianday(MAX({{params.timestamp_column}}))) * 86400 AS INTEGER) AS lag_seconds
FROM {{params.table}}
{{#if params.where}}WHERE {{params.where}}
{{/if}}{{#if params.key_column}}GROUP BY {{params.key_column}}
{{/if}}
