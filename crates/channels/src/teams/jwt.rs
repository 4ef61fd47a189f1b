//! Bot Framework JWT validation for requests from Teams.
//!
//! The `Authorization: Bearer` token must be an RS256 JWT signed by a key
//! from the JWKS that the configured OpenID metadata points to, issued by
//! the metadata's issuer, for our app id (audience), not expired (five
//! minutes of clock skew, as the Bot Framework SDKs allow), and its
//! `serviceurl` claim must match the activity's `serviceUrl`, so a token
//! cannot send our replies elsewhere. Only Teams may vote here: the
//! activity's `channelId` must be `msteams`, and the signing key must list
//! `msteams` among its `endorsements` (a key with no endorsements endorses
//! nothing; the Bot Framework signs Web Chat, Direct Line and every other
//! channel with keys of its own, and an activity's `channelId` is only as
//! good as the key that signed it). Keys are cached and fetched again when
//! an unknown key id shows up (at most once a minute) or after a day.

use std::time::{Duration, Instant};

use countersign_core::text::prefix_within;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// How long fetched keys are used before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(24 * 3600);
/// The least time between two fetches forced by unknown key ids.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// Allowed clock skew, in seconds.
const LEEWAY: u64 = 300;

/// The Bot Framework channel id of Microsoft Teams, the only channel whose
/// activities may vote.
pub const TEAMS_CHANNEL: &str = "msteams";

/// Whether `jwk` lists `channel` among its `endorsements`. Absent, not an
/// array, or holding anything but strings: it endorses nothing.
fn endorses(jwk: &Value, channel: &str) -> bool {
    jwk.get("endorsements").and_then(Value::as_array).is_some_and(|all| all.iter().any(|e| e.as_str() == Some(channel)))
}

/// Why a token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is not a well-formed RS256 JWT with a key id")]
    Malformed,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token's service URL does not match the activity's")]
    ServiceUrl,
    #[error("the signing key does not endorse channel `{0}`")]
    Endorsement(String),
    #[error("only Microsoft Teams activities are accepted, not channel `{0}`")]
    Channel(String),
    #[error("cannot read the Bot Framework signing keys: {0}")]
    Keys(String),
}

/// The claims read from a valid token.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: Value,
    pub exp: u64,
    #[serde(default)]
    pub serviceurl: Option<String>,
}

#[derive(Debug, Clone)]
struct KeySet {
    issuer: String,
    keys: Vec<Value>,
    fetched: Instant,
}

/// Validates Bot Framework tokens for one app id.
#[derive(Debug)]
pub struct BotAuth {
    http: reqwest::Client,
    metadata_url: String,
    app_id: String,
    keys: tokio::sync::Mutex<Option<KeySet>>,
}

impl BotAuth {
    pub fn new(http: reqwest::Client, metadata_url: String, app_id: String) -> Self {
        Self { http, metadata_url, app_id, keys: tokio::sync::Mutex::new(None) }
    }

    /// Checks the `Authorization` header of an activity from `service_url`
    /// on `channel_id`, which must be `msteams` (see the module header).
    pub async fn validate(
        &self,
        authorization: Option<&str>,
        service_url: &str,
        channel_id: &str,
    ) -> Result<Claims, TokenError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        if channel_id != TEAMS_CHANNEL {
            return Err(TokenError::Channel(prefix_within(channel_id, 32, |_| 1).to_owned()));
        }
        let (issuer, jwk) = self.key(&kid).await?;
        if !endorses(&jwk, TEAMS_CHANNEL) {
            return Err(TokenError::Endorsement(TEAMS_CHANNEL.to_owned()));
        }
        let jwk: Jwk = serde_json::from_value(jwk).map_err(|_| TokenError::UnknownKey)?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[self.app_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(reason(&e)))?
            .claims;
        let same = |a: &str| a.trim_end_matches('/').eq_ignore_ascii_case(service_url.trim_end_matches('/'));
        if !claims.serviceurl.as_deref().is_some_and(same) {
            return Err(TokenError::ServiceUrl);
        }
        Ok(claims)
    }

    /// The issuer and the key with id `kid`, fetching the keys when needed.
    async fn key(&self, kid: &str) -> Result<(String, Value), TokenError> {
        let mut cache = self.keys.lock().await;
        let find = |set: &KeySet| set.keys.iter().find(|k| k.get("kid").and_then(Value::as_str) == Some(kid)).cloned();
        if let Some(set) = cache.as_ref() {
            if set.fetched.elapsed() < KEYS_TTL {
                if let Some(key) = find(set) {
                    return Ok((set.issuer.clone(), key));
                }
                if set.fetched.elapsed() < REFETCH_AFTER {
                    return Err(TokenError::UnknownKey);
                }
            }
        }
        let set = self.fetch().await?;
        let found = find(&set).map(|key| (set.issuer.clone(), key));
        *cache = Some(set);
        found.ok_or(TokenError::UnknownKey)
    }

    async fn fetch(&self) -> Result<KeySet, TokenError> {
        let metadata = self.get_json(&self.metadata_url).await?;
        let issuer =
            metadata.get("issuer").and_then(Value::as_str).ok_or_else(|| TokenError::Keys("no `issuer`".into()))?;
        let jwks_uri =
            metadata.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| TokenError::Keys("no `jwks_uri`".into()))?;
        let jwks = self.get_json(jwks_uri).await?;
        let keys = jwks.get("keys").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(KeySet { issuer: issuer.to_owned(), keys, fetched: Instant::now() })
    }

    async fn get_json(&self, url: &str) -> Result<Value, TokenError> {
        let response = self.http.get(url).send().await.map_err(|_| TokenError::Keys("unreachable".into()))?;
        if !response.status().is_success() {
            return Err(TokenError::Keys(format!("HTTP {}", response.status())));
        }
        response.json().await.map_err(|_| TokenError::Keys("not JSON".into()))
    }
}

fn reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "expired".to_owned(),
        ErrorKind::ImmatureSignature => "not yet valid".to_owned(),
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::InvalidSignature => "bad signature".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim `{claim}`"),
        _ => "not acceptable".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_keys_listing_teams_endorse_it() {
        assert!(endorses(&json!({"endorsements": ["msteams", "webchat"]}), "msteams"));
        for key in [
            json!({}),
            json!({"endorsements": null}),
            json!({"endorsements": []}),
            json!({"endorsements": ["webchat"]}),
            json!({"endorsements": ["MSTEAMS"]}),
            json!({"endorsements": "msteams"}),
            json!({"endorsements": [["msteams"]]}),
            json!({"endorsements": ["msteams "]}),
        ] {
            assert!(!endorses(&key, "msteams"), "{key}");
        }
    }
}
