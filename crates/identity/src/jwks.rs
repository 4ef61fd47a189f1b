//! A provider's signing keys (its JWKS), cached.
//!
//! Keys are looked up by `kid`. An unknown `kid` means the provider may
//! have rotated its keys, so the set is fetched again — at most once per
//! [`MIN_REFETCH`], whoever asks, so a stream of made-up `kid`s cannot turn
//! the gateway into a load generator against the provider. A caller that
//! arrives inside that window waits for it to pass rather than failing, so
//! a real rotation is picked up on the first token signed with the new key.
//! The set is also refreshed after [`MAX_AGE`]; a failed fetch keeps the
//! keys already known.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use crate::http::{self, FetchError};

/// The shortest interval between two fetches of one key set.
pub const MIN_REFETCH: Duration = Duration::from_secs(1);
/// Keys older than this are fetched again on the next use.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// One verification key.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub decoding: DecodingKey,
    /// The algorithm the key is published for, if any.
    pub algorithm: Option<Algorithm>,
    /// The channels the key signs for, where a service says so (the Bot
    /// Framework's `endorsements`): the strings of that array, if any.
    pub endorsements: Vec<String>,
    family: Family,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("algorithm", &self.algorithm).finish()
    }
}

/// Key types, for matching a token's `alg` to a key without a `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    Ec,
    Ed,
}

impl Key {
    /// Whether this key may verify a token signed with `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        let family_fits = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.family == Family::Rsa,
            Algorithm::ES256 | Algorithm::ES384 => self.family == Family::Ec,
            Algorithm::EdDSA => self.family == Family::Ed,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => false,
        };
        family_fits && self.algorithm.is_none_or(|a| a == alg)
    }

    /// Whether the key lists `channel` among its `endorsements`. Absent,
    /// not an array, or without that exact string: it endorses nothing.
    pub fn endorses(&self, channel: &str) -> bool {
        self.endorsements.iter().any(|e| e == channel)
    }
}

#[derive(Debug, Default)]
struct Cached {
    keys: Vec<Key>,
    fetched_at: Option<Instant>,
    last_error: Option<String>,
}

/// Where the key set lives and what is known of it.
#[derive(Debug)]
pub struct Jwks {
    client: reqwest::Client,
    url: String,
    cached: RwLock<Cached>,
    /// Serialises fetches: one at a time, others wait and reuse its result.
    fetching: Mutex<Option<Instant>>,
}

impl Jwks {
    pub fn new(client: reqwest::Client, url: String) -> Self {
        Self { client, url, cached: RwLock::new(Cached::default()), fetching: Mutex::new(None) }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key for a token with this header, fetching the set again if the
    /// `kid` is unknown (rotation) or the set is old.
    pub async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Option<Key>, FetchError> {
        let (found, stale) = {
            let cached = self.cached.read().await;
            let stale = cached.fetched_at.is_none_or(|t| t.elapsed() > MAX_AGE);
            (pick(&cached.keys, kid, alg), stale)
        };
        match (found, stale) {
            (Some(key), false) => return Ok(Some(key)),
            (Some(key), true) => {
                // Old but known: refresh, and keep using it if that fails.
                if let Err(e) = self.refetch(None).await {
                    tracing::warn!(url = %self.url, error = %e, "cannot refresh signing keys; using the cached ones");
                }
                let cached = self.cached.read().await;
                return Ok(pick(&cached.keys, kid, alg).or(Some(key)));
            }
            (None, _) => {}
        }
        let generation = self.cached.read().await.fetched_at;
        self.refetch(generation).await?;
        let cached = self.cached.read().await;
        Ok(pick(&cached.keys, kid, alg))
    }

    /// Fetches the set unless someone else did since `seen` (the fetch
    /// time the caller looked at).
    async fn refetch(&self, seen: Option<Instant>) -> Result<(), FetchError> {
        let mut last = self.fetching.lock().await;
        let current = self.cached.read().await.fetched_at;
        if current.is_some() && current != seen {
            return Ok(());
        }
        if let Some(at) = *last {
            let since = at.elapsed();
            if since < MIN_REFETCH {
                tokio::time::sleep(MIN_REFETCH - since).await;
            }
        }
        *last = Some(Instant::now());
        let result = http::get_json(&self.client, &self.url).await.and_then(|doc| parse_set(&self.url, &doc));
        let mut cached = self.cached.write().await;
        match result {
            Ok(keys) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "fetched signing keys");
                cached.keys = keys;
                cached.fetched_at = Some(Instant::now());
                cached.last_error = None;
                Ok(())
            }
            Err(e) => {
                cached.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// For health pages: how many keys are known, when they were fetched,
    /// and the last error, if the last fetch failed.
    pub async fn status(&self) -> (usize, Option<Duration>, Option<String>) {
        let cached = self.cached.read().await;
        (cached.keys.len(), cached.fetched_at.map(|t| t.elapsed()), cached.last_error.clone())
    }
}

fn pick(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Option<Key> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid) && k.fits(alg)).cloned(),
        // Without a `kid`, only an unambiguous key will do.
        None => {
            let mut fitting = keys.iter().filter(|k| k.fits(alg));
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => Some(key.clone()),
                (Some(_), Some(_)) | (None, _) => None,
            }
        }
    }
}

/// Reads a JWKS document. Keys this gateway cannot or must not use
/// (encryption keys, symmetric keys, unknown types) are skipped one by one
/// rather than failing the whole set.
pub fn parse_set(url: &str, doc: &serde_json::Value) -> Result<Vec<Key>, FetchError> {
    let entries = doc
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| FetchError::Invalid { url: url.to_owned(), reason: "no `keys` array".to_owned() })?;
    Ok(entries.iter().filter_map(|entry| parse_key(entry.clone())).collect())
}

fn parse_key(entry: serde_json::Value) -> Option<Key> {
    let endorsements = entry
        .get("endorsements")
        .and_then(serde_json::Value::as_array)
        .map(|all| all.iter().filter_map(serde_json::Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let jwk: Jwk = serde_json::from_value(entry).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(_) => Family::Ec,
        AlgorithmParameters::OctetKeyPair(_) => Family::Ed,
        // A shared secret published in a key set would let anyone sign.
        AlgorithmParameters::OctetKey(_) => return None,
    };
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(signing_algorithm(alg)?),
    };
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key { kid: jwk.common.key_id.clone(), decoding, algorithm, endorsements, family })
}

fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    match alg {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::RS384 => Some(Algorithm::RS384),
        KeyAlgorithm::RS512 => Some(Algorithm::RS512),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        KeyAlgorithm::PS384 => Some(Algorithm::PS384),
        KeyAlgorithm::PS512 => Some(Algorithm::PS512),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        KeyAlgorithm::HS256
        | KeyAlgorithm::HS384
        | KeyAlgorithm::HS512
        | KeyAlgorithm::RSA1_5
        | KeyAlgorithm::RSA_OAEP
        | KeyAlgorithm::RSA_OAEP_256 => None,
    }
}

/// A shared handle.
pub type SharedJwks = Arc<Jwks>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unusable_keys_are_skipped_not_fatal() {
        let doc = json!({"keys": [
            {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "sXch", "e": "AQAB"},
            {"kty": "weird", "kid": "x"},
            {"kty": "RSA", "kid": "sig", "use": "sig", "alg": "RS256", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"}
        ]});
        let keys = parse_set("u", &doc).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("sig"));
        assert!(keys[0].fits(Algorithm::RS256));
        assert!(!keys[0].fits(Algorithm::RS512), "published for RS256 only");
        assert!(!keys[0].fits(Algorithm::HS256));
        assert!(parse_set("u", &json!({"nope": []})).is_err());
    }

    #[test]
    fn only_keys_listing_a_channel_endorse_it() {
        let key = |extra: serde_json::Value| {
            let mut entry = json!({"kty": "RSA", "kid": "k", "n": "sXch", "e": "AQAB"});
            if let Some(endorsements) = extra.get("endorsements") {
                entry["endorsements"] = endorsements.clone();
            }
            parse_key(entry).unwrap()
        };
        assert!(key(json!({"endorsements": ["msteams", "webchat"]})).endorses("msteams"));
        for extra in [
            json!({}),
            json!({"endorsements": null}),
            json!({"endorsements": []}),
            json!({"endorsements": ["webchat"]}),
            json!({"endorsements": ["MSTEAMS"]}),
            json!({"endorsements": "msteams"}),
            json!({"endorsements": [["msteams"]]}),
            json!({"endorsements": ["msteams "]}),
        ] {
            assert!(!key(extra.clone()).endorses("msteams"), "{extra}");
        }
    }

    #[test]
    fn a_missing_kid_needs_an_unambiguous_key() {
        let doc = |n: usize| {
            let key = json!({"kty": "RSA", "n": "sXch", "e": "AQAB"});
            json!({"keys": vec![key; n]})
        };
        let one = parse_set("u", &doc(1)).unwrap();
        assert!(pick(&one, None, Algorithm::RS256).is_some());
        let two = parse_set("u", &doc(2)).unwrap();
        assert!(pick(&two, None, Algorithm::RS256).is_none());
    }
}
