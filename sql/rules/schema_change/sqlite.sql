-- schema_change (SQLite): the table's columns and declared types.
SELECT {{params.table_literal}} AS table_name, name AS column_name, type AS data_type
FROM pragma_table_info({{params.table_literal}})
ORDER BY cid
