-- freshness_lag (postgres): seconds since the newest row, per key.
SELECT {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}} AS dataset,
       EXTRACT(EPOCH FROM (now() - MAX({{params.timestamp_column}})))::bigint AS lag_seconds
FROM {{params.table}}
{{#if params.where}}WHERE {{params.where}}
{{/if}}{{#if params.key_column}}GROUP BY {{params.key_column}}
{{/if}}
