//! The one shape of a refusal's audit record, bounded in size whatever the
//! client sent.
//!
//! A refused call costs its sender nothing, so its record must not cost the
//! gateway much either: every value the client chose (path, query, header
//! text, token prefix, message text quoting input, …) is cut to a small
//! limit, measured as the JSON-escaped text that is stored, and when it is
//! cut the record also carries the full value's length and SHA-256, so the
//! same input can still be recognised. Keys are `&'static str` chosen by the
//! producer, never by the client, and a per-record budget caps the sum, so
//! no record's body exceeds [`MAX_REFUSAL_BODY_BYTES`].

use countersign_core::events::{AttemptRefused, Event, RefusalFields, Rejection};
use countersign_core::text::prefix_within;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::AuditDraft;

/// Which refusal a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// A call the HTTP API, the MCP endpoint or the console refused before
    /// or after its handler (authentication, bad input, unknown route, …):
    /// `request.rejected`.
    RequestRejected,
    /// A chat integration refused an inbound call (bad signature, bad
    /// token): `integration.rejected`.
    IntegrationRejected,
    /// A login form refused an attempt: `attempt.refused`.
    AttemptRefused,
}

impl RefusalKind {
    fn event(self, fields: RefusalFields) -> Event {
        match self {
            Self::RequestRejected => Event::RequestRejected(Rejection::Call(fields)),
            Self::IntegrationRejected => Event::IntegrationRejected(fields),
            Self::AttemptRefused => Event::AttemptRefused(AttemptRefused::Record(fields)),
        }
    }
}

/// The most bytes one client-chosen text may take in a record (escaped).
pub const MAX_TEXT_BYTES: usize = 160;
/// The most bytes of client-chosen text one record may hold in all.
const TEXT_BUDGET_BYTES: usize = 400;
/// The largest canonical body a refusal record can have.
pub const MAX_REFUSAL_BODY_BYTES: usize = 1024;
/// The longest actor name kept in a refusal record.
const MAX_ACTOR_BYTES: usize = 128;
/// The most fields of any sort one record holds; later ones are dropped and
/// counted in `dropped_fields`.
const MAX_FIELDS: usize = 12;

/// A refusal's audit record under construction. Build it with the refusal's
/// kind, who was refused, and its fields; then [`RefusalRecord::into_draft`].
#[derive(Debug, Clone, PartialEq)]
pub struct RefusalRecord {
    kind: RefusalKind,
    actor: String,
    body: Map<String, Value>,
    text_budget: usize,
    dropped: u64,
}

impl RefusalRecord {
    /// A record of kind `kind` for `actor` (`anonymous` when unknown). The
    /// actor is kept as given if short, cut otherwise.
    pub fn new(kind: RefusalKind, actor: &str) -> Self {
        let (actor, _) = clip(actor, MAX_ACTOR_BYTES);
        Self { kind, actor, body: Map::new(), text_budget: TEXT_BUDGET_BYTES, dropped: 0 }
    }

    /// A value the gateway chose (an error code, an integration name).
    pub fn code(mut self, key: &'static str, value: &'static str) -> Self {
        self.put(key, Value::String(value.to_owned()));
        self
    }

    /// A number the gateway computed (a status, a count).
    pub fn number(mut self, key: &'static str, value: u64) -> Self {
        self.put(key, Value::from(value));
        self
    }

    /// A text the client chose, or that may quote it: kept whole if short,
    /// else cut, with `<key>_bytes` and `<key>_sha256` of the whole.
    pub fn text(mut self, key: &'static str, value: &str) -> Self {
        let limit = MAX_TEXT_BYTES.min(self.text_budget);
        let (kept, cut) = clip(value, limit);
        self.text_budget = self.text_budget.saturating_sub(escaped_len(&kept));
        self.put(key, Value::String(kept));
        if cut {
            self.put_derived(key, "_bytes", Value::from(value.len() as u64));
            self.put_derived(key, "_sha256", Value::String(hex::encode(Sha256::digest(value.as_bytes()))));
        }
        self
    }

    /// As [`RefusalRecord::text`] for an optional value (absent: no field).
    pub fn text_opt(self, key: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.text(key, value),
            None => self,
        }
    }

    fn put(&mut self, key: &'static str, value: Value) {
        if self.body.len() >= MAX_FIELDS {
            self.dropped += 1;
            return;
        }
        self.body.insert(key.to_owned(), value);
    }

    fn put_derived(&mut self, key: &'static str, suffix: &'static str, value: Value) {
        if self.body.len() >= MAX_FIELDS {
            self.dropped += 1;
            return;
        }
        self.body.insert(format!("{key}{suffix}"), value);
    }

    /// The kind this record will have.
    pub fn kind(&self) -> RefusalKind {
        self.kind
    }

    /// The audit draft.
    pub fn into_draft(mut self) -> AuditDraft {
        // The limits above keep ordinary records far below the cap; this
        // makes the cap hold for any keys a producer may pick.
        while encoded_len(&self.body) > MAX_REFUSAL_BODY_BYTES.saturating_sub(32) {
            let Some(last) = self.body.keys().next_back().cloned() else {
                break;
            };
            self.body.remove(&last);
            self.dropped += 1;
        }
        if self.dropped > 0 {
            self.body.insert("dropped_fields".to_owned(), Value::from(self.dropped));
        }
        AuditDraft::new(self.actor, self.kind.event(RefusalFields(self.body)))
    }
}

/// The longest prefix of `value` whose JSON-escaped form fits in `limit`
/// bytes (cut on a character boundary, by
/// [`countersign_core::text::prefix_within`]), and whether anything was
/// cut. No marker: a cut value is recognised by its `_bytes` and `_sha256`.
fn clip(value: &str, limit: usize) -> (String, bool) {
    let kept = prefix_within(value, limit, escaped_char_len);
    (kept.to_owned(), kept.len() < value.len())
}

fn encoded_len(body: &Map<String, Value>) -> usize {
    // The same escapes and number forms as the canonical text, so the same
    // length; key order does not change it.
    serde_json::to_string(body).map_or(usize::MAX, |text| text.len())
}

fn escaped_len(value: &str) -> usize {
    value.chars().map(escaped_char_len).sum()
}

/// How many bytes `c` takes in canonical (JCS) JSON string text.
fn escaped_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if c < ' ' => 6,
        c => c.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditEvent;
    use proptest::prelude::*;

    fn size(draft: &AuditDraft) -> usize {
        AuditEvent::canonical_body(&draft.body().unwrap()).unwrap().len() + draft.actor().len() + draft.kind().len()
    }

    #[test]
    fn short_values_are_kept_whole_and_long_ones_cut_and_hashed() {
        let path = format!("/{}", "a".repeat(65_000));
        let draft = RefusalRecord::new(RefusalKind::RequestRejected, "anonymous")
            .code("code", "unauthenticated")
            .text("method", "GET")
            .text("path", &path)
            .into_draft();
        assert_eq!(draft.kind(), "request.rejected");
        let body = draft.body().unwrap();
        assert_eq!(body["method"], "GET");
        assert!(body.get("method_sha256").is_none());
        let kept = body["path"].as_str().unwrap();
        assert_eq!(kept.len(), MAX_TEXT_BYTES);
        assert!(path.starts_with(kept));
        assert_eq!(body["path_bytes"], 65_001);
        assert_eq!(body["path_sha256"], hex::encode(Sha256::digest(path.as_bytes())));
        assert!(size(&draft) <= MAX_REFUSAL_BODY_BYTES);
    }

    #[test]
    fn escapes_count_against_the_limit() {
        let draft =
            RefusalRecord::new(RefusalKind::RequestRejected, "x").text("ua", &"\u{1}".repeat(10_000)).into_draft();
        let canonical = AuditEvent::canonical_body(&draft.body().unwrap()).unwrap();
        assert!(canonical.len() <= MAX_REFUSAL_BODY_BYTES, "{}", canonical.len());
        assert_eq!(draft.body().unwrap()["ua_bytes"], 10_000);
    }

    #[test]
    fn many_fields_stay_bounded() {
        let big = "é\"".repeat(50_000);
        let keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"];
        let mut record = RefusalRecord::new(RefusalKind::RequestRejected, &big);
        for key in keys {
            record = record.text(key, &big);
        }
        let draft = record.into_draft();
        assert!(size(&draft) <= MAX_REFUSAL_BODY_BYTES, "{}", size(&draft));
        assert!(draft.body().unwrap()["dropped_fields"].as_u64().unwrap() > 0);
    }

    proptest! {
        #[test]
        fn any_input_gives_a_bounded_record(
            actor in ".{0,400}",
            texts in proptest::collection::vec("\\PC{0,3000}|[\\x00-\\x1f\"\\\\]{0,3000}", 0..16),
        ) {
            let keys = ["method", "path", "query", "user_agent", "token", "message", "origin", "reason",
                        "k8", "k9", "k10", "k11", "k12", "k13", "k14", "k15"];
            let mut record =
                RefusalRecord::new(RefusalKind::AttemptRefused, &actor).code("code", "x").number("status", 401);
            for (key, text) in keys.iter().zip(&texts) {
                record = record.text(key, text);
            }
            let draft = record.into_draft();
            prop_assert!(size(&draft) <= MAX_REFUSAL_BODY_BYTES + MAX_ACTOR_BYTES + 32);
            prop_assert!(AuditEvent::canonical_body(&draft.body().unwrap()).unwrap().len() <= MAX_REFUSAL_BODY_BYTES);
        }
    }
}
