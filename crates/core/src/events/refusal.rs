//! The events of refused calls: bounded refusal records, their counts, and
//! MCP messages refused or dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Timestamp;

/// A refusal record as `countersign_audit::RefusalRecord` bounds it: keys
/// the producer chose, client text cut to size (with `<key>_bytes` and
/// `<key>_sha256` of what was cut), fields past the budget dropped and
/// counted in `dropped_fields`. Which keys survive depends on what the
/// client sent, so the record stays the open object it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefusalFields(pub Map<String, Value>);

impl RefusalFields {
    /// The gateway's code for the refusal, if the record kept it.
    pub fn code(&self) -> Option<&str> {
        self.0.get("code").and_then(Value::as_str)
    }
}

/// `request.rejected`: a refused call, or an MCP message a client sent
/// that the proxy refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rejection {
    Message(MessageRefusal),
    Call(RefusalFields),
}

/// An MCP message refused or dropped: what the proxy says of it, never
/// what it said (`countersign_mcp::refusal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Strict, so that a call's refusal record never reads as a message.
#[serde(deny_unknown_fields)]
pub struct MessageRefusal {
    /// `/mcp/<upstream>`.
    pub path: String,
    /// `stdio` or `http`.
    pub transport: String,
    pub code: String,
    pub message: String,
    /// The message's size.
    pub bytes: u64,
    /// The hex SHA-256 of its text (absent when it was too large to read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Records of the session left out before this one (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_before: Option<u64>,
}

/// `refusals.aggregated`: refusals of one (source, actor) in one window,
/// counted by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalsAggregated {
    pub source: String,
    pub count: u64,
    pub reasons: BTreeMap<String, u64>,
    pub first: Timestamp,
    pub last: Timestamp,
    pub window_seconds: u64,
}
