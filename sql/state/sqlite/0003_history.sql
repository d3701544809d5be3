-- History for rules that compare with the past: the raw value behind each observation
-- (volume_anomaly stores the row count while its metric is a z-score), and the last schema
-- snapshot of each schema_change check.

ALTER TABLE observations ADD COLUMN value REAL;

CREATE TABLE snapshots (
    check_id TEXT PRIMARY KEY,
    body     TEXT NOT NULL,
    taken_at TEXT NOT NULL
);
