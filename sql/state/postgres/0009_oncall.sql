-- On-call controls (issue 10). The incident commander (`incidents assign`), and notification
-- holds: a snooze until a time, or a mute until `unmute`, with who set it and why.
-- `held_since` is when notifications of the incident started being held (a snooze or mute
-- set, or a mail held by a maintenance window); the end of the hold is told once, and that
-- write clears it (a conditional update on `revision`, so one replica tells it).
ALTER TABLE incidents ADD COLUMN assignee TEXT;
ALTER TABLE incidents ADD COLUMN snoozed_until TEXT;
ALTER TABLE incidents ADD COLUMN muted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN hold_reason TEXT;
ALTER TABLE incidents ADD COLUMN hold_by TEXT;
ALTER TABLE incidents ADD COLUMN held_since TEXT;
CREATE INDEX incidents_held ON incidents (held_since);
-- The few incidents with controls, read every pass and every daemon tick (the predicate is
-- the query's, word for word, so that the planner uses the index).
CREATE INDEX incidents_controlled ON incidents (id)
    WHERE assignee IS NOT NULL OR snoozed_until IS NOT NULL OR muted <> 0 OR held_since IS NOT NULL;
-- Structured fields of an event (a status update's status, impact, next steps, ETA and
-- workaround; a resolution's reason; an assignment; a snooze's end), as JSON.
ALTER TABLE events ADD COLUMN fields_json TEXT;
