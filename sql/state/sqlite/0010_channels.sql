-- One outbox for every channel: a row names where it goes (`mail`, `slack:NAME`,
-- `slack_webhook:NAME`, `pagerduty:NAME`, `teams:NAME`, `webhook:NAME`); a row for a
-- channel other than mail carries its composed message as JSON in `payload` (never a
-- secret: tokens, routing keys and signing secrets are added by the transport).
-- Thread order is per incident and channel.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'mail';
ALTER TABLE outbox ADD COLUMN payload TEXT;
CREATE INDEX outbox_channel_thread ON outbox (incident_id, channel, id);

-- The Slack message an incident's thread hangs on, per channel: written when the root
-- post succeeds; later events reply in its thread and edit it to the current state.
CREATE TABLE chat_threads (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    channel     TEXT NOT NULL,
    chat        TEXT NOT NULL,            -- the Slack channel id the root went to
    ts          TEXT NOT NULL,            -- the root message's ts
    created_at  TEXT NOT NULL,
    PRIMARY KEY (incident_id, channel)
);
