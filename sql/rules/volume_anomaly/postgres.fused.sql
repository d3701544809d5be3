{{!-- volume_anomaly (postgres), in one scan shared with the other checks on its table (README: Fused scans). --}}
{{#*inline "rows"}}{{#if params.where}}{{params.where}}{{else}}1 = 1{{/if}}{{/inline}}
table: {{params.table}}
group: {{params.key_column}}
rows: {{#if params.where}}{{params.where}}{{/if}}
subject: {{#if params.key_column}}{{params.key_column}}{{else}}'all'{{/if}}
row_count: COUNT(CASE WHEN {{> rows}} THEN 1 END)
