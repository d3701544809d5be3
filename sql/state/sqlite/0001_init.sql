-- dqwatch state store (SQLite). Timestamps are UTC text "YYYY-MM-DDTHH:MM:SS.sssZ", which
-- sorts and compares as time; postgres/0001_init.sql has the same tables and columns.

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    check_id      TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    duration_ms   INTEGER NOT NULL,
    outcome       TEXT NOT NULL,              -- pass | breach | error
    severity      TEXT,                       -- worst breach
    error_kind    TEXT,
    error_message TEXT,
    row_count     INTEGER NOT NULL,
    capped        INTEGER NOT NULL
);
CREATE INDEX runs_check ON runs (check_id, started_at);

CREATE TABLE observations (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    check_id    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    key_json    TEXT NOT NULL,
    status      TEXT NOT NULL,                -- pass | breach | no_data
    severity    TEXT,
    metric      REAL,
    observed_at TEXT NOT NULL
);
CREATE INDEX observations_fingerprint ON observations (fingerprint, observed_at);
CREATE INDEX observations_check ON observations (check_id, observed_at);

CREATE TABLE check_state (
    check_id     TEXT PRIMARY KEY,
    error_streak INTEGER NOT NULL,
    last_run_at  TEXT NOT NULL,
    last_pass_at TEXT
);

CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY,
    fingerprint      TEXT NOT NULL,
    check_id         TEXT NOT NULL,
    key_json         TEXT NOT NULL,
    state            TEXT NOT NULL,           -- pending | open | acknowledged | resolved
    category         TEXT NOT NULL,
    severity         TEXT NOT NULL,
    current_severity TEXT NOT NULL,
    peak_severity    TEXT NOT NULL,
    title            TEXT NOT NULL,
    first_seen_at    TEXT NOT NULL,
    opened_at        TEXT,
    acknowledged_at  TEXT,
    acknowledged_by  TEXT,
    resolved_at      TEXT,
    resolved_by      TEXT,
    last_seen_at     TEXT NOT NULL,
    breach_streak    INTEGER NOT NULL,
    pass_streak      INTEGER NOT NULL,
    repeat_count     INTEGER NOT NULL,
    metric           REAL,
    threshold        TEXT,
    detail           TEXT
);
-- At most one unresolved incident per fingerprint, whatever the code does.
CREATE UNIQUE INDEX incidents_one_active ON incidents (fingerprint) WHERE state <> 'resolved';
CREATE INDEX incidents_state ON incidents (state, resolved_at);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    note        TEXT
);
CREATE INDEX events_incident ON events (incident_id, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    incident_id     INTEGER REFERENCES incidents (id),
    event_id        INTEGER REFERENCES events (id),
    dedupe_key      TEXT NOT NULL UNIQUE,
    recipients      TEXT NOT NULL,            -- comma-separated
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    in_reply_to     TEXT,
    state           TEXT NOT NULL,            -- pending | sent | dead
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
