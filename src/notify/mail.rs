//! Mail: SMTP through lettre (STARTTLS, TLS or none) and a folder of `.eml` files
//! named by outbox id. Sends one rendered [`Mail`]; retry policy lives with the outbox.

use crate::config::{self, Tls, Transport};
use crate::model::Mail;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as SmtpTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

/// The longest a `.eml` file write may take before the send is called failed.
const FILE_LIMIT: Duration = Duration::from_secs(10);

/// RFC 3834's header marking a mail as sent by a program (value `auto-generated`).
pub const AUTO_SUBMITTED_HEADER: &str = "Auto-Submitted";

/// Header naming the incident on every mail.
pub const INCIDENT_HEADER: &str = "X-Dqwatch-Incident";

/// Whose problem a failed send is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The transport's, not the mail's: the relay is unreachable, slow, refuses our TLS or
    /// credentials, or the folder cannot be written. No mail is to blame, so no mail's
    /// attempts are used up; delivery stops until the transport works again.
    Transport,
    /// This mail's, for now (an SMTP 4xx reply to it): retried with backoff.
    Transient,
    /// This mail's, for good (an SMTP 5xx reply to it, an invalid address): a dead letter.
    Permanent,
}

/// A failed send.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    /// Whose problem it is, which decides what happens to the mail.
    pub failure: Failure,
    /// What went wrong, without secrets.
    pub message: String,
}

impl MailError {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            failure: Failure::Permanent,
            message: message.into(),
        }
    }
}

/// SMTP replies about the session rather than a mail: service not available (421),
/// temporary authentication failure (454), STARTTLS or authentication required (530),
/// mechanism too weak (534), bad credentials (535), encryption required (538).
const SESSION_CODES: [u16; 6] = [421, 454, 530, 534, 535, 538];

/// Classifies a lettre error. lettre calls only reply codes transient (4xx) or permanent
/// (5xx); a refused connection, a timeout or a TLS failure is neither, and a rejected login
/// is a 5xx that no mail can fix, so both are the transport's.
fn classify(e: &lettre::transport::smtp::Error) -> Failure {
    match e.status().map(u16::from) {
        Some(code) if SESSION_CODES.contains(&code) => Failure::Transport,
        Some(_) if e.is_permanent() => Failure::Permanent,
        Some(_) if e.is_transient() => Failure::Transient,
        _ => Failure::Transport,
    }
}

/// A configured transport.
pub enum Mailer {
    /// `.eml` files in a folder.
    File {
        /// The folder.
        dir: PathBuf,
        /// The From header.
        from: String,
    },
    /// An SMTP relay.
    Smtp {
        /// The lettre transport.
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The From header.
        from: String,
        /// Relay address, for messages.
        relay: String,
        /// The longest one send may take (see [`Mailer::send_limit`]).
        limit: Duration,
    },
}

impl Mailer {
    /// Builds the transport of `[mail]`.
    pub fn new(mail: &config::Mail) -> Result<Mailer, MailError> {
        match &mail.transport {
            Transport::File { dir } => Ok(Mailer::File {
                dir: dir.clone(),
                from: mail.from.clone(),
            }),
            Transport::Smtp {
                host,
                port,
                tls,
                username,
                password,
                timeout,
                ca_file,
            } => {
                let params = || -> Result<TlsParameters, MailError> {
                    let mut b = TlsParameters::builder(host.clone());
                    if let Some(path) = ca_file {
                        let pem = std::fs::read(path).map_err(|e| {
                            MailError::permanent(format!(
                                "cannot read ca_file {}: {e}",
                                path.display()
                            ))
                        })?;
                        let cert = Certificate::from_pem(&pem).map_err(|e| {
                            MailError::permanent(format!("ca_file {}: {e}", path.display()))
                        })?;
                        b = b.add_root_certificate(cert);
                    }
                    b.build()
                        .map_err(|e| MailError::permanent(format!("TLS setup for {host}: {e}")))
                };
                let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
                let builder = match tls {
                    Tls::Starttls => plain.tls(SmtpTls::Required(params()?)),
                    Tls::Tls => plain.tls(SmtpTls::Wrapper(params()?)),
                    Tls::None => plain,
                };
                let mut builder = builder.port(*port).timeout(Some(*timeout));
                if let Some(user) = username {
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        password.expose().to_string(),
                    ));
                }
                Ok(Mailer::Smtp {
                    transport: builder.build(),
                    from: mail.from.clone(),
                    relay: format!("{host}:{port}"),
                    // lettre's timeout bounds each command; a send is several of them.
                    limit: timeout.saturating_mul(2),
                })
            }
        }
    }

    /// The longest one send may take: a send still going then is abandoned as a transport
    /// failure. The outbox leases a mail for longer than this, so no other process takes a
    /// mail while its send can still succeed.
    pub fn send_limit(&self) -> Duration {
        match self {
            Mailer::File { .. } => FILE_LIMIT,
            Mailer::Smtp { limit, .. } => *limit,
        }
    }

    /// Sends one outbox mail. The file transport writes `<outbox_id>.eml` through a
    /// temporary file and a rename, so a retry replaces rather than duplicates it.
    pub async fn send(
        &self,
        outbox_id: i64,
        incident_id: Option<i64>,
        mail: &Mail,
    ) -> Result<(), MailError> {
        match self {
            Mailer::File { dir, from } => {
                let message = build(from, mail, incident_id)?;
                let write = || -> std::io::Result<()> {
                    std::fs::create_dir_all(dir)?;
                    let tmp = dir.join(format!(".{outbox_id}.eml.tmp"));
                    std::fs::write(&tmp, message.formatted())?;
                    std::fs::rename(&tmp, dir.join(format!("{outbox_id}.eml")))
                };
                write().map_err(|e| MailError {
                    failure: Failure::Transport,
                    message: format!("cannot write to {}: {e}", dir.display()),
                })
            }
            Mailer::Smtp {
                transport,
                from,
                relay,
                limit,
            } => {
                let message = build(from, mail, incident_id)?;
                match tokio::time::timeout(*limit, transport.send(message)).await {
                    Ok(sent) => sent.map(drop).map_err(|e| MailError {
                        failure: classify(&e),
                        message: format!("SMTP {relay}: {}", crate::diag::error_chain(&e)),
                    }),
                    Err(_) => Err(MailError {
                        failure: Failure::Transport,
                        message: format!("SMTP {relay}: no answer within {}s", limit.as_secs_f64()),
                    }),
                }
            }
        }
    }
}

/// Builds the MIME message: both parts, threading headers, `Auto-Submitted` and the incident
/// header.
pub fn build(from: &str, mail: &Mail, incident_id: Option<i64>) -> Result<Message, MailError> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| MailError::permanent(format!("invalid From address \"{from}\": {e}")))?;
    let mut b = Message::builder()
        .from(from)
        .subject(mail.subject.clone())
        .message_id(Some(mail.message_id.clone()));
    for to in &mail.to {
        let mbox: Mailbox = to
            .parse()
            .map_err(|e| MailError::permanent(format!("invalid recipient \"{to}\": {e}")))?;
        b = b.to(mbox);
    }
    if let Some(root) = &mail.in_reply_to {
        b = b.in_reply_to(root.clone()).references(root.clone());
    }
    // RFC 3834: auto-responders (out-of-office, vacation) must not answer this mail, so that
    // on-call lists do not fill with replies to every ticket.
    b = b.raw_header(HeaderValue::new(
        HeaderName::new_from_ascii_str(AUTO_SUBMITTED_HEADER),
        "auto-generated".to_string(),
    ));
    if let Some(id) = incident_id {
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(INCIDENT_HEADER),
            id.to_string(),
        ));
    }
    b.multipart(MultiPart::alternative_plain_html(
        mail.text.clone(),
        mail.html.clone(),
    ))
    .map_err(|e| MailError::permanent(format!("cannot build the message: {e}")))
}
