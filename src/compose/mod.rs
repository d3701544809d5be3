//! Incident events → mails: routes pick recipients, a template context is built, and
//! handlebars (strict mode) renders subject, text and HTML. Pure: templates are read once
//! at load, nothing is sent here.

pub mod chat;
mod context;
mod templates;

pub use context::{CheckInfo, Sample};
pub use templates::{TEMPLATE_FILES, TemplateError, Templates};

use crate::config::{Config, Digest, Route};
use crate::incidents::{Event, Incident};
use crate::model::{Mail, Notice};
use std::collections::BTreeMap;

/// Everything compose needs besides the incident: templates, routes, severity texts.
pub struct Composer {
    templates: Templates,
    routes: Vec<Route>,
    impacts: BTreeMap<String, crate::config::Impact>,
    severities: BTreeMap<crate::model::Severity, crate::config::SeverityPolicy>,
    domain: String,
    mail_enabled: bool,
    /// Configured channels: outbox key → where in it (a Slack channel; else the name).
    channels: BTreeMap<String, String>,
}

impl Composer {
    /// Builds a composer from the config and loaded templates.
    pub fn new(config: &Config, templates: Templates) -> Self {
        let from = config
            .mail
            .as_ref()
            .map_or("dqwatch@dqwatch.local", |m| m.from.as_str());
        let domain = from
            .rsplit('@')
            .next()
            .unwrap_or("dqwatch.local")
            .trim_end_matches('>')
            .trim()
            .to_string();
        Composer {
            templates,
            routes: config.routes.clone(),
            impacts: config.impacts.clone(),
            severities: config.severities.clone(),
            domain,
            mail_enabled: config.mail.is_some(),
            channels: config
                .channels
                .iter()
                .map(|(key, c)| {
                    let target = match &c.kind {
                        crate::config::ChannelKind::Slack { channel, .. } => channel.clone(),
                        _ => c.name.clone(),
                    };
                    (key.clone(), target)
                })
                .collect(),
        }
    }

    /// The channels (outbox keys) told about an incident right away: those of the matching
    /// immediate routes, each once, in route order.
    pub fn channels_for(&self, inc: &Incident, check: Option<&CheckInfo>) -> Vec<String> {
        let tags: &[String] = check.map_or(&[], |c| &c.tags);
        let mut out: Vec<String> = Vec::new();
        for r in self
            .routes
            .iter()
            .filter(|r| r.digest == Digest::Immediate && route_matches(r, inc, tags))
        {
            for ch in &r.channels {
                if !out.contains(ch) && self.channels.contains_key(ch) {
                    out.push(ch.clone());
                }
            }
        }
        out
    }

    /// The channel messages of one event (Slack, PagerDuty, Teams, webhook), for every
    /// channel of the matching routes; none for an incident never opened (nobody was told).
    pub fn notices(
        &self,
        inc: &Incident,
        event: &Event,
        check: Option<&CheckInfo>,
        sample: Option<&Sample>,
        last_pass_at: Option<&str>,
    ) -> Result<Vec<Notice>, TemplateError> {
        if inc.opened_at.is_none() {
            return Ok(Vec::new());
        }
        let channels = self.channels_for(inc, check);
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let policy = self.severities.get(&inc.severity);
        let mut out = Vec::new();
        for key in channels {
            let target = self.channels.get(&key).cloned().unwrap_or_default();
            let ctx = context::mail(
                inc,
                event,
                check,
                sample,
                last_pass_at,
                std::slice::from_ref(&target),
                policy,
            );
            let text = chat::ChatText {
                root: self.templates.render_text("chat_root", &ctx)?,
                event: self.templates.render_text("chat_event", &ctx)?,
            };
            let told = event.kind.template().is_some();
            let summary =
                chat::truncate(&format!("{}: {}", inc.title, context::summary(event)), 200);
            let message_id = format!(
                "incident-{}.{}.{}",
                inc.id,
                inc.first_seen_at.timestamp(),
                event.id
            );
            let (payload, message_id) = match crate::model::channel_kind(&key) {
                "slack" | "slack_webhook" if told => {
                    (chat::slack(inc, check, &text, &target), message_id)
                }
                "teams" if told => (chat::teams(inc, check, &text), message_id),
                "pagerduty" => match chat::pagerduty(inc, event, check, &text) {
                    Some(p) => (p, chat::dedup_key(inc)),
                    None => continue,
                },
                "webhook" => (
                    chat::webhook(
                        &context::incident(inc),
                        &context::check(check, inc),
                        event,
                        &context::summary(event),
                        &text,
                    ),
                    message_id,
                ),
                _ => continue,
            };
            out.push(Notice {
                channel: key,
                target,
                summary,
                message_id,
                payload,
            });
        }
        Ok(out)
    }

    /// A digest route's messages to its Slack channels (other kinds take no digest).
    pub fn digest_notices(
        &self,
        route: &Route,
        period: &str,
        incidents: &[Incident],
        tags: &dyn Fn(&str) -> Vec<String>,
    ) -> Vec<Notice> {
        let list: Vec<&Incident> = incidents
            .iter()
            .filter(|i| route_matches(route, i, &tags(&i.check_id.0)))
            .collect();
        if list.is_empty() {
            return Vec::new();
        }
        let kind = if route.digest == Digest::Weekly {
            "weekly"
        } else {
            "daily"
        };
        route
            .channels
            .iter()
            .filter(|k| crate::model::channel_kind(k).starts_with("slack"))
            .filter_map(|key| {
                let target = self.channels.get(key)?.clone();
                Some(Notice {
                    channel: key.clone(),
                    summary: format!("{kind} digest {period}: {} incidents", list.len()),
                    message_id: format!("digest-{kind}-{period}"),
                    payload: chat::slack_digest(kind, period, &list, &target),
                    target,
                })
            })
            .collect()
    }

    /// Who is told about an incident right away: matching immediate routes, the check's
    /// owners, and its impact recipients. Sorted, without duplicates.
    pub fn recipients(&self, inc: &Incident, check: Option<&CheckInfo>) -> Vec<String> {
        let tags: &[String] = check.map_or(&[], |c| &c.tags);
        let mut out: Vec<String> = self
            .routes
            .iter()
            .filter(|r| r.digest == Digest::Immediate && route_matches(r, inc, tags))
            .flat_map(|r| r.email.iter().cloned())
            .collect();
        if let Some(c) = check {
            out.extend(c.owners.iter().cloned());
            for imp in &c.impact {
                if let Some(i) = self.impacts.get(imp) {
                    out.extend(i.email.iter().cloned());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The thread's root `Message-ID` of an incident: stable, and unique across stores
    /// because it includes when the incident was first seen.
    pub fn thread_id(&self, inc: &Incident) -> String {
        format!(
            "<incident-{}.{}@{}>",
            inc.id,
            inc.first_seen_at.timestamp(),
            self.domain
        )
    }

    /// Renders the mail for one event; `None` when the event tells nobody (no `[mail]`, a
    /// pending incident, no recipient, or an event without a template).
    pub fn compose(
        &self,
        inc: &Incident,
        event: &Event,
        check: Option<&CheckInfo>,
        sample: Option<&Sample>,
        last_pass_at: Option<&str>,
    ) -> Result<Option<Mail>, TemplateError> {
        self.compose_to(
            inc,
            event,
            check,
            sample,
            last_pass_at,
            self.recipients(inc, check),
        )
    }

    /// Like [`Composer::compose`], to the given recipients (escalation steps).
    pub fn compose_to(
        &self,
        inc: &Incident,
        event: &Event,
        check: Option<&CheckInfo>,
        sample: Option<&Sample>,
        last_pass_at: Option<&str>,
        to: Vec<String>,
    ) -> Result<Option<Mail>, TemplateError> {
        let Some(name) = event.kind.template() else {
            return Ok(None);
        };
        if !self.mail_enabled || inc.opened_at.is_none() || to.is_empty() {
            return Ok(None);
        }
        let policy = self.severities.get(&inc.severity);
        let ctx = context::mail(inc, event, check, sample, last_pass_at, &to, policy);
        let subject = if name == "status" {
            self.templates
                .subject_of("status", &context::subject(inc))?
        } else {
            self.templates.subject(&context::subject(inc))?
        };
        let first = event.kind == crate::incidents::EventKind::Opened && inc.repeat_count == 0;
        let root = self.thread_id(inc);
        Ok(Some(Mail {
            to,
            subject: if first {
                subject
            } else {
                format!("Re: {subject}")
            },
            text: self.templates.render_text(name, &ctx)?,
            html: self.templates.render_html(name, &ctx)?,
            message_id: if first {
                root.clone()
            } else {
                format!(
                    "<incident-{}.{}.{}@{}>",
                    inc.id,
                    inc.first_seen_at.timestamp(),
                    event.id,
                    self.domain
                )
            },
            in_reply_to: (!first).then_some(root),
        }))
    }

    /// The routes whose mail goes out as a digest, with a stable id each.
    pub fn digest_routes(&self) -> Vec<(String, &Route)> {
        self.routes
            .iter()
            .filter(|r| r.digest != Digest::Immediate)
            .map(|r| {
                let mut h = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(
                    &(
                        &r.email,
                        format!("{:?}{:?}{:?}{:?}", r.severity, r.category, r.tags, r.digest),
                    ),
                    &mut h,
                );
                // Routes told only in channels differ by them (mail-only ids stay as before).
                if !r.channels.is_empty() {
                    std::hash::Hash::hash(&r.channels, &mut h);
                }
                (format!("{:016x}", std::hash::Hasher::finish(&h)), r)
            })
            .collect()
    }

    /// The digest mail of a route for `period`; `None` when no incident matches (no mail).
    pub fn digest(
        &self,
        route: &Route,
        period: &str,
        incidents: &[Incident],
        tags: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<Option<Mail>, TemplateError> {
        let list: Vec<&Incident> = incidents
            .iter()
            .filter(|i| route_matches(route, i, &tags(&i.check_id.0)))
            .collect();
        if list.is_empty() || !self.mail_enabled || route.email.is_empty() {
            return Ok(None);
        }
        let kind = if route.digest == Digest::Weekly {
            "weekly"
        } else {
            "daily"
        };
        let ctx = context::digest(kind, period, &list);
        Ok(Some(Mail {
            to: route.email.clone(),
            subject: self.templates.subject_of("digest", &ctx)?,
            text: self.templates.render_text("digest", &ctx)?,
            html: self.templates.render_html("digest", &ctx)?,
            message_id: format!(
                "<digest-{kind}-{period}.{}@{}>",
                route.email.join("+").replace(['@', '<', '>', ' '], "."),
                self.domain
            ),
            in_reply_to: None,
        }))
    }

    /// Renders the postmortem (Markdown) of an incident at `now` (an open incident's duration
    /// runs to now).
    pub fn postmortem(
        &self,
        inc: &Incident,
        events: &[Event],
        check: Option<&CheckInfo>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, TemplateError> {
        self.templates
            .render_text("postmortem", &context::postmortem(inc, events, check, now))
    }

    /// Renders every template against a sample incident, so that `validate` catches a
    /// missing variable or a syntax error before an incident does.
    pub fn self_test(&self) -> Result<(), TemplateError> {
        let (inc, mut events, check, sample) = context::example();
        events.extend(context::example_responses());
        for ev in &events {
            let Some(name) = ev.kind.template() else {
                continue;
            };
            let ctx = context::mail(
                &inc,
                ev,
                Some(&check),
                Some(&sample),
                Some("2026-01-01T00:00:00.000Z"),
                &["a@example.com".into()],
                self.severities.get(&inc.severity),
            );
            self.templates.render_text(name, &ctx)?;
            self.templates.render_html(name, &ctx)?;
            self.templates.render_text("chat_root", &ctx)?;
            self.templates.render_text("chat_event", &ctx)?;
        }
        self.templates.subject(&context::subject(&inc))?;
        self.templates
            .subject_of("status", &context::subject(&inc))?;
        let ctx = context::digest("daily", "2026-01-02", &[&inc]);
        self.templates.subject_of("digest", &ctx)?;
        self.templates.render_text("digest", &ctx)?;
        self.templates.render_html("digest", &ctx)?;
        self.postmortem(&inc, &events, Some(&check), inc.last_seen_at)?;
        Ok(())
    }
}

/// The example incident templates are tested with (also handy in tests elsewhere).
pub fn example_incident() -> Incident {
    context::example().0
}

fn route_matches(r: &Route, inc: &Incident, tags: &[String]) -> bool {
    (r.severity.is_empty() || r.severity.contains(&inc.severity))
        && (r.category.is_empty() || r.category.contains(&inc.category))
        && (r.tags.is_empty() || r.tags.iter().any(|t| tags.contains(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A composer with the built-in templates and one route to on-call.
    fn composer() -> (tempfile::TempDir, Composer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dqwatch.toml");
        std::fs::write(
            &path,
            "[connections.warehouse]\nurl = \"sqlite://w.db\"\n\
             [mail]\nfrom = \"dqwatch <dq@example.com>\"\ndir = \"outbox\"\n\
             [[routes]]\nemail = [\"oncall@example.com\"]\n\
             [severity.P0]\ndescription = \"Critical\"\nrespond_within = \"15m\"\n",
        )
        .unwrap();
        let cfg = crate::config::load(&path, &|_| None).unwrap();
        let templates = Templates::load(&dir.path().join("templates")).unwrap();
        (dir, Composer::new(&cfg, templates))
    }

    fn show(mail: &Mail) -> String {
        format!(
            "To: {}\nSubject: {}\nMessage-ID: {}\nIn-Reply-To: {}\n\n{}\n----- html -----\n{}",
            mail.to.join(", "),
            mail.subject,
            mail.message_id,
            mail.in_reply_to.as_deref().unwrap_or("-"),
            mail.text,
            mail.html
        )
    }

    /// A composer whose routes tell Slack, PagerDuty and a webhook, and a daily Slack digest.
    fn chat_composer() -> (tempfile::TempDir, Composer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dqwatch.toml");
        std::fs::write(
            &path,
            "[connections.warehouse]\nurl = \"sqlite://w.db\"\n\
             [channels.inc]\ntype = \"slack\"\ntoken = \"xoxb-t\"\nchannel = \"#inc\"\n\
             [channels.pd]\ntype = \"pagerduty\"\nrouting_key = \"0123456789abcdef0123456789abcdef\"\n\
             [channels.hook]\ntype = \"webhook\"\nurl = \"https://h.example.com\"\nsecret = \"whsec_c2VjcmV0\"\n\
             [[routes]]\nslack = [\"inc\"]\npagerduty = \"pd\"\nwebhook = \"hook\"\n\
             [[routes]]\nslack = [\"inc\"]\ndigest = \"daily\"\n",
        )
        .unwrap();
        let cfg = crate::config::load(&path, &|_| None).unwrap();
        let templates = Templates::load(&dir.path().join("templates")).unwrap();
        (dir, Composer::new(&cfg, templates))
    }

    #[test]
    fn each_event_tells_the_channels_that_take_it() {
        let (_dir, c) = chat_composer();
        let (inc, events, check, sample) = context::example();
        let kinds = |ev: &Event| -> Vec<String> {
            c.notices(&inc, ev, Some(&check), Some(&sample), None)
                .unwrap()
                .into_iter()
                .map(|n| n.channel)
                .collect()
        };
        let by_kind =
            |k: crate::incidents::EventKind| kinds(events.iter().find(|e| e.kind == k).unwrap());
        use crate::incidents::EventKind as K;
        assert_eq!(
            by_kind(K::Opened),
            ["slack:inc", "pagerduty:pd", "webhook:hook"]
        );
        assert_eq!(
            by_kind(K::Acknowledged),
            ["slack:inc", "pagerduty:pd", "webhook:hook"]
        );
        // Escalation is no PagerDuty event; a note tells only the webhook.
        assert_eq!(by_kind(K::Escalated), ["slack:inc", "webhook:hook"]);
        assert_eq!(by_kind(K::Note), ["webhook:hook"]);
        // An incident never opened tells no channel.
        let pending = Incident {
            opened_at: None,
            ..inc.clone()
        };
        assert!(
            c.notices(&pending, &events[0], None, None, None)
                .unwrap()
                .is_empty()
        );
        // The digest route goes to Slack, as one message.
        let routes = c.digest_routes();
        assert_eq!(routes.len(), 1);
        let d = c.digest_notices(
            routes[0].1,
            "2026-01-02",
            std::slice::from_ref(&inc),
            &|_| vec![],
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].channel, "slack:inc");
        assert!(
            d[0].payload["root"]["text"]
                .as_str()
                .unwrap()
                .contains("daily digest")
        );
    }

    #[test]
    fn an_escalation_after_an_ack_does_not_say_nobody_acknowledged() {
        // See: issues/10 item 7
        let (_dir, c) = composer();
        let (mut inc, events, check, _) = context::example();
        inc.state = crate::model::IncidentState::Acknowledged;
        inc.resolved_at = None;
        let escalated = events
            .iter()
            .find(|e| e.kind == crate::incidents::EventKind::Escalated)
            .unwrap();
        let mail = c
            .compose(&inc, escalated, Some(&check), None, None)
            .unwrap()
            .unwrap();
        assert!(
            !mail.text.contains("Nobody has acknowledged"),
            "{}",
            mail.text
        );
        assert!(mail.text.contains("Acknowledged by alice"), "{}", mail.text);
        inc.state = crate::model::IncidentState::Open;
        inc.acknowledged_at = None;
        inc.acknowledged_by = None;
        let mail = c
            .compose(&inc, escalated, Some(&check), None, None)
            .unwrap()
            .unwrap();
        assert!(
            mail.text.contains("Nobody has acknowledged"),
            "{}",
            mail.text
        );
    }

    // What users read: each template rendered for the fixed example incident, reviewed as a
    // snapshot (`cargo insta review`) when a template or its context changes.
    #[test]
    fn every_mail_reads_as_reviewed() {
        let (_dir, c) = composer();
        let (inc, events, check, sample) = context::example();
        for ev in &events {
            let mail = c
                .compose(
                    &inc,
                    ev,
                    Some(&check),
                    Some(&sample),
                    Some("2026-01-01T00:00:00.000Z"),
                )
                .unwrap();
            let name = format!("mail_{}", ev.kind.as_str());
            match mail {
                Some(m) => insta::assert_snapshot!(name, show(&m)),
                None => insta::assert_snapshot!(name, "(no mail)"),
            }
        }
        // Responders' own events (issue 10): a status update with every field, an
        // assignment, a snooze, a mute, a hold's end, a resolution with its reason.
        for ev in &context::example_responses() {
            let mail = c
                .compose(&inc, ev, Some(&check), Some(&sample), None)
                .unwrap();
            let name = format!("response_{}", ev.kind.as_str());
            match mail {
                Some(m) => insta::assert_snapshot!(name, show(&m)),
                None => insta::assert_snapshot!(name, "(no mail)"),
            }
        }
        let route = &c.routes[0].clone();
        let digest = c
            .digest(
                &Route {
                    digest: Digest::Daily,
                    ..route.clone()
                },
                "2026-01-02",
                std::slice::from_ref(&inc),
                &|_| vec![],
            )
            .unwrap()
            .unwrap();
        insta::assert_snapshot!("mail_digest", show(&digest));

        // See: issues/9 — a duration metric reads as the terminal prints it (`1d 2h`), with
        // the threshold's level; before, the mail said `93600 (threshold > 24h)`.
        let late = Incident {
            metric: Some(93_600.0),
            unit: crate::model::Unit::Seconds,
            threshold: Some("> 24h".into()),
            threshold_severity: Some(crate::model::Severity::P2),
            detail: None,
            ..inc.clone()
        };
        let opened = c
            .compose(&late, &events[0], Some(&check), Some(&sample), None)
            .unwrap()
            .unwrap();
        insta::assert_snapshot!("mail_opened_duration", show(&opened));
        insta::assert_snapshot!(
            "postmortem",
            c.postmortem(&inc, &events, Some(&check), inc.last_seen_at)
                .unwrap()
        );
    }
}
