//! Transports: the edge where rendered messages leave dqwatch. Today mail, over SMTP (lettre)
//! or as `.eml` files; retry policy lives with the outbox in `engine::deliver`.

mod mail;

pub use mail::{Failure, INCIDENT_HEADER, MailError, Mailer, build};
