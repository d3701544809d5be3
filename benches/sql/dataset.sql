-- dqwatch bench dataset, loaded into the database `dqbench` by benches/run.sh.
-- Deterministic (setseed) and anchored on a fixed date, so the checks' verdicts do not
-- depend on the day the bench runs. Variables: :rows (events), :version (marker).
--
--   events     :rows rows over 365 days (2024-07-01 .. 2025-06-30), appended in date
--              order (like a real event table), indexed on event_date
--   customers  200,000 rows (region, segment)
--   ledger     finance's daily totals per channel, to reconcile against events
--
-- Planted problems (what the failing checks find):
--   * channel 'partner' has no events on 6 days (day index 40,111,190,250,300,361) and
--     stops at 10:00 on the last day                        -> freshness / missing days
--   * channel 'app' fails 12% (instead of 3%) on days where day % 29 = 7 -> failure rate
--   * ledger 'web' is 1,250.00 off on days where day % 37 = 5, 'store' 0.50 off where
--     day % 53 = 11, 'app' has no ledger row on day 200     -> reconciliation gaps
--   * ~16 events with a negative amount, ~10 duplicated events -> row checks
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET TIME ZONE 'UTC';
SET max_parallel_workers_per_gather = 0;   -- keep random() in one process: deterministic

DROP TABLE IF EXISTS bench_meta, events, customers, ledger;

SELECT setseed(0.42);

CREATE TABLE customers AS
SELECT g AS customer_id,
       (ARRAY['north','south','east','west','central','emea','apac','latam'])[1 + g % 8] AS region,
       (ARRAY['consumer','consumer','consumer','smb','enterprise'])[1 + (g * 7) % 5] AS segment,
       DATE '2020-01-01' + (g % 1600) AS signup_date
FROM generate_series(1, 200000) g;
ALTER TABLE customers ADD PRIMARY KEY (customer_id);

CREATE TABLE events (
    id          bigint        NOT NULL,
    event_date  date          NOT NULL,
    event_ts    timestamptz   NOT NULL,
    customer_id integer       NOT NULL,
    amount      numeric(12,2) NOT NULL,
    status      text          NOT NULL,
    channel     text          NOT NULL
);

INSERT INTO events
SELECT g,
       DATE '2024-07-01' + day,
       (DATE '2024-07-01' + day)::timestamp AT TIME ZONE 'UTC'
           + make_interval(secs => CASE WHEN channel = 'partner' AND day = 364 THEN floor(r_ts * 36000) ELSE floor(r_ts * 86400) END),
       1 + floor(r_cust * 200000)::int,
       CASE WHEN g % 250007 = 0 THEN -1 ELSE 1 END * round((5 + r_amt * 490)::numeric, 2),
       CASE WHEN r_st < fail_p THEN 'failed'
            WHEN r_st < fail_p + 0.015 THEN 'refunded'
            WHEN r_st < fail_p + 0.020 THEN 'pending'
            ELSE 'ok' END,
       channel
FROM (
    SELECT g, day, r_ts, r_cust, r_amt, r_st, channel,
           CASE WHEN channel = 'app' AND day % 29 = 7 THEN 0.12 ELSE 0.03 END AS fail_p
    FROM (
        SELECT g, ((g - 1) * 365 / :rows)::int AS day,
               random() AS r_ts, random() AS r_cust, random() AS r_amt, random() AS r_st,
               CASE WHEN r_ch < 0.45 THEN 'web' WHEN r_ch < 0.80 THEN 'app'
                    WHEN r_ch < 0.92 THEN 'store' ELSE 'partner' END AS channel
        FROM (SELECT g, random() AS r_ch FROM generate_series(1, :rows) g) a
    ) b
) c
WHERE NOT (channel = 'partner' AND day IN (40, 111, 190, 250, 300, 361));

-- A few events loaded twice (same customer, timestamp, amount; new id).
INSERT INTO events
SELECT id + 100000000, event_date, event_ts, customer_id, amount, status, channel
FROM events WHERE id % 400009 = 0;

CREATE INDEX events_event_date ON events (event_date);

CREATE TABLE ledger AS
SELECT event_date, channel, SUM(amount) FILTER (WHERE status = 'ok') AS total
FROM events GROUP BY event_date, channel;
UPDATE ledger SET total = total + 1250.00 WHERE (event_date - DATE '2024-07-01') % 37 = 5 AND channel = 'web';
UPDATE ledger SET total = total - 0.50 WHERE (event_date - DATE '2024-07-01') % 53 = 11 AND channel = 'store';
DELETE FROM ledger WHERE event_date = DATE '2024-07-01' + 200 AND channel = 'app';
ALTER TABLE ledger ADD PRIMARY KEY (event_date, channel);

VACUUM (FREEZE, ANALYZE) customers;
VACUUM (FREEZE, ANALYZE) events;
VACUUM (FREEZE, ANALYZE) ledger;

CREATE TABLE bench_meta AS SELECT :'version'::text AS version, (SELECT count(*) FROM events) AS events;
