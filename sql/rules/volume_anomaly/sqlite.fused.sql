{{!-- volume_anomaly (sqlite) in one scan of its table shared with the other checks on it (README: Fused scans).
     One line each: `table:`, `group:` (the key column, or nothing), `rows:` (the rows this check
     reads, or nothing for all), then its columns as `name: expression`, each aggregate
     limited to its rows. --}}
{{#*inline "rows"}}{{#if params.where}}{{params.where}}{{else}}1 = 1{{/if}}{{/inline}}
table: {{params.table}}
group: {{params.key_column}}
rows: {{#if params.where}}{{params.where}}{{/if}}
subject: {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}}
row_count: COUNT(CASE WHEN {{> rows}} THEN 1 END)
