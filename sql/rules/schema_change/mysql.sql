-- schema_change (MySQL / MariaDB): the table's columns and types.
SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, COLUMN_TYPE AS data_type
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = COALESCE({{params.table_schema_literal}}, DATABASE()) AND TABLE_NAME = {{params.table_literal}}
ORDER BY ORDINAL_POSITION
