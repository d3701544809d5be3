{{!-- failure_rate_spike (bigquery) in one scan of its table shared with the other checks on it (README: Fused scans).
     One line each: `table:`, `group:` (the key column, or nothing), `rows:` (the rows this check
     reads, or nothing for all), then its columns as `name: expression`, each aggregate
     limited to its rows. --}}
{{#*inline "rows"}}TIMESTAMP({{params.timestamp_column}}) >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {{params.window}} SECOND){{/inline}}
table: {{params.table}}
group: {{params.key_column}}
rows: {{> rows}}
subject: {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}}
failure_pct: CASE WHEN COUNT(CASE WHEN {{> rows}} THEN 1 END) >= {{params.min_volume}} THEN 100.0 * SUM(CASE WHEN ({{> rows}}) AND {{params.status_column}} IN ({{params.failure_values}}) THEN 1 ELSE 0 END) / COUNT(CASE WHEN {{> rows}} THEN 1 END) END
volume: COUNT(CASE WHEN {{> rows}} THEN 1 END)
