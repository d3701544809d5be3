-- schema_change (PostgreSQL): the table's columns and types.
SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS data_type
FROM information_schema.columns
WHERE table_schema = COALESCE({{params.table_schema_literal}}, current_schema()) AND table_name = {{params.table_literal}}
ORDER BY ordinal_position
