//! Mail transports: SMTP through lettre (STARTTLS, TLS or none) and a folder of `.eml` files
//! named by outbox id. Sends one rendered [`Mail`]; retry policy lives with the outbox.

use crate::config::{self, Tls, Transport};
use crate::model::Mail;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as SmtpTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

/// Header naming the incident on every mail.
pub const INCIDENT_HEADER: &str = "X-Dqwatch-Incident";

/// A failed send: permanent failures are not retried.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    /// True for a refusal that retrying cannot fix (SMTP 5xx, an invalid address).
    pub permanent: bool,
    /// What went wrong, without secrets.
    pub message: String,
}

impl MailError {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            message: message.into(),
        }
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
                })
            }
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
                    permanent: false,
                    message: format!("cannot write to {}: {e}", dir.display()),
                })
            }
            Mailer::Smtp {
                transport,
                from,
                relay,
            } => {
                let message = build(from, mail, incident_id)?;
                transport
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|e| MailError {
                        permanent: e.is_permanent(),
                        message: format!("SMTP {relay}: {}", crate::diag::error_chain(&e)),
                    })
            }
        }
    }
}

/// Builds the MIME message: both parts, threading headers and the incident header.
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
