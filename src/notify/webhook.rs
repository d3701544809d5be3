//! A generic JSON webhook signed per Standard Webhooks: `webhook-id` (the message's stable
//! id, the same on every retry, so receivers deduplicate), `webhook-timestamp` (seconds)
//! and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the
//! base64 part of the `whsec_…` secret.

use super::Failure;
use super::channel::{ChannelError, Outlet};
use crate::model::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The `webhook-signature` of `body`: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body`. `None` when the secret is not `whsec_<base64>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

pub(super) async fn send(
    outlet: &Outlet,
    url: &Secret,
    secret: &Secret,
    message_id: &str,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<(), ChannelError> {
    let body = payload.to_string();
    let timestamp = now.timestamp();
    let Some(signature) = sign(secret.expose(), message_id, timestamp, &body) else {
        return Err(ChannelError::new(
            Failure::Transport,
            "the webhook secret is not whsec_<base64>",
        ));
    };
    outlet.pace().await;
    let a = outlet
        .post(
            url.expose(),
            &[
                ("webhook-id", message_id.to_string()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ],
            body,
        )
        .await?;
    match a.status {
        200..=299 => Ok(()),
        429 => Err(a.rate_limited("the webhook receiver")),
        401 | 403 | 404 | 410 => Err(ChannelError::new(
            Failure::Transport,
            format!(
                "the webhook receiver answered {}: {}",
                a.status,
                a.excerpt()
            ),
        )),
        408 => Err(ChannelError::new(
            Failure::Transient,
            "the webhook receiver timed out (408)",
        )),
        s if s >= 500 => Err(ChannelError::new(
            Failure::Transient,
            format!("the webhook receiver answered {s}: {}", a.excerpt()),
        )),
        s => Err(ChannelError::new(
            Failure::Permanent,
            format!(
                "the webhook receiver refused the message ({s}): {}",
                a.excerpt()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks spec's own example: secret, id, timestamp and body give this
    // signature (from the spec's README).
    #[test]
    fn signs_as_the_spec_s_example() {
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("nope", "i", 1, "b"), None);
    }
}
