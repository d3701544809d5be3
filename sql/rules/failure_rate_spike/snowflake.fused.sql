{{!-- failure_rate_spike (snowflake), in one scan shared with the other checks on its table (README: Fused scans). --}}
{{#*inline "rows"}}{{params.timestamp_column}} >= DATEADD('second', -{{params.window}}, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ){{/inline}}
table: {{params.table}}
group: {{params.key_column}}
rows: {{> rows}}
subject: {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}}
failure_pct: CASE WHEN COUNT(CASE WHEN {{> rows}} THEN 1 END) >= {{params.min_volume}} THEN 100.0 * SUM(CASE WHEN ({{> rows}}) AND {{params.status_column}} IN ({{params.failure_values}}) THEN 1 ELSE 0 END) / COUNT(CASE WHEN {{> rows}} THEN 1 END) END
volume: COUNT(CASE WHEN {{> rows}} THEN 1 END)
