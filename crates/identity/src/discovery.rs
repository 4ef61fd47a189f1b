//! OpenID Connect discovery: the provider's metadata document, kept for an
//! hour. It is read from `<issuer>/.well-known/openid-configuration` and
//! must name the configured issuer exactly (OpenID Connect Discovery §4.3),
//! since otherwise a misconfigured or hostile document could point token
//! checks at someone else's keys; or, for services that publish it
//! elsewhere under another issuer (the Bot Framework), from a configured
//! URL, which is then what the issuer is trusted for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::http::{self, FetchError};

/// How long a metadata document is used before it is read again.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// After a failed read, callers wait this long before the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The parts of the metadata this gateway uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    /// Required of a provider people sign in with (see
    /// [`crate::oidc::OidcClient::begin`]); services that only sign tokens
    /// may leave it out.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

#[derive(Debug, Default)]
struct State {
    metadata: Option<(Arc<Metadata>, Instant)>,
    failed_at: Option<(Instant, String)>,
}

/// Lazily fetched, cached provider metadata.
#[derive(Debug)]
pub struct Discovery {
    client: reqwest::Client,
    url: String,
    /// The issuer the document must name; `None` when it is read from a
    /// configured URL and names the issuer itself.
    issuer: Option<String>,
    state: Mutex<State>,
}

impl Discovery {
    /// The metadata of the provider `issuer`, at its well-known address.
    pub fn new(client: reqwest::Client, issuer: String) -> Self {
        let url = format!("{issuer}/.well-known/openid-configuration");
        Self { client, url, issuer: Some(issuer), state: Mutex::new(State::default()) }
    }

    /// The metadata document at `url`, whichever issuer it names.
    pub fn at(client: reqwest::Client, url: String) -> Self {
        Self { client, url, issuer: None, state: Mutex::new(State::default()) }
    }

    /// The metadata, fetched if not known or old. An old document is kept
    /// if the provider cannot be reached.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, FetchError> {
        let mut state = self.state.lock().await;
        if let Some((metadata, at)) = &state.metadata {
            if at.elapsed() < MAX_AGE {
                return Ok(metadata.clone());
            }
        }
        if let Some((at, error)) = &state.failed_at {
            if at.elapsed() < RETRY_AFTER {
                return match &state.metadata {
                    Some((metadata, _)) => Ok(metadata.clone()),
                    None => Err(FetchError::Unreachable { url: self.url(), reason: error.clone() }),
                };
            }
        }
        match self.fetch().await {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                state.metadata = Some((metadata.clone(), Instant::now()));
                state.failed_at = None;
                Ok(metadata)
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "identity provider discovery failed");
                state.failed_at = Some((Instant::now(), e.to_string()));
                match &state.metadata {
                    Some((metadata, _)) => Ok(metadata.clone()),
                    None => Err(e),
                }
            }
        }
    }

    /// The last failure, if the last attempt failed (for health pages).
    pub async fn last_error(&self) -> Option<String> {
        self.state.lock().await.failed_at.as_ref().map(|(_, e)| e.clone())
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    async fn fetch(&self) -> Result<Metadata, FetchError> {
        let url = self.url();
        let doc = http::get_json(&self.client, &url).await?;
        let metadata: Metadata =
            serde_json::from_value(doc).map_err(|e| FetchError::Invalid { url: url.clone(), reason: e.to_string() })?;
        if let Some(issuer) = self.issuer.as_deref().filter(|i| metadata.issuer.trim_end_matches('/') != *i) {
            return Err(FetchError::Invalid {
                url,
                reason: format!("it names issuer `{}`, not `{issuer}`", metadata.issuer),
            });
        }
        Ok(metadata)
    }
}
