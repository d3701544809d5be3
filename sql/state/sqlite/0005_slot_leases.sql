-- Slot leases: a claimed schedule slot belongs to its replica until `lease_until`, which the
-- replica's heartbeat keeps moving forward while the check runs. The run's record sets
-- `finished_at` in the same transaction. A slot whose lease ran out unfinished (its replica
-- died) is taken over by another replica: `claimed_by` changes, `takeovers` counts it.

ALTER TABLE slots ADD COLUMN lease_until TEXT;
ALTER TABLE slots ADD COLUMN finished_at TEXT;
ALTER TABLE slots ADD COLUMN takeovers INTEGER NOT NULL DEFAULT 0;
-- Slots claimed before leases existed are settled as they were: never taken over.
UPDATE slots SET finished_at = claimed_at;
CREATE INDEX slots_unfinished ON slots (lease_until) WHERE finished_at IS NULL;
