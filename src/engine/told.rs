//! Where an incident was told, in words: the mail thread's Message-ID, the Slack thread
//! (a permalink when the channel names its `workspace_url`), the PagerDuty dedup key, and
//! how many messages each channel took. For `incidents show` and the page.

use crate::config::{ChannelKind, Config};
use crate::store::Told;

/// One channel's line: (channel, where it was told, the thread or key, the Slack link).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ToldLine {
    /// `mail`, `slack:NAME` …
    pub channel: String,
    /// Recipients, a Slack channel, a service name.
    pub target: String,
    /// `3 sent, 1 pending` and the like.
    pub counts: String,
    /// What to look for: `thread <…@…>`, `dedup key …`, `thread C123/1700000000.000100`.
    pub thread: Option<String>,
    /// The Slack permalink, when it can be built.
    pub link: Option<String>,
}

/// The lines of `told`, with links built from `config`'s channels.
pub fn lines(config: &Config, told: &[Told]) -> Vec<ToldLine> {
    told.iter()
        .map(|t| {
            let mut counts = vec![format!("{} sent", t.sent)];
            if t.pending > 0 {
                counts.push(format!("{} pending", t.pending));
            }
            if t.dead > 0 {
                counts.push(format!("{} dead", t.dead));
            }
            let kind = crate::model::channel_kind(&t.channel);
            let link = match (config.channels.get(&t.channel).map(|c| &c.kind), &t.thread) {
                (
                    Some(ChannelKind::Slack {
                        workspace_url: Some(base),
                        ..
                    }),
                    Some(thread),
                ) => thread
                    .split_once('/')
                    .map(|(chat, ts)| format!("{base}/archives/{chat}/p{}", ts.replace('.', ""))),
                _ => None,
            };
            let thread = t.thread.as_ref().map(|th| match kind {
                "mail" => format!("thread {th}"),
                "pagerduty" => format!("dedup key {th}"),
                _ => format!("thread {th}"),
            });
            ToldLine {
                channel: t.channel.clone(),
                target: t.target.clone(),
                counts: counts.join(", "),
                thread,
                link,
            }
        })
        .collect()
}
