//! Messages the proxy refused (from the client) or dropped (from the
//! upstream), as they are audited: what the proxy says about them, never
//! what they said, so that a record stays small whatever was sent (the
//! message itself is only measured and hashed).
//!
//! A session that keeps sending such messages is audited a burst at a
//! time ([`Budget`]); what is left out is counted into the next record.

use std::time::{Duration, Instant};

use countersign_core::events::{Event, MessageRefusal, Rejection};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::jsonrpc::From;

/// The audit event kind of a message dropped from the upstream
/// ([`Event::McpUpstreamMessageDropped`]); refused client messages are
/// `request.rejected`, as elsewhere on the gateway.
pub const UPSTREAM_DROPPED: &str = "mcp.upstream_message_dropped";

/// One refused or dropped message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The upstream's name.
    pub upstream: String,
    /// Who sent it.
    pub from: From,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// Why, in the proxy's words.
    pub reason: String,
    /// Its size in bytes, and the hex SHA-256 of its text.
    pub bytes: usize,
    pub sha256: String,
    /// Records left out before this one (see [`Budget`]).
    pub suppressed: u64,
}

/// The longest reason kept, in characters.
const MAX_REASON_CHARS: usize = 200;
/// The longest upstream name kept, in characters.
const MAX_NAME_CHARS: usize = 128;

impl Refusal {
    pub fn new(upstream: &str, from: From, transport: &'static str, reason: &str, text: &[u8]) -> Self {
        Self {
            upstream: upstream.chars().take(MAX_NAME_CHARS).collect(),
            from,
            transport,
            reason: reason.chars().take(MAX_REASON_CHARS).collect(),
            bytes: text.len(),
            sha256: hex::encode(Sha256::digest(text)),
            suppressed: 0,
        }
    }

    /// As [`Refusal::new`] for a message too large to have been kept:
    /// its size is known, its content is not.
    pub fn oversized(upstream: &str, from: From, transport: &'static str, bytes: usize) -> Self {
        let mut refusal = Self::new(upstream, from, transport, &oversized_reason(), b"");
        refusal.bytes = bytes;
        refusal.sha256 = String::new();
        refusal
    }

    /// The audit event: `request.rejected` for a client's message,
    /// `mcp.upstream_message_dropped` for an upstream's.
    pub fn event(&self) -> Event {
        let message = MessageRefusal {
            path: format!("/mcp/{}", self.upstream),
            transport: self.transport.to_owned(),
            code: "invalid_message".to_owned(),
            message: self.reason.clone(),
            bytes: u64::try_from(self.bytes).unwrap_or(u64::MAX),
            sha256: (!self.sha256.is_empty()).then(|| self.sha256.clone()),
            suppressed_before: (self.suppressed > 0).then_some(self.suppressed),
        };
        match self.from {
            From::Client => Event::RequestRejected(Rejection::Message(message)),
            From::Upstream => Event::McpUpstreamMessageDropped(message),
        }
    }

    /// The audit event kind.
    pub fn kind(&self) -> &'static str {
        self.event().kind()
    }

    /// The audit event body.
    pub fn body(&self) -> Value {
        // Serialising these plain fields cannot fail.
        self.event().body().unwrap_or(Value::Null)
    }

    /// Reads a refusal a `countersign mcp` proxy sent the gateway, within
    /// the same bounds as one made here. `None` when it is not one.
    pub fn from_report(upstream: &str, body: &Value) -> Option<Self> {
        let from = match body.get("from")?.as_str()? {
            "client" => From::Client,
            "upstream" => From::Upstream,
            _ => return None,
        };
        let reason = body.get("reason")?.as_str()?;
        let bytes = usize::try_from(body.get("bytes")?.as_u64()?).ok()?;
        let sha256 = body.get("sha256").and_then(Value::as_str).unwrap_or("");
        if !(sha256.is_empty() || (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()))) {
            return None;
        }
        let mut refusal = Self::new(upstream, from, "stdio", reason, b"");
        refusal.bytes = bytes;
        refusal.sha256 = sha256.to_ascii_lowercase();
        refusal.suppressed = body.get("suppressed_before").and_then(Value::as_u64).unwrap_or(0);
        Some(refusal)
    }

    /// What a `countersign mcp` proxy sends the gateway.
    pub fn report(&self) -> Value {
        json!({
            "upstream": self.upstream,
            "from": match self.from { From::Client => "client", From::Upstream => "upstream" },
            "reason": self.reason,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "suppressed_before": self.suppressed,
        })
    }
}

/// Why a message too large to read was refused.
pub fn oversized_reason() -> String {
    format!("a message larger than {} bytes; discarded unread", crate::jsonrpc::MAX_MESSAGE_BYTES)
}

/// How many refusals of one session are audited: a burst, then one per
/// interval; the rest are counted into the next record.
#[derive(Debug)]
pub struct Budget {
    tokens: u32,
    refilled: Instant,
    suppressed: u64,
}

/// Records a session may write at once.
const BURST: u32 = 64;
/// One more record per this much time.
const REFILL: Duration = Duration::from_secs(5);

impl Default for Budget {
    fn default() -> Self {
        Self { tokens: BURST, refilled: Instant::now(), suppressed: 0 }
    }
}

impl Budget {
    /// Whether `refusal` is to be recorded now; if so, it carries the
    /// count of those left out before it.
    pub fn admit(&mut self, refusal: &mut Refusal) -> bool {
        let now = Instant::now();
        while self.tokens < BURST && now.duration_since(self.refilled) >= REFILL {
            self.tokens += 1;
            self.refilled += REFILL;
        }
        if self.tokens == BURST {
            self.refilled = now;
        }
        if self.tokens == 0 {
            self.suppressed += 1;
            return false;
        }
        self.tokens -= 1;
        refusal.suppressed = std::mem::take(&mut self.suppressed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kinds_are_the_events_kinds() {
        let upstream = Refusal::new("u", From::Upstream, "stdio", "r", b"x");
        assert_eq!(upstream.kind(), UPSTREAM_DROPPED);
        assert_eq!(Refusal::new("u", From::Client, "stdio", "r", b"x").kind(), "request.rejected");
        assert_eq!(upstream.body()["sha256"], hex::encode(Sha256::digest(b"x")));
        assert!(Refusal::oversized("u", From::Upstream, "http", 9).body().get("sha256").is_none());
    }

    #[test]
    fn records_are_bounded_whatever_was_sent() {
        let huge = "x".repeat(1_000_000);
        let refusal = Refusal::new(&huge, From::Client, "stdio", &huge, huge.as_bytes());
        assert!(refusal.body().to_string().len() < 1024, "{}", refusal.body());
        assert_eq!(refusal.bytes, 1_000_000);
        let back = Refusal::from_report(&huge, &refusal.report()).unwrap();
        assert!(back.body().to_string().len() < 1024);
        assert!(
            Refusal::from_report("u", &json!({"from": "client", "reason": "r", "bytes": 1, "sha256": "zz"})).is_none()
        );
    }

    #[test]
    fn a_flood_is_audited_a_burst_at_a_time_and_counted() {
        let mut budget = Budget::default();
        let mut admitted = 0;
        for _ in 0..100 {
            let mut r = Refusal::new("u", From::Upstream, "stdio", "r", b"");
            if budget.admit(&mut r) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, BURST);
        assert_eq!(budget.suppressed, 100 - u64::from(BURST));
        budget.refilled -= REFILL;
        let mut r = Refusal::new("u", From::Upstream, "stdio", "r", b"");
        assert!(budget.admit(&mut r));
        assert_eq!(r.suppressed, 100 - u64::from(BURST));
    }
}
