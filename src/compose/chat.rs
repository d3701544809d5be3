//! Channel messages: Slack Block Kit, PagerDuty Events v2, a Teams Adaptive Card and the
//! signed webhook's JSON, built from an incident event and the two chat templates
//! (`chat_root`: the incident as it stands, `chat_event`: what just happened). Pure: the
//! payloads hold no secret; each service's limits are enforced here, cutting text on a
//! character boundary.

use super::context::CheckInfo;
use crate::incidents::{Event, EventKind, Incident};
use crate::model::{IncidentState, Severity, format_time};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Slack: a message's `text` is cut at 40,000 characters and it may hold 50 blocks.
pub const SLACK_TEXT_MAX: usize = 40_000;
/// Slack: blocks per message.
pub const SLACK_BLOCKS_MAX: usize = 50;
/// Slack: a section's text.
const SLACK_SECTION_MAX: usize = 3000;
/// Slack: a section field's text.
const SLACK_FIELD_MAX: usize = 2000;
/// Slack: a header's text.
const SLACK_HEADER_MAX: usize = 150;
/// PagerDuty: `payload.summary`.
pub const PAGERDUTY_SUMMARY_MAX: usize = 1024;
/// PagerDuty: `dedup_key`.
pub const PAGERDUTY_DEDUP_MAX: usize = 255;
/// PagerDuty: the whole event body.
pub const PAGERDUTY_BODY_MAX: usize = 512 * 1024;
/// Teams: a card's text blocks (a Teams message holds about 28 KB).
const TEAMS_TEXT_MAX: usize = 4000;
/// The webhook body schema; a change that is not an addition raises it.
pub const WEBHOOK_SCHEMA_VERSION: u32 = 1;

/// The rendered chat templates of one event.
pub struct ChatText {
    /// `chat_root`: the incident as it stands (several lines).
    pub root: String,
    /// `chat_event`: what just happened.
    pub event: String,
}

pub use crate::model::truncate_chars as truncate;

/// Slack's mrkdwn needs `&`, `<` and `>` escaped in any text it did not write.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn state_mark(inc: &Incident) -> &'static str {
    match inc.state {
        IncidentState::Resolved => "✅",
        IncidentState::Acknowledged => "👀",
        IncidentState::Open => "🔴",
        IncidentState::Pending => "⚪",
    }
}

fn state_line(inc: &Incident) -> String {
    match inc.state {
        IncidentState::Resolved => format!(
            "resolved{}",
            inc.resolved_by
                .as_deref()
                .map_or(String::new(), |b| format!(" by {b}"))
        ),
        IncidentState::Acknowledged => format!(
            "acknowledged{}",
            inc.acknowledged_by
                .as_deref()
                .map_or(String::new(), |b| format!(" by {b}"))
        ),
        other => other.as_str().to_string(),
    }
}

fn metric_line(inc: &Incident) -> Option<String> {
    let m = inc.metric_text()?;
    Some(match inc.threshold_text() {
        Some(t) => format!("{m} (threshold {t})"),
        None => m,
    })
}

/// Only http(s) links become buttons or links (config load already refuses others).
fn runbook(check: Option<&CheckInfo>) -> Option<&str> {
    check
        .and_then(|c| c.runbook.as_deref())
        .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
}

/// The incident's facts as (label, value) pairs, in the order every channel shows them.
fn facts(inc: &Incident, check: Option<&CheckInfo>) -> Vec<(&'static str, String)> {
    let mut f = vec![
        (
            "Severity",
            format!("{} ({})", inc.severity, inc.category.as_str()),
        ),
        ("State", state_line(inc)),
        ("Check", inc.check_id.0.clone()),
    ];
    if !inc.key.is_empty() {
        f.push(("Key", inc.key.to_string()));
    }
    if let Some(m) = metric_line(inc) {
        f.push(("Metric", m));
    }
    if let Some(c) = check.filter(|c| !c.connection.is_empty()) {
        f.push(("Connection", c.connection.clone()));
    }
    f
}

fn slack_section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(&slack_escape(text), SLACK_SECTION_MAX) } })
}

/// Keeps a Slack message within its limits: text ≤ 40,000 characters, ≤ 50 blocks.
pub fn slack_fit(text: &str, mut blocks: Vec<Value>) -> Value {
    if blocks.len() > SLACK_BLOCKS_MAX {
        blocks.truncate(SLACK_BLOCKS_MAX - 1);
        blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": "… (cut to Slack's 50 blocks)" }] }));
    }
    json!({ "text": truncate(text, SLACK_TEXT_MAX), "blocks": blocks })
}

/// The root message: the incident as it stands (state, severity, check, key, metric vs
/// threshold, runbook), edited in place as the incident changes.
fn slack_root(inc: &Incident, check: Option<&CheckInfo>, text: &ChatText) -> Value {
    let header = truncate(
        &format!("{} {} {}", state_mark(inc), inc.severity, inc.title),
        SLACK_HEADER_MAX,
    );
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } }),
    ];
    let fields: Vec<Value> = facts(inc, check)
        .into_iter()
        .map(|(label, value)| {
            json!({ "type": "mrkdwn", "text": truncate(&format!("*{label}*\n{}", slack_escape(&value)), SLACK_FIELD_MAX) })
        })
        .collect();
    blocks.push(json!({ "type": "section", "fields": fields }));
    blocks.push(slack_section(&text.root));
    let mut context = vec![format!("Incident #{}", inc.id)];
    if let Some(r) = runbook(check) {
        context.push(format!("<{r}|Runbook>"));
    }
    blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": context.join(" · ") }] }));
    let fallback = format!("{} {}\n{}", state_mark(inc), inc.title, text.root);
    slack_fit(&slack_escape(&fallback), blocks)
}

/// A Slack message: `root` (the thread's first message, kept up to date) and `reply` (this
/// event, posted in the thread; the whole message for an incoming webhook).
pub fn slack(inc: &Incident, check: Option<&CheckInfo>, text: &ChatText, target: &str) -> Value {
    let reply = slack_fit(
        &slack_escape(&text.event),
        vec![slack_section(&format!(
            "{} {}",
            state_mark(inc),
            text.event
        ))],
    );
    let root = slack_root(inc, check, text);
    // An incoming webhook has no thread: this event's line over the incident's blocks.
    let mut blocks: Vec<Value> = reply["blocks"].as_array().cloned().unwrap_or_default();
    blocks.extend(root["blocks"].as_array().cloned().unwrap_or_default());
    let single = slack_fit(reply["text"].as_str().unwrap_or_default(), blocks);
    json!({
        "channel": target,
        "root": root,
        "reply": reply,
        "single": single,
    })
}

/// A digest as one Slack message: a line per incident.
pub fn slack_digest(kind: &str, period: &str, list: &[&Incident], target: &str) -> Value {
    let head = format!(
        "dqwatch {kind} digest {period}: {} incident{}",
        list.len(),
        if list.len() == 1 { "" } else { "s" }
    );
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": truncate(&head, SLACK_HEADER_MAX) } }),
    ];
    let mut lines = Vec::new();
    for inc in list {
        let line = format!(
            "{} {} #{} {} — {}",
            state_mark(inc),
            inc.severity,
            inc.id,
            inc.title,
            state_line(inc)
        );
        blocks.push(slack_section(&line));
        lines.push(line);
    }
    let fit = slack_fit(
        &slack_escape(&format!("{head}\n{}", lines.join("\n"))),
        blocks,
    );
    json!({ "channel": target, "root": &fit, "reply": &fit, "single": &fit })
}

/// PagerDuty's severity of a dqwatch severity.
pub fn pagerduty_severity(s: Severity) -> &'static str {
    match s {
        Severity::P0 => "critical",
        Severity::P1 => "error",
        Severity::P2 => "warning",
        Severity::P3 => "info",
    }
}

/// The dedup key of an incident's current episode: PagerDuty opens a new incident for a
/// key it resolved, so a reopening (a new `opened_at`) gets a new key. At most 255
/// characters: a longer one is hashed.
pub fn dedup_key(inc: &Incident) -> String {
    let episode = inc.opened_at.unwrap_or(inc.first_seen_at).timestamp();
    let key = format!("dqwatch:{}#{episode}", inc.fingerprint);
    if key.len() <= PAGERDUTY_DEDUP_MAX {
        key
    } else {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("dqwatch:sha256:{hex}")
    }
}

/// The PagerDuty event for an incident event (routing key added by the transport): trigger
/// on opening, reopening and a severity rise, acknowledge, resolve; `None` for the rest.
pub fn pagerduty(
    inc: &Incident,
    event: &Event,
    check: Option<&CheckInfo>,
    text: &ChatText,
) -> Option<Value> {
    let action = match event.kind {
        EventKind::Opened | EventKind::Reopened | EventKind::SeverityRaised => "trigger",
        EventKind::Acknowledged => "acknowledge",
        EventKind::Resolved => "resolve",
        _ => return None,
    };
    let key = dedup_key(inc);
    if action != "trigger" {
        return Some(json!({ "event_action": action, "dedup_key": key }));
    }
    let summary = truncate(
        &text
            .root
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" — "),
        PAGERDUTY_SUMMARY_MAX,
    );
    let mut details = serde_json::Map::new();
    details.insert("incident_id".into(), json!(inc.id));
    for (label, value) in facts(inc, check) {
        details.insert(label.to_lowercase(), json!(truncate(&value, 4000)));
    }
    details.insert(
        "first_seen_at".into(),
        json!(format_time(inc.first_seen_at)),
    );
    let connection = check.map_or("", |c| c.connection.as_str());
    let mut body = json!({
        "event_action": "trigger",
        "dedup_key": key,
        "client": "dqwatch",
        "payload": {
            "summary": if summary.is_empty() { truncate(&inc.title, PAGERDUTY_SUMMARY_MAX) } else { summary },
            "source": truncate(&format!("dqwatch/{}", if connection.is_empty() { "checks" } else { connection }), 255),
            "severity": pagerduty_severity(inc.severity),
            "component": truncate(&inc.check_id.0, 255),
            "group": truncate(connection, 255),
            "class": inc.category.as_str(),
            "custom_details": details,
        },
    });
    if let Some(r) = runbook(check) {
        body["links"] = json!([{ "href": r, "text": "Runbook" }]);
    }
    if body.to_string().len() > PAGERDUTY_BODY_MAX {
        body["payload"]["custom_details"] = json!({ "incident_id": inc.id });
    }
    Some(body)
}

/// A Teams message: an Adaptive Card with the incident's facts and this event.
pub fn teams(inc: &Incident, check: Option<&CheckInfo>, text: &ChatText) -> Value {
    let facts: Vec<Value> = facts(inc, check)
        .into_iter()
        .map(|(title, value)| json!({ "title": title, "value": truncate(&value, 500) }))
        .collect();
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            { "type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
              "text": truncate(&format!("{} {} {}", state_mark(inc), inc.severity, inc.title), 500) },
            { "type": "TextBlock", "wrap": true, "text": truncate(&text.event, TEAMS_TEXT_MAX) },
            { "type": "FactSet", "facts": facts },
            { "type": "TextBlock", "wrap": true, "isSubtle": true, "text": truncate(&text.root, TEAMS_TEXT_MAX) },
        ],
    });
    if let Some(r) = runbook(check) {
        card["actions"] = json!([{ "type": "Action.OpenUrl", "title": "Runbook", "url": r }]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// The signed webhook's body (schema version 1): the event, the incident as it stands and
/// its check, plus the `chat_event` text.
pub fn webhook(
    incident_json: &Value,
    check_json: &Value,
    event: &Event,
    summary: &str,
    text: &ChatText,
) -> Value {
    json!({
        "schema_version": WEBHOOK_SCHEMA_VERSION,
        "type": format!("incident.{}", event.kind.as_str()),
        "event": {
            "id": event.id,
            "kind": event.kind.as_str(),
            "at": format_time(event.at),
            "actor": event.actor,
            "severity": event.severity.as_str(),
            "note": event.note,
            "summary": summary,
        },
        "incident": incident_json,
        "check": check_json,
        "text": text.event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_cuts_on_a_character_boundary() {
        let s = "é".repeat(10);
        let t = truncate(&s, 5);
        assert_eq!(t.chars().count(), 5);
        assert!(t.ends_with('…'));
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn a_huge_slack_message_is_cut_to_its_limits() {
        let blocks: Vec<Value> = (0..80).map(|i| slack_section(&format!("b{i}"))).collect();
        let text = "🔥".repeat(50_000);
        let m = slack_fit(&text, blocks);
        assert_eq!(m["blocks"].as_array().unwrap().len(), SLACK_BLOCKS_MAX);
        assert_eq!(m["text"].as_str().unwrap().chars().count(), SLACK_TEXT_MAX);
    }

    #[test]
    fn dedup_keys_are_per_episode_and_at_most_255() {
        let mut inc = super::super::example_incident();
        let first = dedup_key(&inc);
        assert!(first.starts_with("dqwatch:finance/recon"), "{first}");
        inc.opened_at = inc.opened_at.map(|t| t + chrono::Duration::hours(1));
        assert_ne!(dedup_key(&inc), first);
        inc.fingerprint = "k".repeat(1000);
        let long = dedup_key(&inc);
        assert!(long.len() <= PAGERDUTY_DEDUP_MAX && long.starts_with("dqwatch:sha256:"));
        assert_eq!(long, dedup_key(&inc));
    }

    #[test]
    fn slack_text_from_data_cannot_inject_links_or_mentions() {
        let mut inc = super::super::example_incident();
        inc.title = "<!channel> <https://evil.example|click>".into();
        let text = ChatText {
            root: inc.title.clone(),
            event: "x".into(),
        };
        let m = slack(&inc, None, &text, "#c");
        // mrkdwn texts are escaped; the header is plain_text, which Slack never parses.
        for t in [&m["root"]["text"], &m["root"]["blocks"][2]["text"]["text"]] {
            let s = t.as_str().unwrap();
            assert!(
                !s.contains("<!channel>") && s.contains("&lt;!channel&gt;"),
                "{s}"
            );
        }
        assert_eq!(m["root"]["blocks"][0]["text"]["type"], "plain_text");
    }
}
