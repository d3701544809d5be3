//! Microsoft Teams through a Workflows webhook: an Adaptive Card in a `message`. The
//! workflow answers 202 as soon as it accepts the request, whatever it then does with it, so
//! a sent card is not a delivered card (README says so).

use super::Failure;
use super::channel::{ChannelError, Outlet};
use crate::model::Secret;
use serde_json::Value;

pub(super) async fn send(
    outlet: &Outlet,
    url: &Secret,
    payload: &Value,
) -> Result<(), ChannelError> {
    outlet.pace().await;
    let a = outlet.post(url.expose(), &[], payload.to_string()).await?;
    match a.status {
        200..=299 => Ok(()),
        429 => Err(a.rate_limited("Teams")),
        401 | 403 | 404 | 410 => Err(ChannelError::new(
            Failure::Transport,
            format!("the Teams workflow answered {}: {}", a.status, a.excerpt()),
        )),
        408 => Err(ChannelError::new(
            Failure::Transient,
            "the Teams workflow timed out (408)",
        )),
        s if s >= 500 => Err(ChannelError::new(
            Failure::Transient,
            format!("the Teams workflow answered {s}: {}", a.excerpt()),
        )),
        s => Err(ChannelError::new(
            Failure::Permanent,
            format!("the Teams workflow refused the card ({s}): {}", a.excerpt()),
        )),
    }
}
