{{!-- freshness_lag (bigquery) in one scan of its table shared with the other checks on it (README: Fused scans).
     One line each: `table:`, `group:` (the key column, or nothing), `rows:` (the rows this check
     reads, or nothing for all), then its columns as `name: expression`, each aggregate
     limited to its rows. --}}
{{#*inline "rows"}}{{#if params.where}}{{params.where}}{{else}}1 = 1{{/if}}{{/inline}}
table: {{params.table}}
group: {{params.key_column}}
rows: {{#if params.where}}{{params.where}}{{/if}}
dataset: {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}}
lag_seconds: TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), TIMESTAMP(MAX(CASE WHEN {{> rows}} THEN {{params.timestamp_column}} END)), SECOND)
