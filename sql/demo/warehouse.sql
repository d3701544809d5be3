-- The demo warehouse (SQLite). Every date is relative to today, so the planted breaches
-- fire whenever the demo runs. Planted:
--   * events: no partition 3 days ago                         -> missing_partition (P1)
--   * revenue_reconciliation: a 12,500 gap yesterday            -> reconciliation (P0)
--   * critical_datasets: orders 3h stale, customers 45m stale   -> freshness (P1, P3)
--   * pipeline_runs: payments_ingest fails 40% in the last hour -> failure rate (P1)
--   * quality_scores: customer_profiles drops 8% on the day and
--     12% on the week                                          -> trend risk HIGH (P1)
-- Everything else is healthy, and the checks on it pass.

CREATE TABLE events (
    event_id     INTEGER PRIMARY KEY,
    event_date   TEXT NOT NULL,
    customer_id  INTEGER,
    amount       REAL NOT NULL
);

WITH RECURSIVE days(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM days WHERE n < 7),
     per_day(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM per_day WHERE k < 50)
INSERT INTO events (event_date, customer_id, amount)
SELECT date('now', '-' || n || ' day'), 1000 + k, 10.0 + k
FROM days, per_day
WHERE n <> 3;

CREATE TABLE revenue_reconciliation (
    reconciliation_date TEXT PRIMARY KEY,
    system_a_total      NUMERIC NOT NULL,
    system_b_total      NUMERIC NOT NULL
);

WITH RECURSIVE days(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM days WHERE n < 7)
INSERT INTO revenue_reconciliation
SELECT date('now', '-' || n || ' day'),
       100000 + n * 1000,
       100000 + n * 1000 - CASE n WHEN 1 THEN 12500 ELSE n * 3 END
FROM days;

CREATE TABLE critical_datasets (
    dataset_name TEXT PRIMARY KEY,
    last_updated TEXT NOT NULL
);

INSERT INTO critical_datasets VALUES
    ('orders',    datetime('now', '-3 hours')),
    ('customers', datetime('now', '-45 minutes')),
    ('products',  datetime('now', '-5 minutes'));

CREATE TABLE pipeline_runs (
    run_id     INTEGER PRIMARY KEY,
    pipeline   TEXT NOT NULL,
    status     TEXT NOT NULL,
    started_at TEXT NOT NULL
);

WITH RECURSIVE r(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM r WHERE k < 50)
INSERT INTO pipeline_runs (pipeline, status, started_at)
SELECT 'payments_ingest', CASE WHEN k % 5 < 2 THEN 'failed' ELSE 'success' END,
       datetime('now', '-' || k || ' minutes')
FROM r
UNION ALL
SELECT 'crm_sync', CASE WHEN k = 7 THEN 'failed' ELSE 'success' END,
       datetime('now', '-' || k || ' minutes')
FROM r;

CREATE TABLE quality_scores (
    dataset    TEXT NOT NULL,
    score_date TEXT NOT NULL,
    score      REAL NOT NULL,
    PRIMARY KEY (dataset, score_date)
);

WITH RECURSIVE days(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM days WHERE n < 8)
INSERT INTO quality_scores
SELECT 'orders', date('now', '-' || n || ' day'), 0.98 FROM days
UNION ALL
SELECT 'customer_profiles', date('now', '-' || n || ' day'),
       CASE n WHEN 0 THEN 0.81 WHEN 1 THEN 0.88 ELSE 0.92 END
FROM days;

CREATE TABLE orders (
    order_id    INTEGER PRIMARY KEY,
    order_date  TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    total       REAL NOT NULL
);

WITH RECURSIVE o(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM o WHERE k < 200)
INSERT INTO orders (order_date, customer_id, total)
SELECT date('now', '-' || (k % 3) || ' day'), 1000 + k % 40, 20 + k % 17
FROM o;
