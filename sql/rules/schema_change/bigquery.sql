-- schema_change (BigQuery): the columns and types of one table, or of the tables matching a pattern, from the
-- INFORMATION_SCHEMA of the connection's dataset (the url's /DATASET).
SELECT table_name, column_name, data_type
FROM INFORMATION_SCHEMA.COLUMNS
WHERE {{#if params.table_pattern}}table_schema = COALESCE({{#if params.schema}}{{params.schema}}{{else}}NULL{{/if}}, table_schema) AND table_name LIKE {{params.table_pattern}}{{else}}table_schema = COALESCE({{params.table_schema_literal}}, table_schema) AND table_name = {{params.table_literal}}{{/if}}
ORDER BY table_name, ordinal_position
