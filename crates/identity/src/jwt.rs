//! Checking a JWT: its header against the accepted algorithms, its
//! signature against a published key (see [`crate::jwks`]), then issuer,
//! audience, expiry and not-before. [`crate::verifier::Verifier`] puts the
//! steps together.
//!
//! Only asymmetric algorithms are accepted. `none` and the HMAC family are
//! refused outright: with a public key set, an HMAC "signature" is the
//! classic key-confusion forgery.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Map, Value};

use crate::jwks::Key;

/// Clock skew tolerated on `exp`, `nbf` and `iat` in tokens of OpenID
/// Connect providers and workload issuers, in seconds.
pub const LEEWAY_SECS: u64 = 60;

/// Why a token was refused. Messages name the check, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a JWT")]
    Malformed,
    #[error("the signing algorithm is not accepted")]
    Algorithm,
    #[error("the token does not name its signing key (`kid`)")]
    MissingKeyId,
    #[error("no published key of the issuer matches the token")]
    UnknownKey,
    #[error("the issuer's keys cannot be fetched: {0}")]
    KeysUnavailable(String),
    #[error("the signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another audience")]
    Audience,
    #[error("the token is from another issuer")]
    Issuer,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the token's claims are invalid: {0}")]
    Claims(String),
}

/// The signing algorithms any token may use.
pub const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Reads the `iss` claim without checking anything, to pick which issuer's
/// rules apply. Nothing read here is trusted until [`verify`] passes.
pub fn peek_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Reads a token's header: its algorithm must be one of `algorithms` (and
/// asymmetric, whatever the caller allows), and with `require_kid` it must
/// name its key.
pub fn header(token: &str, algorithms: &[Algorithm], require_kid: bool) -> Result<Header, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if !ASYMMETRIC.contains(&header.alg) || !algorithms.contains(&header.alg) {
        return Err(TokenError::Algorithm);
    }
    if require_kid && header.kid.is_none() {
        return Err(TokenError::MissingKeyId);
    }
    Ok(header)
}

/// Checks `token` (whose [`header`] passed) with `key`: the signature,
/// then `iss`, `aud`, `exp` (all required) and `nbf`, with `leeway_secs`
/// of clock skew. Returns its claims.
pub fn decode(
    token: &str,
    alg: Algorithm,
    key: &Key,
    issuer: &str,
    audiences: &[String],
    leeway_secs: u64,
) -> Result<Map<String, Value>, TokenError> {
    let mut validation = Validation::new(alg);
    validation.leeway = leeway_secs;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.set_issuer(&[issuer]);
    validation.set_audience(audiences);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
                TokenError::Signature
            }
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidAudience => TokenError::Audience,
            ErrorKind::InvalidIssuer => TokenError::Issuer,
            ErrorKind::MissingRequiredClaim(claim) => TokenError::Claims(format!("`{claim}` is missing")),
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::Algorithm,
            _ => TokenError::Malformed,
        }
    })?;
    Ok(data.claims)
}

/// A string claim.
pub fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// A numeric-date claim (seconds since the epoch).
pub fn time_claim(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    claims.get(name).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}
