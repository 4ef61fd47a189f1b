//! One audit event as every sink exports it: the event with its place in
//! the chain (sequence number, hash, previous hash), its OCSF mapping, and
//! the latest signed checkpoint, so that a SIEM copy can be checked against
//! the log without trusting the SIEM.

use countersign_audit::AuditEvent;
use serde_json::{json, Value};

use crate::ocsf::{self, Mapping};

/// The store's key-value namespace and key of the latest signed checkpoint
/// (C2SP signed-note text), written by the audit checkpointer.
pub const CHECKPOINT_NAMESPACE: &str = "audit";
pub const CHECKPOINT_KEY: &str = "checkpoint";

/// An audit event ready to be formatted.
#[derive(Debug, Clone)]
pub struct Exported {
    pub event: AuditEvent,
    pub mapping: Mapping,
    /// The latest signed checkpoint when the event was sent, if any.
    pub checkpoint: Option<String>,
    /// The origin host name.
    pub host: String,
    body: Value,
}

impl Exported {
    pub fn new(event: AuditEvent, checkpoint: Option<String>, host: &str) -> Self {
        let mapping = ocsf::map(&event.parsed());
        let body = event.body_value();
        Self { event, mapping, checkpoint, host: host.to_owned(), body }
    }

    /// The event's body as JSON.
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// The event as the API shows it (`seq`, `time`, `actor`, `type`,
    /// `body`, `prev_hash`, `hash`), with its severity, whether it is a
    /// refusal, and the latest checkpoint: the JSON format's message, HEC's and OTLP's body, OCSF's
    /// `unmapped`. The body's canonical JSON (RFC 8785) is the text that was
    /// hashed, so the hash can be recomputed from the copy.
    pub fn envelope(&self) -> Value {
        let mut value = self.event.to_json();
        if let Some(object) = value.as_object_mut() {
            object.insert("severity".to_owned(), json!(self.mapping.severity));
            object.insert("refusal".to_owned(), json!(self.mapping.refusal));
            object.insert("checkpoint".to_owned(), json!(self.checkpoint));
        }
        value
    }

    /// One line saying what happened.
    pub fn summary(&self) -> String {
        let mut line = format!("{} by {}", self.event.kind, self.event.actor);
        if let Some(id) = &self.mapping.request {
            line.push_str(&format!(" (request {id})"));
        }
        line
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use countersign_core::Timestamp;

    /// An exported event with a made-up chain position.
    pub(crate) fn exported(seq: u64, kind: &str, actor: &str, body: &str) -> Exported {
        let mut event = AuditEvent {
            seq,
            time: Timestamp::from_millis(1_765_000_000_000 + i64::try_from(seq).unwrap()),
            actor: actor.to_owned(),
            kind: kind.to_owned(),
            body: body.to_owned(),
            prev_hash: "0".repeat(64),
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        Exported::new(event, Some("example.org/log\n1\nAAAA\n\n— example.org/log sig\n".to_owned()), "gw1")
    }

    #[test]
    fn the_envelope_carries_the_chain_and_checkpoint() {
        let e = exported(7, "action.cancelled", "agent:bot", r#"{"id":"r1"}"#);
        let v = e.envelope();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["hash"], e.event.hash);
        assert_eq!(v["body"]["id"], "r1");
        assert!(v["checkpoint"].as_str().unwrap().starts_with("example.org/log"));
        assert_eq!(e.summary(), "action.cancelled by agent:bot (request r1)");
    }
}
