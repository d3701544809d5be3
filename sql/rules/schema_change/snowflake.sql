-- schema_change (Snowflake): the columns and types of one table, or of the tables matching a pattern
-- (information_schema holds unquoted names in upper case: names compare case-insensitively).
SELECT table_name AS table_name, column_name AS column_name, data_type AS data_type
FROM information_schema.columns
WHERE {{#if params.table_pattern}}UPPER(table_schema) = UPPER(COALESCE({{#if params.schema}}{{params.schema}}{{else}}NULL{{/if}}, CURRENT_SCHEMA())) AND table_name ILIKE {{params.table_pattern}}{{else}}UPPER(table_schema) = UPPER(COALESCE({{params.table_schema_literal}}, CURRENT_SCHEMA())) AND UPPER(table_name) = UPPER({{params.table_literal}}){{/if}}
ORDER BY table_name, ordinal_position
