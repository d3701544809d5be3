-- volume_anomaly (Snowflake): the row count per key; dqwatch compares it with the stored history.
SELECT {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}} AS subject, COUNT(*) AS row_count
FROM {{params.table}}
{{#if params.where}}WHERE {{params.where}}
{{/if}}{{#if params.key_column}}GROUP BY {{params.key_column}}
{{/if}}
