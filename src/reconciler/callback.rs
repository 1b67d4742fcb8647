//! Sends one callback attempt: reads the token at send time, resolves the
//! host, checks every address with the SSRF guard, and connects only to the
//! checked addresses (reqwest's resolver is pinned to them, so there is no
//! second resolution). Redirects are not followed; proxies are not used.
//! The token is never logged, nor written anywhere, and it is read only
//! from a Secret labelled `cellbytes.io/callback-token: "true"` by its owner.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use sha2::Sha256;

use crate::merge::{self, Attempt, Delivery, Guard, Token};

/// The header of the body's HMAC-SHA256 signature.
pub const SIGNATURE_HEADER: &str = "X-Signature-256";
/// The header that is the same on every attempt of one run's callback.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// How the operator sends callbacks (flags `--callback-*`).
#[derive(Clone, Debug, Default)]
pub struct CallbackOptions {
    pub guard: Guard,
    /// A file holding the HMAC key (a mounted Secret); no signature without.
    pub signing_key_file: Option<PathBuf>,
}

/// The callback options could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CallbackSetupError {
    #[error("cannot read the callback signing key {path}: {source}")]
    SigningKey { path: PathBuf, source: std::io::Error },
    #[error("the callback signing key {0} is empty")]
    EmptySigningKey(PathBuf),
}

/// Makes callback attempts; one per controller.
pub struct Sender {
    guard: Guard,
    signing_key: Option<Vec<u8>>,
    timeout: Duration,
}

impl Sender {
    pub fn new(options: &CallbackOptions, timeout: Duration) -> Result<Self, CallbackSetupError> {
        let signing_key = match &options.signing_key_file {
            Some(path) => {
                let key = std::fs::read(path)
                    .map_err(|source| CallbackSetupError::SigningKey { path: path.clone(), source })?;
                if key.is_empty() {
                    return Err(CallbackSetupError::EmptySigningKey(path.clone()));
                }
                Some(key)
            }
            None => None,
        };
        Ok(Self { guard: options.guard.clone(), signing_key, timeout })
    }

    /// One attempt; never an error: every outcome is an [`Attempt`]. The
    /// whole attempt (name resolution, the Secret read and the request) ends
    /// within the timeout, so an attempt in flight at shutdown does too.
    pub async fn send(&self, delivery: &Delivery, secrets: &Api<Secret>) -> Attempt {
        tokio::time::timeout(self.timeout, self.send_unbounded(delivery, secrets)).await.unwrap_or(Attempt::TimedOut)
    }

    async fn send_unbounded(&self, delivery: &Delivery, secrets: &Api<Secret>) -> Attempt {
        let target = match self.guard.target(&delivery.url) {
            Ok(target) => target,
            Err(refused) => return Attempt::Refused(refused.0),
        };
        let literal = target.host.parse::<IpAddr>().ok();
        let addresses: Vec<IpAddr> = match literal {
            Some(address) => vec![address],
            None => match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
                Ok(found) => found.map(|a| a.ip()).collect(),
                Err(error) => {
                    return Attempt::NetworkError(format!("cannot resolve {:?}: {error}", target.host));
                }
            },
        };
        if addresses.is_empty() {
            return Attempt::NetworkError(format!("{:?} resolves to no address", target.host));
        }
        for address in &addresses {
            if let Err(refused) = self.guard.check(&target, *address) {
                return Attempt::Refused(refused.0);
            }
        }
        let token = match read_token(&delivery.token, secrets).await {
            Ok(token) => token,
            Err(attempt) => return attempt,
        };
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .use_rustls_tls();
        if literal.is_none() {
            let pinned: Vec<SocketAddr> = addresses.iter().map(|a| SocketAddr::new(*a, target.port)).collect();
            builder = builder.resolve_to_addrs(&target.host, &pinned);
        }
        let client = match builder.build() {
            Ok(client) => client,
            Err(error) => return Attempt::NetworkError(format!("cannot build the HTTP client: {error}")),
        };
        let mut request = client
            .post(&delivery.url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(IDEMPOTENCY_HEADER, &delivery.idempotency_key)
            .body(delivery.body.clone());
        if let Some(key) = &self.signing_key {
            request = request.header(SIGNATURE_HEADER, signature(key, delivery.body.as_bytes()));
        }
        if let Some(token) = token {
            match HeaderValue::from_str(&format!("Bearer {token}")) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    request = request.header(AUTHORIZATION, value);
                }
                Err(_) => {
                    return Attempt::TokenUnavailable(
                        "the callback token holds characters a header cannot carry".to_owned(),
                    );
                }
            }
        }
        match request.send().await {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                Attempt::Answered { code: response.status().as_u16(), retry_after }
            }
            Err(error) if error.is_timeout() => Attempt::TimedOut,
            Err(error) => Attempt::NetworkError(describe(&error)),
        }
    }
}

/// The token to send, read now; a missing or unreadable one is the attempt's outcome.
async fn read_token(token: &Token, secrets: &Api<Secret>) -> Result<Option<String>, Attempt> {
    let (name, key) = match token {
        Token::None => return Ok(None),
        Token::Plain(token) => return Ok(Some(token.clone())),
        Token::Secret { name, key } => (name, key),
    };
    match secrets.get_opt(name).await {
        Ok(secret) => merge::token_from_secret(secret, name, key).map(Some),
        Err(kube::Error::Api(answer)) if answer.code == 403 => Err(Attempt::TokenForbidden(format!(
            "the operator may not read Secret {name:?}: turn on the chart value callbacks.secretTokens"
        ))),
        Err(error) => Err(Attempt::TokenUnavailable(format!("cannot read Secret {name:?}: {error}"))),
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// An error and its causes, without the URL (already in the message).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() { "cannot connect".to_owned() } else { "request failed".to_owned() };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
