//! The action fingerprint: what an approval authorises, and nothing else.
//!
//! `sha256:` + hex SHA-256 of the RFC 8785 (JCS) canonical JSON of
//! `{kind, resource, payload, principal, on_behalf_of}`. JCS makes the digest
//! independent of key order and number formatting, so two encodings of the
//! same action agree, and any change to what runs changes the digest.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{Action, PrincipalRef};

/// `sha256:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

/// Why a fingerprint could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the action cannot be canonicalised: {0}")]
pub struct FingerprintError(String);

impl Fingerprint {
    /// Computes the fingerprint of `action` submitted by `principal`.
    pub fn of(action: &Action, principal: &PrincipalRef) -> Result<Self, FingerprintError> {
        let subject = json!({
            "kind": action.kind,
            "resource": action.resource,
            "payload": action.payload,
            "principal": principal.to_string(),
            "on_behalf_of": action.on_behalf_of.as_ref().map_or(Value::Null, |o| Value::String(o.clone())),
        });
        let canonical = serde_json_canonicalizer::to_vec(&subject).map_err(|e| FingerprintError(e.to_string()))?;
        Ok(Self(format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))))
    }

    /// Wraps a stored value.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn action(payload: Value) -> Action {
        Action {
            kind: "sql.execute".into(),
            resource: "prod-db".into(),
            payload,
            on_behalf_of: Some("alice".into()),
            justification: Some("why".into()),
            labels: vec!["pii".into()],
            context: serde_json::Map::new(),
        }
    }

    #[test]
    fn has_the_documented_shape() {
        let fp = Fingerprint::of(&action(json!({"statement": "SELECT 1"})), &PrincipalRef::agent("bot"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let hex = fp.as_str().strip_prefix("sha256:").unwrap_or_default();
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn matches_an_independent_canonical_encoding() {
        // The JCS form written out by hand: keys sorted, no whitespace.
        let canonical = r#"{"kind":"sql.execute","on_behalf_of":"alice","payload":{"a":1,"b":[true,null]},"principal":"agent:bot","resource":"prod-db"}"#;
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes())));
        let fp = Fingerprint::of(&action(json!({"b": [true, null], "a": 1.0})), &PrincipalRef::agent("bot"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(fp.as_str(), expected);
    }

    #[test]
    fn ignores_justification_labels_and_context() {
        let a = action(json!({"x": 1}));
        let mut b = a.clone();
        b.justification = Some("different".into());
        b.labels.clear();
        b.context.insert("confidence".into(), json!(0.1));
        let p = PrincipalRef::agent("bot");
        assert_eq!(Fingerprint::of(&a, &p), Fingerprint::of(&b, &p));
    }

    #[test]
    fn binds_principal_and_on_behalf_of() {
        let a = action(json!({"x": 1}));
        let mut b = a.clone();
        b.on_behalf_of = Some("mallory".into());
        let p = PrincipalRef::agent("bot");
        assert_ne!(Fingerprint::of(&a, &p), Fingerprint::of(&b, &p));
        assert_ne!(Fingerprint::of(&a, &p), Fingerprint::of(&a, &PrincipalRef::agent("bot2")));
        assert_ne!(Fingerprint::of(&a, &p), Fingerprint::of(&a, &PrincipalRef::user("bot")));
    }

    proptest! {
        #[test]
        fn any_payload_change_changes_the_fingerprint(x in any::<i64>(), y in any::<i64>(), s in ".*", t in ".*") {
            prop_assume!(x != y || s != t);
            let p = PrincipalRef::agent("bot");
            let a = Fingerprint::of(&action(json!({"n": x, "s": s})), &p);
            let b = Fingerprint::of(&action(json!({"n": y, "s": t})), &p);
            prop_assert_ne!(a, b);
        }

        #[test]
        fn key_order_does_not_matter(x in any::<i64>(), s in ".*") {
            let p = PrincipalRef::agent("bot");
            let a: Value = serde_json::from_str(&format!(r#"{{"n":{x},"s":{}}}"#, Value::String(s.clone()))).unwrap_or_default();
            let b: Value = serde_json::from_str(&format!(r#"{{"s":{},"n":{x}}}"#, Value::String(s))).unwrap_or_default();
            prop_assert_eq!(Fingerprint::of(&action(a), &p), Fingerprint::of(&action(b), &p));
        }
    }
}
