-- schema_change (SQLite): the columns and declared types of one table, or of the tables matching a pattern.
{{#if params.table_pattern}}SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type
FROM sqlite_master m JOIN pragma_table_info(m.name) p
WHERE m.type = 'table' AND m.name LIKE {{params.table_pattern}}
ORDER BY m.name, p.cid{{else}}SELECT {{params.table_literal}} AS table_name, name AS column_name, type AS data_type
FROM pragma_table_info({{params.table_literal}})
ORDER BY cid{{/if}}
