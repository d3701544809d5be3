//! What the HTTP warehouses share: a rustls client, retries with backoff on transient
//! answers (429, 5xx, connection failures; `Retry-After` honoured), RS256 JWTs signed with
//! ring, and request ids.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::RsaKeyPair;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use std::time::{Duration, Instant};

/// Attempts of one request at most (the first and four retries).
pub(super) const ATTEMPTS: u32 = 5;
/// The first retry's wait; it doubles on each retry, up to [`BACKOFF_MAX`].
const BACKOFF: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// A client for one connection.
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("dqwatch/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// Why a request got no usable answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// No answer at all (connection refused, reset, TLS), after the retries.
    Transport(String),
    /// An HTTP error status with the body's text, after the retries for transient ones.
    Status(u16, String),
    /// The deadline passed while waiting.
    Deadline,
}

impl Failure {
    /// A short, secret-free description.
    pub(super) fn describe(&self) -> String {
        match self {
            Failure::Transport(m) => m.clone(),
            Failure::Status(code, body) => format!("HTTP {code}: {}", excerpt(body)),
            Failure::Deadline => "no answer before the deadline".into(),
        }
    }
}

/// The first 300 characters of a response body, on one line.
pub(super) fn excerpt(body: &str) -> String {
    let one: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    one.chars().take(300).collect()
}

/// Sends the request `make` builds, again on 429, 5xx and transport failures (at most
/// [`ATTEMPTS`] times, backing off exponentially or as `Retry-After` says, never past
/// `deadline`), and returns the first other answer's status and body.
pub(super) async fn send(
    make: impl Fn() -> reqwest::RequestBuilder,
    deadline: Instant,
) -> Result<(u16, String), Failure> {
    let mut wait = BACKOFF;
    let mut last = Failure::Deadline;
    for attempt in 1..=ATTEMPTS {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(last);
        }
        let retry_after = match tokio::time::timeout(left, make().send()).await {
            Err(_) => return Err(Failure::Deadline),
            Ok(Err(e)) => {
                last = Failure::Transport(transport_message(e));
                None
            }
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body = match tokio::time::timeout(left, resp.text()).await {
                    Ok(Ok(b)) => b,
                    Ok(Err(e)) => {
                        last = Failure::Transport(transport_message(e));
                        continue;
                    }
                    Err(_) => return Err(Failure::Deadline),
                };
                if status != 429 && !(500..600).contains(&status) {
                    return Ok((status, body));
                }
                last = Failure::Status(status, body);
                retry_after
            }
        };
        if attempt == ATTEMPTS {
            break;
        }
        let pause = retry_after.unwrap_or(wait).min(BACKOFF_MAX);
        if Instant::now() + pause >= deadline {
            return Err(last);
        }
        tokio::time::sleep(pause).await;
        wait = (wait * 2).min(BACKOFF_MAX);
    }
    Err(last)
}

/// A transport error's message without the URL (which is no secret, but long).
fn transport_message(e: reqwest::Error) -> String {
    let mut causes = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes = format!("{causes}: {s}");
        source = s.source();
    }
    format!("{}{causes}", e.without_url())
}

/// An RSA private key read from a PEM file (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1
/// `BEGIN RSA PRIVATE KEY`), with the DER of its public key (SubjectPublicKeyInfo).
pub(super) struct RsaKey {
    pair: RsaKeyPair,
    /// The DER SubjectPublicKeyInfo, whose SHA-256 Snowflake names the key by.
    pub spki: Vec<u8>,
}

impl RsaKey {
    /// Reads a PEM key; the error never quotes the key.
    pub(super) fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
            "no unencrypted PEM private key found (encrypted keys are not supported: \
             openssl pkcs8 -topk8 -nocrypt writes one)"
                .to_string()
        })?;
        let pair = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err("the private key is not an RSA key".into()),
        }
        .map_err(|e| format!("the private key is not a usable RSA key: {e}"))?;
        let spki = rustls::crypto::ring::sign::any_supported_type(&der)
            .ok()
            .and_then(|k| k.public_key().map(|p| p.as_ref().to_vec()))
            .ok_or_else(|| "the private key's public key cannot be read".to_string())?;
        Ok(Self { pair, spki })
    }

    /// A compact RS256 JWT of `claims`.
    pub(super) fn jwt(&self, claims: &serde_json::Value) -> Result<String, String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{body}");
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "signing the login token failed".to_string())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// A random UUID (version 4), as Snowflake's request ids are.
pub(super) fn uuid4() -> String {
    let mut b = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Seconds since the Unix epoch, for the `iat`/`exp` of login tokens and Snowflake's
/// `querySubmissionTime`.
#[expect(
    clippy::disallowed_methods,
    reason = "the server checks a token's iat/exp against real time: an injected clock would only get it refused"
)]
pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid4());
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused_without_being_quoted() {
        let err = RsaKey::from_pem(b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-secret").err();
        let err = err.unwrap_or_default();
        assert!(err.contains("no unencrypted PEM private key"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
