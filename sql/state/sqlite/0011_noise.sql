-- Noise control: each incident's recent run history (bit 0 = the latest run, 1 = breach) for
-- `open_window` and flap detection, whether it is flapping, and a storm's breaching keys.
ALTER TABLE incidents ADD COLUMN history INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN flapping BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE incidents ADD COLUMN members_json TEXT;
-- The breaching rows of the latest told breach ({"columns": [...], "rows": [[...]], "capped": n}),
-- for the incident's page.
ALTER TABLE incidents ADD COLUMN sample_json TEXT;
