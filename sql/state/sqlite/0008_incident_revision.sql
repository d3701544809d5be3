-- Every write of an incident bumps its revision, and a write computed from an older revision
-- is refused: an acknowledgement made while a run was being reconciled is never overwritten
-- by that run (the run reconciles again from the new state).
ALTER TABLE incidents ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
