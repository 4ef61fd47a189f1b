//! The gateway's request view, read leniently: the client only needs a few
//! fields and must keep working when the server adds more.

use std::time::Duration;

use countersign_core::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// `GET /v1/actions/{id}` and the answers of approve / deny / release.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RequestView {
    pub id: String,
    pub status: String,
    pub kind: String,
    pub resource: String,
    pub payload: Value,
    pub fingerprint: Option<String>,
    pub reason: Option<String>,
    pub policies: Vec<String>,
    pub justification: Option<String>,
    pub on_behalf_of: Option<String>,
    pub labels: Vec<String>,
    /// Who asked: `"agent:bot"`, or `{"kind": "agent", "name": "bot"}`.
    pub principal: Value,
    pub requester: Value,
    pub requirements: Vec<RequirementView>,
    pub approvals: Vec<VoteView>,
    pub denials: Vec<VoteView>,
    pub comments: Vec<VoteView>,
    pub created_at: Option<String>,
    pub expires_at: Option<String>,
    pub release_by: Option<String>,
    pub outcome: Value,
}

/// The `approval` part of the answer to `POST /v1/actions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApprovalView {
    pub requirements: Vec<RequirementView>,
    pub expires_at: Option<String>,
}

/// The answer to `POST /v1/actions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Submitted {
    pub id: String,
    pub status: String,
    pub fingerprint: Option<String>,
    pub reason: Option<String>,
    pub policies: Vec<String>,
    pub approval: Option<ApprovalView>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RequirementView {
    pub policy: String,
    pub groups: Vec<String>,
    pub quorum: u64,
    /// A count, or the list of approvals that count.
    pub approvals: Value,
}

impl RequirementView {
    pub fn approvals_count(&self) -> u64 {
        match &self.approvals {
            Value::Number(n) => n.as_u64().unwrap_or(0),
            Value::Array(items) => u64::try_from(items.len()).unwrap_or(u64::MAX),
            _ => 0,
        }
    }

    /// `prod-needs-sre: 0/1 from sre`
    pub fn describe(&self) -> String {
        format!("{}: {}/{} from {}", self.policy, self.approvals_count(), self.quorum.max(1), self.groups.join(" or "))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VoteView {
    pub by: Value,
    pub at: Option<String>,
    pub comment: Option<String>,
    pub text: Option<String>,
}

impl VoteView {
    pub fn who(&self) -> String {
        principal_name(&self.by)
    }

    pub fn note(&self) -> Option<&str> {
        self.comment.as_deref().or(self.text.as_deref()).filter(|t| !t.is_empty())
    }
}

impl RequestView {
    pub fn requester(&self) -> String {
        if self.requester.is_null() {
            principal_name(&self.principal)
        } else {
            principal_name(&self.requester)
        }
    }

    pub fn progress(&self) -> (u64, u64) {
        progress(&self.requirements)
    }
}

/// Approvals counted so far and approvals needed, over all requirements.
pub fn progress(requirements: &[RequirementView]) -> (u64, u64) {
    requirements
        .iter()
        .fold((0, 0), |(have, need), r| (have + r.approvals_count().min(r.quorum.max(1)), need + r.quorum.max(1)))
}

/// `agent:bot` from either a string or a `{kind, name}` object.
pub fn principal_name(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) => {
            match (map.get("kind").and_then(Value::as_str), map.get("name").and_then(Value::as_str)) {
                (Some(kind), Some(name)) => format!("{kind}:{name}"),
                (None, Some(name)) => name.to_owned(),
                _ => value.to_string(),
            }
        }
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// Parses an RFC 3339 time from the API.
pub fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    text.and_then(|t| Timestamp::parse_rfc3339(t).ok())
}

/// How long from `now` until `at` (zero once it has passed).
pub fn until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::from_millis(u64::try_from(at.0.saturating_sub(now.0)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_views_leniently() {
        let view: RequestView = serde_json::from_value(json!({
            "id": "r1", "status": "pending", "kind": "shell.exec", "resource": "prod-web",
            "principal": {"kind": "agent", "name": "bot"},
            "requirements": [{"policy": "p", "groups": ["sre"], "quorum": 2, "approvals": 1}],
            "approvals": [{"by": "user:alice", "at": "2026-01-01T00:00:00Z"}],
            "unknown_future_field": true
        }))
        .unwrap();
        assert_eq!(view.requester(), "agent:bot");
        assert_eq!(view.progress(), (1, 2));
        assert_eq!(view.approvals[0].who(), "user:alice");
        assert_eq!(view.requirements[0].describe(), "p: 1/2 from sre");
    }

    #[test]
    fn approvals_may_be_a_list() {
        let r: RequirementView =
            serde_json::from_value(json!({"policy": "p", "groups": [], "quorum": 1, "approvals": [{}, {}]})).unwrap();
        assert_eq!(r.approvals_count(), 2);
    }
}
