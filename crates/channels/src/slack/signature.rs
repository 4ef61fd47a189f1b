//! Slack request signing (v0): `X-Slack-Signature` is `v0=` + the hex
//! HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<raw body>` under the
//! signing secret. Compared in constant time; the timestamp must be within
//! five minutes of now, and a signature is accepted once, so a captured
//! request cannot be replayed.

use std::collections::HashMap;
use std::sync::Mutex;

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

/// Remembers the signatures seen in the last five minutes (the window in
/// which a signature can be fresh), so each is accepted once per process.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayGuard {
    /// Records `signature`; `Replayed` if it was seen before.
    pub fn first_use(&self, signature: &str, timestamp_secs: i64, now_secs: i64) -> Result<(), SignatureError> {
        let Ok(mut seen) = self.seen.lock() else {
            return Err(SignatureError::Replayed);
        };
        seen.retain(|_, at| now_secs - *at <= MAX_SKEW_SECS * 2);
        if seen.insert(signature.to_owned(), timestamp_secs).is_some() {
            return Err(SignatureError::Replayed);
        }
        Ok(())
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

    #[test]
    fn a_signature_is_accepted_once() {
        let guard = ReplayGuard::default();
        assert_eq!(guard.first_use("v0=ab", 100, 100), Ok(()));
        assert_eq!(guard.first_use("v0=ab", 100, 101), Err(SignatureError::Replayed));
        assert_eq!(guard.first_use("v0=cd", 100, 101), Ok(()));
    }
}
