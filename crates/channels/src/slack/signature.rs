//! Slack request signing (v0): `X-Slack-Signature` is `v0=` + the hex
//! HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<raw body>` under the
//! signing secret. Compared in constant time; the timestamp must be within
//! five minutes of now, and a signed request is accepted once, so a
//! captured request cannot be replayed. "Once" holds across every gateway
//! process that shares the store: the first use is claimed with a
//! compare-and-set in the store's key-value area ([`first_use`]).
//!
//! Replays are recognised by what was verified, the MAC bytes (which cover
//! the timestamp and the body), never by how the header spelled them: the
//! header must be exactly `v0=` and 64 lower-case hex digits, as Slack
//! sends it (and as Slack's SDKs compare it), so `V0=`, upper-case or
//! mixed-case hex, padding or whitespace are refused as malformed, and even
//! a spelling this check let through would map to the same replay key.

use countersign_core::Timestamp;
use countersign_gateway::kv::KeyValues;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from now, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request is not from Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Slack signature headers are missing or malformed")]
    Missing,
    #[error("the request timestamp is not within five minutes of now")]
    Stale,
    #[error("the Slack signature does not match")]
    Mismatch,
    #[error("this signed request was already received")]
    Replayed,
    /// The store could not say whether the request was seen: refused, as a
    /// replay might otherwise slip through (Slack retries).
    #[error("cannot check this request for replay right now; try again")]
    Unchecked,
}

/// `v0=<hex>` for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// What a valid signature proved: the MAC (the replay key) and when the
/// request says it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    mac: Vec<u8>,
    pub sent_secs: i64,
}

impl Verified {
    /// The replay key: the verified MAC, in Slack's one spelling (so also
    /// the key under which earlier versions recorded it).
    pub fn replay_key(&self) -> String {
        format!("v0={}", hex::encode(&self.mac))
    }
}

/// The MAC in a `v0=` header, if the header is in Slack's one spelling.
fn canonical_mac(signature: &str) -> Option<Vec<u8>> {
    let digits = signature.strip_prefix("v0=")?;
    let canonical = digits.len() == 64 && digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !canonical {
        return None;
    }
    hex::decode(digits).ok()
}

/// Checks a request's signature and freshness (not replays; see [`first_use`]).
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    body: &[u8],
    signature: Option<&str>,
    now_secs: i64,
) -> Result<Verified, SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let sent: i64 = timestamp.trim().parse().map_err(|_| SignatureError::Missing)?;
    if (now_secs - sent).abs() > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let given = canonical_mac(signature).ok_or(SignatureError::Missing)?;
    let expected = mac(secret, timestamp, body);
    if expected.len() == given.len() && bool::from(expected.ct_eq(&given)) {
        Ok(Verified { mac: expected, sent_secs: sent })
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The key-value namespace of seen signatures, keyed by
/// [`Verified::replay_key`].
pub const SEEN: &str = "channels.slack.seen";

/// Records a verified request in `seen` (the [`SEEN`] namespace):
/// `Replayed` if any process sharing the store saw the same MAC before, so
/// each signed request is accepted once across all of them, however its
/// signature header was spelled.
pub async fn first_use_of(seen: &KeyValues, verified: &Verified) -> Result<(), SignatureError> {
    first_use(seen, &verified.replay_key(), verified.sent_secs).await
}

/// Records replay key `signature` (see [`first_use_of`]).
///
/// Each first use is claimed by creating `SEEN/<key>` with a
/// compare-and-set from absent, which exactly one racing process wins. A
/// signature can only be fresh within [`MAX_SKEW_SECS`] of its timestamp
/// (and the signature covers the timestamp), so the entry expires twice
/// that window after the timestamp, and the gateway's purge of expired
/// key-value entries deletes it, whichever process made it.
pub async fn first_use(seen: &KeyValues, signature: &str, timestamp_secs: i64) -> Result<(), SignatureError> {
    let expires = Timestamp::from_millis(timestamp_secs.saturating_add(MAX_SKEW_SECS * 2).saturating_mul(1000));
    match seen.compare_and_set_expiring(signature, None, Some(timestamp_secs.to_string()), Some(expires)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(SignatureError::Replayed),
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a Slack signature; refusing the request");
            Err(SignatureError::Unchecked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_its_own_signatures_and_nothing_else() {
        let body = b"payload=%7B%7D";
        let sig = sign(b"secret", "1700000000", body);
        assert!(verify(b"secret", Some("1700000000"), body, Some(&sig), 1_700_000_100).is_ok());
        assert_eq!(
            verify(b"other", Some("1700000000"), body, Some(&sig), 1_700_000_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", Some("1700000000"), b"x", Some(&sig), 1_700_000_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(b"secret", Some("1700000000"), body, Some(&sig), 1_700_000_301), Err(SignatureError::Stale));
        assert_eq!(verify(b"secret", Some("1700000000"), body, Some(&sig), 1_699_999_699), Err(SignatureError::Stale));
        assert_eq!(verify(b"secret", None, body, Some(&sig), 0), Err(SignatureError::Missing));
        assert_eq!(
            verify(b"secret", Some("1700000000"), body, Some("v1=00"), 1_700_000_000),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn only_slacks_own_spelling_of_a_valid_signature_verifies() {
        let body = b"payload=%7B%7D";
        let sig = sign(b"secret", "1700000000", body);
        let digits = sig.strip_prefix("v0=").unwrap();
        let check = |s: &str| verify(b"secret", Some("1700000000"), body, Some(s), 1_700_000_000);
        let verified = check(&sig).unwrap();
        assert_eq!(verified.replay_key(), sig);
        assert_eq!(verified.sent_secs, 1_700_000_000);
        let mixed: String =
            digits.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect();
        assert_ne!(mixed, digits, "the signature has letters to change");
        for other in [
            format!("v0={}", digits.to_uppercase()),
            format!("v0={mixed}"),
            format!("V0={digits}"),
            format!("v0={digits} "),
            format!(" v0={digits}"),
            format!("v0= {digits}"),
            format!("v0={digits}00"),
            format!("v0={digits}="),
            format!("v0=v0={digits}"),
            format!("v0={}", &digits[..62]),
        ] {
            assert_eq!(check(&other), Err(SignatureError::Missing), "{other}");
        }
    }

    #[tokio::test]
    async fn one_verified_mac_is_one_use_however_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let store = countersign_store_sqlite::SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let store = KeyValues::new(std::sync::Arc::new(store), SEEN);
        let body = b"payload=%7B%7D";
        let verified = verify(b"secret", Some("100"), body, Some(&sign(b"secret", "100", body)), 100).unwrap();
        assert_eq!(first_use_of(&store, &verified).await, Ok(()));
        assert_eq!(first_use_of(&store, &verified).await, Err(SignatureError::Replayed));
        // The same MAC under another key spelling cannot be claimed anew.
        let upper = Verified { mac: verified.mac.clone(), sent_secs: 100 };
        assert_eq!(first_use_of(&store, &upper).await, Err(SignatureError::Replayed));
    }

    #[tokio::test]
    async fn a_signature_is_accepted_once_then_purged_when_it_cannot_be_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn countersign_store::Store> =
            std::sync::Arc::new(countersign_store_sqlite::SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
        let seen = KeyValues::new(store.clone(), SEEN);
        assert_eq!(first_use(&seen, "v0=ab", 100).await, Ok(()));
        assert_eq!(first_use(&seen, "v0=ab", 100).await, Err(SignatureError::Replayed));
        assert_eq!(first_use(&seen, "v0=cd", 100).await, Ok(()));
        assert_eq!(first_use(&seen, "v0=ef", 800).await, Ok(()));
        // Once no request carrying it can be fresh, the entry is purged,
        // whichever process made it; younger ones stay.
        let purged = store.kv_purge_expired(Timestamp::from_millis((100 + MAX_SKEW_SECS * 2 + 1) * 1000)).await;
        assert_eq!(purged.unwrap(), 2);
        assert_eq!(store.kv_get(SEEN, "v0=ab").await.unwrap(), None);
        assert_eq!(store.kv_get(SEEN, "v0=cd").await.unwrap(), None);
        assert_eq!(store.kv_get(SEEN, "v0=ef").await.unwrap(), Some("800".to_owned()));
    }
}
