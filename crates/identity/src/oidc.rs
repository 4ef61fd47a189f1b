//! The relying party: authorization-code flow with PKCE (S256), `state`
//! and `nonce`, the ID token checks of OpenID Connect Core §3.1.3.7, bearer
//! tokens for the API, and RP-initiated logout.

use std::sync::Arc;
use std::time::Duration;

use crate::config::OidcConfig;
use base64::Engine as _;
use countersign_core::Timestamp;
use rand::RngCore;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::claims::{self, UserClaims};
use crate::discovery::Metadata;
use crate::http::{self, FetchError};
use crate::jwt::{self, TokenError};
use crate::verifier::{Policy, Verifier};

/// Why a login could not be completed. Shown to the person logging in, so
/// the messages say what to do and leak nothing.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the identity provider cannot be reached; try again shortly")]
    Provider(#[from] FetchError),
    #[error("the login attempt is unknown or expired; start again")]
    State,
    #[error("the identity provider refused the login: {0}")]
    Refused(String),
    #[error("the identity provider's answer did not verify: {0}")]
    Token(#[from] TokenError),
    #[error("{0}")]
    Claims(#[from] claims::ClaimsError),
}

/// What the browser carries to the provider and what must come back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    /// Set for a step-up login: the largest acceptable login age, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// A path on this gateway to go back to.
    pub return_to: String,
    pub started_at: Timestamp,
}

/// A completed login.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: UserClaims,
    /// When the provider last authenticated the person: its `auth_time`
    /// claim, or `None` when it sent none. A login the provider does not
    /// date is never fresh (OIDC makes `auth_time` optional unless it was
    /// asked for, and a silent single sign-on against a long-lived provider
    /// session is a login too), so it cannot satisfy `@step_up`; a step-up
    /// login asks for it with `max_age`, and without it the login fails.
    pub auth_time: Option<Timestamp>,
    /// Kept for RP-initiated logout (`id_token_hint`).
    pub id_token: String,
}

/// The gateway as a client of the organisation's provider.
#[derive(Debug)]
pub struct OidcClient {
    config: OidcConfig,
    client: reqwest::Client,
    verifier: Verifier,
}

impl OidcClient {
    pub fn new(config: OidcConfig, client: reqwest::Client) -> Self {
        let verifier = Verifier::discovered(client.clone(), config.issuer.clone(), Policy::OPENID);
        Self { config, client, verifier }
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    pub async fn metadata(&self) -> Result<Arc<Metadata>, FetchError> {
        self.verifier.metadata().await
    }

    /// Starts a login: where to send the browser, and what to remember.
    /// `step_up` asks the provider for a login no older than the step-up
    /// age (`max_age`), so a stale session means typing the password again.
    pub async fn begin(&self, return_to: &str, step_up: bool) -> Result<(String, PendingLogin), LoginError> {
        let metadata = self.metadata().await?;
        let pending = PendingLogin {
            state: random_token(),
            nonce: random_token(),
            code_verifier: random_token(),
            max_age: step_up.then(|| self.config.step_up_max_age.as_secs().max(1)),
            return_to: return_to.to_owned(),
            started_at: Timestamp::now(),
        };
        let endpoint = metadata.authorization_endpoint.as_deref().ok_or_else(|| FetchError::Invalid {
            url: format!("{}/.well-known/openid-configuration", self.config.issuer),
            reason: "it names no `authorization_endpoint`".to_owned(),
        })?;
        let mut url = reqwest::Url::parse(endpoint)
            .map_err(|e| FetchError::Invalid { url: endpoint.to_owned(), reason: e.to_string() })?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &self.config.redirect_url)
                .append_pair("scope", &self.config.scopes.join(" "))
                .append_pair("state", &pending.state)
                .append_pair("nonce", &pending.nonce)
                .append_pair("code_challenge", &challenge(&pending.code_verifier))
                .append_pair("code_challenge_method", "S256");
            if let Some(max_age) = pending.max_age {
                query.append_pair("max_age", &max_age.to_string());
            }
        }
        Ok((url.into(), pending))
    }

    /// Completes a login from the callback's `state` and `code`.
    pub async fn finish(&self, pending: &PendingLogin, state: &str, code: &str) -> Result<Login, LoginError> {
        if !bool::from(pending.state.as_bytes().ct_eq(state.as_bytes())) {
            return Err(LoginError::State);
        }
        let age = Timestamp::now().as_millis().saturating_sub(pending.started_at.as_millis());
        if age > LOGIN_TIMEOUT_MS {
            return Err(LoginError::State);
        }
        let metadata = self.metadata().await?;
        let token_endpoint = metadata
            .token_endpoint
            .clone()
            .ok_or_else(|| LoginError::Refused("the provider publishes no token endpoint".to_owned()))?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", self.config.redirect_url.clone()),
            ("code_verifier", pending.code_verifier.clone()),
        ];
        let mut request = self.client.post(&token_endpoint).header(reqwest::header::ACCEPT, "application/json");
        match (&self.config.client_secret, basic_auth_supported(&metadata)) {
            (Some(secret), true) => {
                request = request.basic_auth(form_encode(&self.config.client_id), Some(form_encode(secret.expose())));
            }
            (Some(secret), false) => {
                form.push(("client_id", self.config.client_id.clone()));
                form.push(("client_secret", secret.expose().to_owned()));
            }
            (None, _) => form.push(("client_id", self.config.client_id.clone())),
        }
        let response = request.form(&form).send().await.map_err(|e| FetchError::Unreachable {
            url: token_endpoint.clone(),
            reason: e.without_url().to_string(),
        })?;
        let status = response.status();
        let body = http::read_limited(&token_endpoint, response).await?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let error = answer.get("error").and_then(Value::as_str).unwrap_or("unknown error");
            tracing::info!(status = status.as_u16(), error, "the token endpoint refused a code");
            return Err(LoginError::Refused(format!("`{}`", error.chars().take(64).collect::<String>())));
        }
        let id_token = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| LoginError::Refused("no ID token in the answer".to_owned()))?;
        let claims = self.verify_id_token(&metadata, id_token, &pending.nonce, pending.max_age).await?;
        let user = claims::user(&self.config, &claims)?;
        let auth_time =
            jwt::time_claim(&claims, "auth_time").map(|secs| Timestamp::from_millis(secs.saturating_mul(1000)));
        Ok(Login { user, auth_time, id_token: id_token.to_owned() })
    }

    /// OpenID Connect Core §3.1.3.7.
    async fn verify_id_token(
        &self,
        metadata: &Metadata,
        token: &str,
        nonce: &str,
        max_age: Option<u64>,
    ) -> Result<Map<String, Value>, LoginError> {
        let claims =
            self.verifier.verify(token, &metadata.issuer, std::slice::from_ref(&self.config.client_id)).await?;
        let token_nonce = jwt::string_claim(&claims, "nonce").ok_or(TokenError::MissingClaim("nonce"))?;
        if !bool::from(token_nonce.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(TokenError::Claims("the nonce does not match this login".to_owned()).into());
        }
        // With several audiences, the token must say it was issued to us.
        let audiences = claims.get("aud").and_then(Value::as_array).map_or(1, Vec::len);
        if audiences > 1 && jwt::string_claim(&claims, "azp") != Some(self.config.client_id.as_str()) {
            return Err(TokenError::Claims("`azp` is not this client".to_owned()).into());
        }
        if let Some(max_age) = max_age {
            let auth_time = jwt::time_claim(&claims, "auth_time").ok_or(TokenError::MissingClaim("auth_time"))?;
            fresh_enough(auth_time, max_age, Timestamp::now().as_millis() / 1000)?;
        }
        Ok(claims)
    }

    /// Checks an API bearer token from this provider (an ID token or a JWT
    /// access token for one of the configured audiences).
    pub async fn verify_bearer(&self, token: &str) -> Result<UserClaims, LoginError> {
        let metadata = self.metadata().await?;
        let claims = self.verifier.verify(token, &metadata.issuer, &self.config.audiences).await?;
        Ok(claims::user(&self.config, &claims)?)
    }

    /// Where to send the browser to end the provider's session too, if the
    /// provider supports RP-initiated logout.
    pub async fn logout_url(&self, id_token: Option<&str>) -> Option<String> {
        let metadata = self.metadata().await.ok()?;
        let endpoint = metadata.end_session_endpoint.as_deref()?;
        let mut url = reqwest::Url::parse(endpoint).ok()?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &self.config.client_id)
                .append_pair("post_logout_redirect_uri", &self.config.post_logout_redirect_url);
            if let Some(hint) = id_token {
                query.append_pair("id_token_hint", hint);
            }
        }
        Some(url.into())
    }

    /// The origin of the provider, for the console's `form-action` policy.
    pub fn issuer_origin(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.config.issuer).ok()?;
        Some(url.origin().ascii_serialization())
    }

    /// For health pages.
    pub async fn health(&self) -> crate::Health {
        let discovery = self.metadata().await;
        let keys = self.verifier.keys_status().await;
        crate::Health::from_parts("OpenID Connect provider", &self.config.issuer, discovery.err(), keys)
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }
}

/// OpenID Connect Core §3.1.2.1: with `max_age` sent, the provider must
/// have authenticated the person no more than `max_age` seconds ago (and
/// not in the future), give or take the clock leeway.
fn fresh_enough(auth_time: i64, max_age: u64, now: i64) -> Result<(), TokenError> {
    let leeway = i64::try_from(jwt::LEEWAY_SECS).unwrap_or(i64::MAX);
    let limit = i64::try_from(max_age).unwrap_or(i64::MAX).saturating_add(leeway);
    if now.saturating_sub(auth_time) > limit {
        return Err(TokenError::Claims(
            "the provider did not log you in again although a fresh login was asked for".to_owned(),
        ));
    }
    if auth_time.saturating_sub(now) > leeway {
        return Err(TokenError::Claims("the provider dates the login in the future".to_owned()));
    }
    Ok(())
}

/// How long a started login may take.
const LOGIN_TIMEOUT_MS: i64 = 15 * 60 * 1000;

/// `client_secret_basic` is the default when a provider lists no methods.
fn basic_auth_supported(metadata: &Metadata) -> bool {
    metadata
        .token_endpoint_auth_methods_supported
        .as_ref()
        .is_none_or(|methods| methods.iter().any(|m| m == "client_secret_basic"))
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded before they
/// go into the Basic header.
fn form_encode(value: &str) -> String {
    reqwest::Url::parse_with_params("x:", [("v", value)])
        .ok()
        .and_then(|u| u.query().map(|q| q.trim_start_matches("v=").to_owned()))
        .unwrap_or_else(|| value.to_owned())
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of a verifier.
fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A step-up login no older than this counts, for callers that show it.
pub fn describe_age(age: Duration) -> String {
    countersign_core::clock::format_duration(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_base64url_sha256() {
        // Computed independently: base64url(sha256(verifier)) without padding.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r7wW1gMdlVPUlE"),
            "GbzW0OuqNFpDoXED2sf0gGJRczWvGKUqJ8p9mDQ1Luo"
        );
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c"), "a+b%3Ac");
        assert_eq!(form_encode("plain"), "plain");
    }

    #[test]
    fn a_step_up_login_must_be_dated_within_max_age() {
        let leeway = i64::try_from(jwt::LEEWAY_SECS).unwrap();
        let now = 1_700_000_000;
        assert!(fresh_enough(now, 300, now).is_ok());
        assert!(fresh_enough(now - 300 - leeway, 300, now).is_ok());
        assert!(fresh_enough(now - 301 - leeway, 300, now).is_err());
        assert!(fresh_enough(now - 86_400, 300, now).is_err());
        assert!(fresh_enough(0, 300, now).is_err());
        assert!(fresh_enough(i64::MIN, 300, now).is_err());
        assert!(fresh_enough(now + leeway, 300, now).is_ok());
        assert!(fresh_enough(now + leeway + 1, 300, now).is_err());
        assert!(fresh_enough(i64::MAX, u64::MAX, now).is_err());
    }

    #[test]
    fn random_tokens_differ() {
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
    }
}
