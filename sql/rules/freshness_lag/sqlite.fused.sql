{{!-- freshness_lag (sqlite), in one scan shared with the other checks on its table (README: Fused scans). --}}
{{#*inline "rows"}}{{#if params.where}}{{params.where}}{{else}}1 = 1{{/if}}{{/inline}}
table: {{params.table}}
group: {{params.key_column}}
rows: {{#if params.where}}{{params.where}}{{/if}}
dataset: {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}}
lag_seconds: CAST((julianday('now') - julianday(MAX(CASE WHEN {{> rows}} THEN {{params.timestamp_column}} END))) * 86400 AS INTEGER)
