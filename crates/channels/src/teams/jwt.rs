//! Bot Framework JWT validation for requests from Teams, with the
//! gateway's one token verifier ([`countersign_identity::verifier`]): its
//! key cache and refetch policy, its signature, issuer, audience and
//! expiry checks.
//!
//! The `Authorization: Bearer` token must be an RS256 JWT naming its key,
//! signed by a key from the JWKS that the configured OpenID metadata points
//! to, issued by the metadata's issuer, for our app id (audience), not
//! expired (five minutes of clock skew, as the Bot Framework SDKs allow),
//! and its `serviceurl` claim must match the activity's `serviceUrl`, so a
//! token cannot send our replies elsewhere. Only Teams may vote here: the
//! activity's `channelId` must be `msteams`, and the signing key must list
//! `msteams` among its `endorsements` (a key with no endorsements endorses
//! nothing; the Bot Framework signs Web Chat, Direct Line and every other
//! channel with keys of its own, and an activity's `channelId` is only as
//! good as the key that signed it).

use countersign_core::text::prefix_within;
use countersign_identity::jwt::TokenError as JwtError;
use countersign_identity::verifier::{Policy, Verifier};
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::Value;

/// What Bot Framework tokens are held to: RS256, a named key, and the
/// SDKs' five minutes of clock skew.
const POLICY: Policy = Policy { algorithms: &[Algorithm::RS256], require_kid: true, leeway_secs: 300 };

/// The Bot Framework channel id of Microsoft Teams, the only channel whose
/// activities may vote.
pub const TEAMS_CHANNEL: &str = "msteams";

/// Why a token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error(transparent)]
    Token(#[from] JwtError),
    #[error("the token's service URL does not match the activity's")]
    ServiceUrl,
    #[error("the signing key does not endorse channel `{0}`")]
    Endorsement(String),
    #[error("only Microsoft Teams activities are accepted, not channel `{0}`")]
    Channel(String),
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

/// Validates Bot Framework tokens for one app id.
#[derive(Debug)]
pub struct BotAuth {
    verifier: Verifier,
    /// The one audience accepted: our app id.
    audience: [String; 1],
}

impl BotAuth {
    pub fn new(http: reqwest::Client, metadata_url: String, app_id: String) -> Self {
        Self { verifier: Verifier::from_metadata_url(http, metadata_url, POLICY), audience: [app_id] }
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
        let header = self.verifier.header(token)?;
        if channel_id != TEAMS_CHANNEL {
            return Err(TokenError::Channel(prefix_within(channel_id, 32, |_| 1).to_owned()));
        }
        let key = self.verifier.key(&header).await?;
        if !key.endorses(TEAMS_CHANNEL) {
            return Err(TokenError::Endorsement(TEAMS_CHANNEL.to_owned()));
        }
        // The issuer is the one the configured metadata names.
        let metadata = self.verifier.metadata().await.map_err(|e| JwtError::KeysUnavailable(e.to_string()))?;
        let claims = self.verifier.decode(token, &header, &key, &metadata.issuer, &self.audience)?;
        let claims: Claims = serde_json::from_value(Value::Object(claims))
            .map_err(|_| JwtError::Claims("`iss`, `aud`, `exp` or `serviceurl` is not of its type".to_owned()))?;
        let same = |a: &str| a.trim_end_matches('/').eq_ignore_ascii_case(service_url.trim_end_matches('/'));
        if !claims.serviceurl.as_deref().is_some_and(same) {
            return Err(TokenError::ServiceUrl);
        }
        Ok(claims)
    }
}
