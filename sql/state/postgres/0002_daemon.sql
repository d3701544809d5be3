-- The daemon: escalation chains copied onto incidents, reminders, claimed schedule slots
-- and digests (each claimed once across replicas by its primary key).

ALTER TABLE incidents ADD COLUMN escalation_json TEXT;
ALTER TABLE incidents ADD COLUMN escalation_step BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN next_escalation_at TEXT;
ALTER TABLE incidents ADD COLUMN renotify_secs BIGINT;
ALTER TABLE incidents ADD COLUMN next_reminder_at TEXT;
CREATE INDEX incidents_escalation ON incidents (next_escalation_at);
CREATE INDEX incidents_reminder ON incidents (next_reminder_at);

CREATE TABLE slots (
    check_id   TEXT NOT NULL,
    fire_at    TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (check_id, fire_at)
);

CREATE TABLE digests (
    route      TEXT NOT NULL,
    period     TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (route, period)
);
