//! Transports: the edge where rendered messages leave dqwatch. Mail, over SMTP (lettre) or
//! as `.eml` files; and the channels — Slack, PagerDuty, Teams, signed webhooks — over
//! HTTP (reqwest). Retry policy lives with the outbox in `engine::deliver`.

mod channel;
mod mail;
mod pagerduty;
mod slack;
mod teams;
pub mod webhook;

pub use channel::{ChannelError, Channels, Outlet};
pub use mail::{Failure, INCIDENT_HEADER, MailError, Mailer, build};
