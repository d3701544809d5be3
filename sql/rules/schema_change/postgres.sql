-- schema_change (PostgreSQL): the columns and types of one table, or of the tables matching a pattern.
SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS data_type
FROM information_schema.columns
WHERE {{#if params.table_pattern}}table_schema = COALESCE({{#if params.schema}}{{params.schema}}{{else}}NULL{{/if}}, current_schema()) AND table_name LIKE {{params.table_pattern}}{{else}}table_schema = COALESCE({{params.table_schema_literal}}, current_schema()) AND table_name = {{params.table_literal}}{{/if}}
ORDER BY table_name, ordinal_position
