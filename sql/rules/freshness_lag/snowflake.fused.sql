{{!-- freshness_lag (snowflake), in one scan shared with the other checks on its table (README: Fused scans). --}}
{{#*inline "rows"}}{{#if params.where}}{{params.where}}{{else}}1 = 1{{/if}}{{/inline}}
table: {{params.table}}
group: {{params.key_column}}
rows: {{#if params.where}}{{params.where}}{{/if}}
dataset: {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}}
lag_seconds: DATEDIFF('second', MAX(CASE WHEN {{> rows}} THEN {{params.timestamp_column}} END), CURRENT_TIMESTAMP()::TIMESTAMP_NTZ)
