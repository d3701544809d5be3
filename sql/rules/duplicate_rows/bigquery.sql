-- duplicate_rows (BigQuery): one row per key that occurs more than once.
SELECT {{params.key_columns.csv}}, COUNT(*) AS copies
FROM {{params.table}}
{{#if params.where}}WHERE {{params.where}}
{{/if}}GROUP BY {{params.key_columns.csv}}
HAVING COUNT(*) > 1
ORDER BY copies DESC
