//! Slack request signing (v0): `X-Slack-Signature` is `v0=` + the hex
//! HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<raw body>` under the
//! signing secret. Compared in constant time; the timestamp must be within
//! five minutes of now, and a signature is accepted once, so a captured
//! request cannot be replayed. "Once" holds across every gateway process
//! that shares the store: the first use is claimed with a compare-and-set
//! in the store's key-value area ([`ReplayGuard`]).

use countersign_core::Timestamp;
use countersign_store::Store;
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

/// Checks a request's signature and freshness (not replays; see [`ReplayGuard`]).
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    body: &[u8],
    signature: Option<&str>,
    now_secs: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let sent: i64 = timestamp.trim().parse().map_err(|_| SignatureError::Missing)?;
    if (now_secs - sent).abs() > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let given = signature.strip_prefix("v0=").and_then(|h| hex::decode(h).ok()).ok_or(SignatureError::Missing)?;
    let expected = mac(secret, timestamp, body);
    if expected.len() == given.len() && bool::from(expected.ct_eq(&given)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The key-value namespace of seen signatures.
const SEEN: &str = "channels.slack.seen";

/// Records `signature`: `Replayed` if any process sharing `store` saw it
/// before, so each signature is accepted once across all of them.
///
/// Each first use is claimed by creating `SEEN/<signature>` with a
/// compare-and-set from absent, which exactly one racing process wins. A
/// signature can only be fresh within [`MAX_SKEW_SECS`] of its timestamp
/// (and the signature covers the timestamp), so the entry expires twice
/// that window after the timestamp, and the gateway's purge of expired
/// key-value entries deletes it, whichever process made it.
pub async fn first_use(store: &dyn Store, signature: &str, timestamp_secs: i64) -> Result<(), SignatureError> {
    let expires = Timestamp::from_millis(timestamp_secs.saturating_add(MAX_SKEW_SECS * 2).saturating_mul(1000));
    let seen = Some(timestamp_secs.to_string());
    match store.kv_compare_and_set_expiring(SEEN, signature, None, seen, Some(expires)).await {
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
        assert_eq!(verify(b"secret", Some("1700000000"), body, Some(&sig), 1_700_000_100), Ok(()));
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

    #[tokio::test]
    async fn a_signature_is_accepted_once_then_purged_when_it_cannot_be_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = countersign_store_sqlite::SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        assert_eq!(first_use(&store, "v0=ab", 100).await, Ok(()));
        assert_eq!(first_use(&store, "v0=ab", 100).await, Err(SignatureError::Replayed));
        assert_eq!(first_use(&store, "v0=cd", 100).await, Ok(()));
        assert_eq!(first_use(&store, "v0=ef", 800).await, Ok(()));
        // Once no request carrying it can be fresh, the entry is purged,
        // whichever process made it; younger ones stay.
        let purged = store.kv_purge_expired(Timestamp::from_millis((100 + MAX_SKEW_SECS * 2 + 1) * 1000)).await;
        assert_eq!(purged.unwrap(), 2);
        assert_eq!(store.kv_get(SEEN, "v0=ab").await.unwrap(), None);
        assert_eq!(store.kv_get(SEEN, "v0=cd").await.unwrap(), None);
        assert_eq!(store.kv_get(SEEN, "v0=ef").await.unwrap(), Some("800".to_owned()));
    }
}
