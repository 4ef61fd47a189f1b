//! One verifier for the JWTs the gateway takes from outside: an OpenID
//! Connect provider's ID and access tokens, workload-identity tokens, and
//! the Bot Framework's tokens on Teams activities (in the channels crate).
//!
//! Each issuer's keys are found one way — [`crate::discovery`] at the
//! issuer's well-known address or at a configured metadata URL, or a
//! configured JWKS URL — and kept by one cache with one refetch policy
//! ([`crate::jwks`]: an unknown `kid` fetches the set once more, at most
//! once a second whoever asks; the set is refreshed after an hour). What
//! differs between issuers is only their [`Policy`]: the algorithms they
//! may sign with, whether a token must name its key, and the clock skew
//! allowed; every token is checked for signature, issuer, audience, `exp`
//! and `nbf`.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::discovery::{Discovery, Metadata};
use crate::http::FetchError;
use crate::jwks::{Jwks, Key};
use crate::jwt::{self, TokenError, ASYMMETRIC, LEEWAY_SECS};

/// What one issuer's tokens are held to, besides what every token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The signing algorithms accepted; only asymmetric ones ever are.
    pub algorithms: &'static [Algorithm],
    /// Whether a token must name its key (`kid`).
    pub require_kid: bool,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

impl Policy {
    /// OpenID Connect providers and workload issuers: any asymmetric
    /// algorithm, a key named or unambiguous, a minute of skew.
    pub const OPENID: Policy = Policy { algorithms: &ASYMMETRIC, require_kid: false, leeway_secs: LEEWAY_SECS };
}

/// The keys of one issuer, and the checks its tokens go through.
#[derive(Debug)]
pub struct Verifier {
    client: reqwest::Client,
    discovery: Option<Discovery>,
    /// A JWKS URL given in the configuration, used instead of discovery.
    jwks_url: Option<String>,
    /// Set up on first use, so that nothing is fetched before a token
    /// needs it.
    jwks: OnceCell<Arc<Jwks>>,
    policy: Policy,
}

impl Verifier {
    /// The issuer's keys, found through its discovery document.
    pub fn discovered(client: reqwest::Client, issuer: String, policy: Policy) -> Self {
        let discovery = Discovery::new(client.clone(), issuer);
        Self { client, discovery: Some(discovery), jwks_url: None, jwks: OnceCell::new(), policy }
    }

    /// The issuer's keys at `jwks_url` when one is configured, else found
    /// through its discovery document.
    pub fn with_jwks_url(client: reqwest::Client, issuer: String, jwks_url: Option<String>, policy: Policy) -> Self {
        match jwks_url {
            Some(url) => Self { client, discovery: None, jwks_url: Some(url), jwks: OnceCell::new(), policy },
            None => Self::discovered(client, issuer, policy),
        }
    }

    /// The keys of whichever issuer the metadata document at `url` names.
    pub fn from_metadata_url(client: reqwest::Client, url: String, policy: Policy) -> Self {
        let discovery = Discovery::at(client.clone(), url);
        Self { client, discovery: Some(discovery), jwks_url: None, jwks: OnceCell::new(), policy }
    }

    /// The discovery document, if the keys are found through one.
    pub fn discovery(&self) -> Option<&Discovery> {
        self.discovery.as_ref()
    }

    /// The issuer's metadata (see [`Discovery::metadata`]).
    pub async fn metadata(&self) -> Result<Arc<Metadata>, FetchError> {
        match &self.discovery {
            Some(discovery) => discovery.metadata().await,
            None => Err(FetchError::Invalid {
                url: self.jwks_url.clone().unwrap_or_default(),
                reason: "no discovery document is configured".to_owned(),
            }),
        }
    }

    async fn jwks(&self) -> Result<&Arc<Jwks>, FetchError> {
        self.jwks
            .get_or_try_init(|| async {
                let url = match &self.jwks_url {
                    Some(url) => url.clone(),
                    None => self.metadata().await?.jwks_uri.clone(),
                };
                Ok(Arc::new(Jwks::new(self.client.clone(), url)))
            })
            .await
    }

    /// Reads a token's header under the policy.
    pub fn header(&self, token: &str) -> Result<Header, TokenError> {
        jwt::header(token, self.policy.algorithms, self.policy.require_kid)
    }

    /// The published key a token with this header is signed with.
    pub async fn key(&self, header: &Header) -> Result<Key, TokenError> {
        let jwks = self.jwks().await.map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
        jwks.key_for(header.kid.as_deref(), header.alg)
            .await
            .map_err(|e| TokenError::KeysUnavailable(e.to_string()))?
            .ok_or(TokenError::UnknownKey)
    }

    /// Checks a token with the key of its header: signature, `iss`, `aud`,
    /// `exp` and `nbf`. Returns its claims.
    pub fn decode(
        &self,
        token: &str,
        header: &Header,
        key: &Key,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Map<String, Value>, TokenError> {
        jwt::decode(token, header.alg, key, issuer, audiences, self.policy.leeway_secs)
    }

    /// Verifies `token`, from `issuer`, for one of `audiences`, and returns
    /// its claims.
    pub async fn verify(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Map<String, Value>, TokenError> {
        let header = self.header(token)?;
        let key = self.key(&header).await?;
        self.decode(token, &header, &key, issuer, audiences)
    }

    /// For health pages: how many keys are known, when they were fetched,
    /// and the last error; `None` before any token needed them.
    pub async fn keys_status(&self) -> Option<(usize, Option<Duration>, Option<String>)> {
        match self.jwks.get() {
            Some(jwks) => Some(jwks.status().await),
            None => None,
        }
    }
}
