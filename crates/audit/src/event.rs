//! Audit events: the draft a component records, and the sealed event with
//! its place in the chain.

use countersign_core::events::{Caused, Event, Parsed};
use countersign_core::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// An event before it has a place in the chain: who caused it, and what
/// happened, as a typed [`Event`] (producers never spell a kind).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    /// Who caused it: `agent:NAME`, `user:NAME`, `system`, or an outside
    /// account (`cli:USER`, `slack:ACCOUNT`, `anonymous`).
    actor: String,
    content: Content,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    any(test, feature = "testing"),
    expect(
        clippy::large_enum_variant,
        reason = "only tests hold the small variant; boxing every event would cost production drafts an allocation"
    )
)]
enum Content {
    Event(Event),
    /// Any kind and body, for tests of the chain and the stores.
    #[cfg(any(test, feature = "testing"))]
    Raw {
        kind: String,
        body: Value,
    },
}

impl AuditDraft {
    pub fn new(actor: impl Into<String>, event: Event) -> Self {
        Self { actor: actor.into(), content: Content::Event(event) }
    }

    /// A draft of any kind and body, for tests of the chain and the stores
    /// (feature `testing`); the gateway records [`Event`]s only.
    #[cfg(any(test, feature = "testing"))]
    pub fn raw(actor: impl Into<String>, kind: impl Into<String>, body: Value) -> Self {
        Self { actor: actor.into(), content: Content::Raw { kind: kind.into(), body } }
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The kind stored in the event's `type`.
    pub fn kind(&self) -> &str {
        match &self.content {
            Content::Event(event) => event.kind(),
            #[cfg(any(test, feature = "testing"))]
            Content::Raw { kind, .. } => kind,
        }
    }

    /// The event, unless this is a raw test draft.
    pub fn event(&self) -> Option<&Event> {
        match &self.content {
            Content::Event(event) => Some(event),
            #[cfg(any(test, feature = "testing"))]
            Content::Raw { .. } => None,
        }
    }

    /// The body as JSON, before canonicalisation.
    pub fn body(&self) -> Result<Value, AuditError> {
        match &self.content {
            Content::Event(event) => {
                event.body().map_err(|e| AuditError::Encode { kind: event.kind(), reason: e.to_string() })
            }
            #[cfg(any(test, feature = "testing"))]
            Content::Raw { body, .. } => Ok(body.clone()),
        }
    }
}

impl From<Caused> for AuditDraft {
    fn from(caused: Caused) -> Self {
        Self::new(caused.actor.to_string(), caused.event)
    }
}

/// A sealed event. `body` holds canonical (JCS) JSON text, exactly the
/// bytes that were hashed, so verification never re-encodes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    pub time: Timestamp,
    pub actor: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An event that could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("the event body cannot be canonicalised: {0}")]
    Canonical(String),
    #[error("the `{kind}` event body cannot be encoded: {reason}")]
    Encode { kind: &'static str, reason: String },
}

impl AuditEvent {
    /// Canonicalises a body to the text that is stored and hashed.
    pub fn canonical_body(body: &Value) -> Result<String, AuditError> {
        serde_json_canonicalizer::to_string(body).map_err(|e| AuditError::Canonical(e.to_string()))
    }

    /// The hash this event must carry, computed from its other fields.
    pub fn compute_hash(&self) -> String {
        compute_hash(self.seq, self.time, &self.actor, &self.kind, &self.body, &self.prev_hash)
    }

    /// The canonical (JCS) bytes of the event without its own `hash`:
    /// exactly what the chain hashes, and the leaf of the Merkle tree.
    pub fn canonical_text(&self) -> String {
        canonical_text(self.seq, self.time, &self.actor, &self.kind, &self.body, &self.prev_hash)
    }

    /// The event's RFC 9162 leaf hash in the audit tree.
    pub fn leaf_hash(&self) -> crate::merkle::Hash {
        crate::merkle::leaf_hash(self.canonical_text().as_bytes())
    }

    /// The event read back into its typed form, or kept as stored when this
    /// version cannot read it.
    pub fn parsed(&self) -> Parsed {
        Parsed::read(&self.kind, &self.body)
    }

    /// The body as JSON, for API clients and exports.
    pub fn body_value(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The event as API clients see it, with the body as a JSON object.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "type": self.kind,
            "body": self.body_value(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        })
    }
}

/// SHA-256 over the JCS encoding of the event's fields.
pub(crate) fn compute_hash(seq: u64, time: Timestamp, actor: &str, kind: &str, body: &str, prev_hash: &str) -> String {
    hex::encode(Sha256::digest(canonical_text(seq, time, actor, kind, body, prev_hash).as_bytes()))
}

/// The JCS encoding of the event's fields: what the chain hashes and what
/// the Merkle tree's leaf is. The body is already canonical, and JCS
/// escapes strings exactly as `serde_json` does, so the canonical object is
/// assembled directly, keys in JCS order.
pub(crate) fn canonical_text(
    seq: u64,
    time: Timestamp,
    actor: &str,
    kind: &str,
    body: &str,
    prev_hash: &str,
) -> String {
    let mut text = String::with_capacity(body.len() + actor.len() + 160);
    text.push_str("{\"actor\":");
    push_json_string(&mut text, actor);
    text.push_str(",\"body\":");
    text.push_str(body);
    text.push_str(",\"prev_hash\":");
    push_json_string(&mut text, prev_hash);
    text.push_str(",\"seq\":");
    text.push_str(&seq.to_string());
    text.push_str(",\"time\":");
    push_json_string(&mut text, &time.to_rfc3339());
    text.push_str(",\"type\":");
    push_json_string(&mut text, kind);
    text.push('}');
    text
}

fn push_json_string(out: &mut String, value: &str) {
    match serde_json::to_string(value) {
        Ok(quoted) => out.push_str(&quoted),
        // Serialising a &str cannot fail; an empty string keeps the hash
        // deterministic should that ever change.
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::events::Cancelled;
    use serde_json::json;

    #[test]
    fn a_typed_draft_seals_exactly_as_its_json_would() {
        let typed = AuditDraft::new("agent:bot", Event::ActionCancelled(Cancelled { id: "r1".into() }));
        let raw = AuditDraft::raw("agent:bot", "action.cancelled", json!({"id": "r1"}));
        let seal = |draft: &AuditDraft| crate::ChainHead::default().seal(draft, Timestamp(5)).unwrap();
        assert_eq!(seal(&typed), seal(&raw));
    }

    #[test]
    fn hash_equals_jcs_of_the_whole_event() {
        let body = AuditEvent::canonical_body(&json!({"z": 1, "a": "é\n\"", "n": [1.5, null]})).unwrap();
        let time = Timestamp(1_790_000_000_123);
        let actor = "agent:bot\u{1}";
        let expected_text = serde_json_canonicalizer::to_string(&json!({
            "seq": 7, "time": time.to_rfc3339(), "actor": actor, "type": "action.submitted",
            "body": serde_json::from_str::<Value>(&body).unwrap(), "prev_hash": "ab",
        }))
        .unwrap();
        let expected = hex::encode(Sha256::digest(expected_text.as_bytes()));
        assert_eq!(compute_hash(7, time, actor, "action.submitted", &body, "ab"), expected);
    }
}
