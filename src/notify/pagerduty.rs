//! PagerDuty Events API v2: `POST /v2/enqueue` with the routing key added to the composed
//! event. 202 is accepted; 400 is the event's fault (dead letter, with PagerDuty's error);
//! 429 is the channel's state (wait); 5xx is retried.

use super::Failure;
use super::channel::{ChannelError, Outlet};
use crate::model::Secret;
use serde_json::Value;

pub(super) async fn send(
    outlet: &Outlet,
    routing_key: &Secret,
    api_base: &str,
    payload: &Value,
) -> Result<(), ChannelError> {
    let mut body = payload.clone();
    body["routing_key"] = Value::String(routing_key.expose().to_string());
    let a = outlet
        .post(&format!("{api_base}/v2/enqueue"), &[], body.to_string())
        .await?;
    match a.status {
        200..=299 => Ok(()),
        429 => Err(a.rate_limited("PagerDuty")),
        400 => Err(ChannelError::new(
            Failure::Permanent,
            format!("PagerDuty refused the event (400): {}", a.excerpt()),
        )),
        401 | 403 | 404 => Err(ChannelError::new(
            Failure::Transport,
            format!("PagerDuty answered {}: {}", a.status, a.excerpt()),
        )),
        s if s >= 500 => Err(ChannelError::new(
            Failure::Transient,
            format!("PagerDuty answered {s}: {}", a.excerpt()),
        )),
        s => Err(ChannelError::new(
            Failure::Permanent,
            format!("PagerDuty refused the event ({s}): {}", a.excerpt()),
        )),
    }
}
