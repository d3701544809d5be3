-- An incident keeps what it needs to print its metric as the report does: the metric's unit
-- (from the threshold as written: "> 2h" is seconds, "> 5%" percent), the breached
-- threshold's severity next to its text, and a severity-map label in its own column.
ALTER TABLE incidents ADD COLUMN unit TEXT NOT NULL DEFAULT 'number';
ALTER TABLE incidents ADD COLUMN threshold_severity TEXT;
ALTER TABLE incidents ADD COLUMN label TEXT;
-- Before this migration `threshold` held either a threshold as written (it starts with its
-- operator) or a severity-map label; labels move to `label`.
UPDATE incidents SET label = threshold, threshold = NULL
    WHERE threshold IS NOT NULL AND substr(threshold, 1, 1) NOT IN ('<', '>', '=', '!');
-- The threshold stored was the latest breach's, whose level is the current severity.
UPDATE incidents SET threshold_severity = current_severity WHERE threshold IS NOT NULL;
UPDATE incidents SET unit = 'percent'
    WHERE threshold IS NOT NULL AND substr(threshold, length(threshold), 1) = '%';
UPDATE incidents SET unit = 'seconds'
    WHERE threshold IS NOT NULL AND substr(threshold, length(threshold), 1) IN ('s', 'm', 'h', 'd', 'w');
