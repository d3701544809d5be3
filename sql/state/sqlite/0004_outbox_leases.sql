-- Per-mail leases with an owner: only the process holding a mail's lease may settle it
-- (sent, failed, dead), and mails of one incident go out in order (the thread index).
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
CREATE INDEX outbox_thread ON outbox (incident_id, id);
