-- schema_change (MySQL / MariaDB): the columns and types of one table, or of the tables matching a pattern.
SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, COLUMN_TYPE AS data_type
FROM information_schema.COLUMNS
WHERE {{#if params.table_pattern}}TABLE_SCHEMA = COALESCE({{#if params.schema}}{{params.schema}}{{else}}NULL{{/if}}, DATABASE()) AND TABLE_NAME LIKE {{params.table_pattern}}{{else}}TABLE_SCHEMA = COALESCE({{params.table_schema_literal}}, DATABASE()) AND TABLE_NAME = {{params.table_literal}}{{/if}}
ORDER BY TABLE_NAME, ORDINAL_POSITION
