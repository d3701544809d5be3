//! Slack: the Web API with a bot token (`chat.postMessage` for the thread's root and its
//! replies, `chat.update` to keep the root showing the incident as it stands), or an
//! incoming webhook (one message per event, no thread). Slack answers HTTP 200 with
//! `"ok": false` and an error code for most failures; a 429 carries Retry-After.

use super::Failure;
use super::channel::{Answer, ChannelError, Outlet};
use crate::model::ChatThread;
use crate::model::Secret;
use serde_json::{Value, json};

/// Error codes that are the channel's (its token or app), not a message's: no message is
/// counted, the channel waits.
const CHANNEL_ERRORS: [&str; 9] = [
    "not_authed",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "org_login_required",
    "ekm_access_denied",
];
/// Error codes worth retrying the same message for.
const TRANSIENT_ERRORS: [&str; 4] = [
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// What a Web API method answered, when it succeeded.
struct Posted {
    channel: String,
    ts: String,
}

async fn call(
    outlet: &Outlet,
    token: &Secret,
    api_base: &str,
    method: &str,
    body: &Value,
) -> Result<Result<Posted, String>, ChannelError> {
    let auth = format!("Bearer {}", token.expose());
    let answer = outlet
        .post(
            &format!("{api_base}/{method}"),
            &[("authorization", auth)],
            body.to_string(),
        )
        .await?;
    classify(method, &answer)
}

/// An answer as a post (`Ok(Ok)`), a message-level refusal worth knowing (`Ok(Err(code))`),
/// or a failure.
fn classify(method: &str, a: &Answer) -> Result<Result<Posted, String>, ChannelError> {
    if a.status == 429 {
        return Err(a.rate_limited(&format!("Slack {method}")));
    }
    if a.status >= 500 {
        return Err(ChannelError::new(
            Failure::Transient,
            format!("Slack {method} answered {}: {}", a.status, a.excerpt()),
        ));
    }
    let v: Value = serde_json::from_str(&a.body).map_err(|_| {
        ChannelError::new(
            Failure::Transient,
            format!(
                "Slack {method} answered {} without JSON: {}",
                a.status,
                a.excerpt()
            ),
        )
    })?;
    if v["ok"].as_bool() == Some(true) {
        return Ok(Ok(Posted {
            channel: v["channel"].as_str().unwrap_or_default().to_string(),
            ts: v["ts"].as_str().unwrap_or_default().to_string(),
        }));
    }
    let code = v["error"].as_str().unwrap_or("unknown_error").to_string();
    if code == "ratelimited" || code == "rate_limited" {
        return Err(a.rate_limited(&format!("Slack {method}")));
    }
    if CHANNEL_ERRORS.contains(&code.as_str()) {
        return Err(ChannelError::new(
            Failure::Transport,
            format!("Slack {method} refused the token: {code}"),
        ));
    }
    if TRANSIENT_ERRORS.contains(&code.as_str()) {
        return Err(ChannelError::new(
            Failure::Transient,
            format!("Slack {method} failed: {code}"),
        ));
    }
    Ok(Err(code))
}

fn refused(method: &str, code: &str) -> ChannelError {
    ChannelError::new(
        Failure::Permanent,
        format!("Slack {method} refused the message: {code}"),
    )
}

/// Sends one message: without a thread, posts the root (and gives it back, to be stored);
/// with one, edits the root to the current state, then replies in the thread. The edit
/// comes first because it is idempotent: a retry after a failed reply edits again and
/// replies once.
pub(super) async fn send(
    outlet: &Outlet,
    token: &Secret,
    api_base: &str,
    payload: &Value,
    thread: Option<&ChatThread>,
    threaded: bool,
) -> Result<Option<ChatThread>, ChannelError> {
    let root = &payload["root"];
    let Some(t) = thread else {
        let body = json!({
            "channel": payload["channel"],
            "text": root["text"],
            "blocks": root["blocks"],
            "unfurl_links": false,
        });
        outlet.pace().await;
        return match call(outlet, token, api_base, "chat.postMessage", &body).await? {
            Ok(p) if threaded => Ok(Some(ChatThread {
                chat: p.channel,
                ts: p.ts,
            })),
            Ok(_) => Ok(None),
            Err(code) => Err(refused("chat.postMessage", &code)),
        };
    };
    let update = json!({
        "channel": t.chat,
        "ts": t.ts,
        "text": root["text"],
        "blocks": root["blocks"],
    });
    if let Err(code) = call(outlet, token, api_base, "chat.update", &update).await? {
        // The root was deleted or can no longer be edited: the reply still tells.
        tracing::warn!(channel = %outlet.config.name, error = %code, "Slack chat.update refused; replying anyway.");
    }
    let reply = &payload["reply"];
    let body = json!({
        "channel": t.chat,
        "thread_ts": t.ts,
        "text": reply["text"],
        "blocks": reply["blocks"],
        "unfurl_links": false,
    });
    outlet.pace().await;
    match call(outlet, token, api_base, "chat.postMessage", &body).await? {
        Ok(_) => Ok(None),
        Err(code) => Err(refused("chat.postMessage", &code)),
    }
}

/// An incoming webhook: this event's line over the incident's blocks; no thread.
pub(super) async fn send_webhook(
    outlet: &Outlet,
    url: &Secret,
    payload: &Value,
) -> Result<(), ChannelError> {
    let body = &payload["single"];
    outlet.pace().await;
    let a = outlet.post(url.expose(), &[], body.to_string()).await?;
    match a.status {
        200..=299 => Ok(()),
        429 => Err(a.rate_limited("the Slack webhook")),
        401 | 403 | 404 | 410 => Err(ChannelError::new(
            Failure::Transport,
            format!("the Slack webhook answered {}: {}", a.status, a.excerpt()),
        )),
        s if s >= 500 => Err(ChannelError::new(
            Failure::Transient,
            format!("the Slack webhook answered {s}: {}", a.excerpt()),
        )),
        s => Err(ChannelError::new(
            Failure::Permanent,
            format!(
                "the Slack webhook refused the message ({s}): {}",
                a.excerpt()
            ),
        )),
    }
}
