//! An action an actor asks to perform, as submitted.
//!
//! `payload` is the exact thing that will run (a command, a statement, tool
//! arguments). It is kept verbatim: the fingerprint covers it, and the
//! reviewer sees it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::names::{self, NameError};

/// The most labels one action may carry.
pub const MAX_LABELS: usize = 64;
/// The longest kind, resource, label or on_behalf_of accepted.
pub const MAX_FIELD_LEN: usize = 512;
/// The longest justification accepted.
pub const MAX_JUSTIFICATION_LEN: usize = 4096;
/// The deepest JSON nesting accepted in payload and context.
pub const MAX_DEPTH: usize = 32;
/// The most JSON values (every scalar, array and object counts one)
/// accepted in payload and context together. A Terraform plan of a few
/// hundred resources stays well under it; a body of half a million tiny
/// values costs the policy engine about a second (see the README's
/// Security section).
pub const MAX_VALUES: usize = 100_000;

/// An action as an actor submits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// An open set: `shell.exec`, `sql.execute`, `http.request`, `mcp.tool_call`, …
    pub kind: String,
    /// Where the action lands, e.g. `prod-db`.
    pub resource: String,
    /// The exact thing to run.
    #[serde(default)]
    pub payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Free facts the actor states about itself, e.g. `{"confidence": 0.92}`.
    #[serde(default)]
    pub context: Map<String, Value>,
}

/// Why an action was refused before any policy looked at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("`{field}` must not be empty")]
    Empty { field: &'static str },
    #[error("`{field}` is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    /// The kind, resource or an identity named is not in its one
    /// accepted spelling (see [`crate::names`]).
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("`{field}` contains a control character")]
    ControlCharacter { field: &'static str },
    #[error("more than {MAX_LABELS} labels")]
    TooManyLabels,
    #[error("`{field}` is nested deeper than {MAX_DEPTH} levels")]
    TooDeep { field: &'static str },
    /// Every value costs the policy engine, the facts and the audit log
    /// work; a body within the size limit can still hold half a million
    /// of them.
    #[error("the payload and context hold more than {MAX_VALUES} JSON values")]
    TooManyValues,
    #[error("`{field}` uses the reserved key `{key}`")]
    ReservedKey { field: &'static str, key: String },
    #[error("`context.{key}` is written only by the gateway's own endpoints")]
    GatewayOnlyKey { key: &'static str },
}

/// Context keys that only the gateway's own entry points write, and that
/// reviewers read as the gateway's word (a database's impact preview on the
/// review card). A submitter who could set them would put words in the
/// gateway's mouth, so [`Action::check_submitter_claims`] refuses them.
pub const GATEWAY_CONTEXT_KEYS: [&str; 1] = ["impact_preview"];

/// JSON keys that Cedar's JSON format reads as entity or extension
/// escapes; letting them through would let a caller forge entity references.
const RESERVED_KEYS: [&str; 3] = ["__entity", "__extn", "__expr"];

impl Action {
    /// Checks the shape of a submitted action.
    pub fn validate(&self) -> Result<(), ActionError> {
        check_text("kind", &self.kind, MAX_FIELD_LEN, true)?;
        names::check_kind(&self.kind)?;
        check_text("resource", &self.resource, MAX_FIELD_LEN, true)?;
        names::check_resource(&self.resource)?;
        if let Some(obo) = &self.on_behalf_of {
            check_text("on_behalf_of", obo, MAX_FIELD_LEN, true)?;
            names::check_identity("on_behalf_of", obo)?;
        }
        if let Some(j) = &self.justification {
            check_text("justification", j, MAX_JUSTIFICATION_LEN, false)?;
        }
        if self.labels.len() > MAX_LABELS {
            return Err(ActionError::TooManyLabels);
        }
        for label in &self.labels {
            check_text("labels", label, MAX_FIELD_LEN, true)?;
        }
        let mut budget = MAX_VALUES;
        check_json("payload", &self.payload, 0, &mut budget)?;
        for value in self.context.values() {
            check_json("context", value, 1, &mut budget)?;
        }
        for key in self.context.keys() {
            check_key("context", key)?;
        }
        Ok(())
    }

    /// Checks what only an outside submitter may not say: an action sent
    /// through the API may not carry [`GATEWAY_CONTEXT_KEYS`]. (The
    /// gateway's endpoints build their actions themselves and do not call
    /// this.) Keys are compared exactly, as readers read them.
    pub fn check_submitter_claims(&self) -> Result<(), ActionError> {
        match GATEWAY_CONTEXT_KEYS.into_iter().find(|key| self.context.contains_key(*key)) {
            Some(key) => Err(ActionError::GatewayOnlyKey { key }),
            None => Ok(()),
        }
    }
}

fn check_text(field: &'static str, value: &str, max: usize, single_line: bool) -> Result<(), ActionError> {
    if value.trim().is_empty() {
        return Err(ActionError::Empty { field });
    }
    if value.chars().count() > max {
        return Err(ActionError::TooLong { field, max });
    }
    let multiline_whitespace = |c: char| matches!(c, '\n' | '\t' | '\r');
    let bad = |c: char| c.is_control() && (single_line || !multiline_whitespace(c));
    if value.chars().any(bad) {
        return Err(ActionError::ControlCharacter { field });
    }
    Ok(())
}

fn check_key(field: &'static str, key: &str) -> Result<(), ActionError> {
    if RESERVED_KEYS.contains(&key) {
        return Err(ActionError::ReservedKey { field, key: key.to_owned() });
    }
    Ok(())
}

/// Checks nesting, reserved keys and the number of values; `budget` is
/// what is left of [`MAX_VALUES`] for the whole action.
fn check_json(field: &'static str, value: &Value, depth: usize, budget: &mut usize) -> Result<(), ActionError> {
    if depth > MAX_DEPTH {
        return Err(ActionError::TooDeep { field });
    }
    *budget = budget.checked_sub(1).ok_or(ActionError::TooManyValues)?;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => Ok(()),
        Value::Array(items) => items.iter().try_for_each(|v| check_json(field, v, depth + 1, budget)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            check_key(field, k)?;
            check_json(field, v, depth + 1, budget)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Action {
        serde_json::from_value(json!({
            "kind": "sql.execute", "resource": "prod-db",
            "payload": {"statement": "DELETE FROM users WHERE id = 7"},
            "on_behalf_of": "alice", "justification": "ticket 42",
            "labels": ["pii"], "context": {"confidence": 0.92}
        }))
        .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn accepts_the_documented_example() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn rejects_unknown_fields() {
        let r: Result<Action, _> = serde_json::from_value(json!({"kind": "a", "resource": "b", "extra": 1}));
        assert!(r.is_err());
    }

    #[test]
    fn rejects_bad_fields() {
        let mut a = sample();
        a.kind = "".into();
        assert_eq!(a.validate(), Err(ActionError::Empty { field: "kind" }));
        let mut a = sample();
        a.kind = "rm -rf".into();
        assert!(matches!(a.validate(), Err(ActionError::Name(NameError::Kind(_)))));
        let mut a = sample();
        a.resource = "a\u{0}b".into();
        assert_eq!(a.validate(), Err(ActionError::ControlCharacter { field: "resource" }));
        for resource in ["PROD-web", " prod-web", "prod-web ", "prod\u{200b}-web", "ｐrod-web", "рrod-web"] {
            let mut a = sample();
            a.resource = resource.into();
            assert!(matches!(a.validate(), Err(ActionError::Name(NameError::Resource(_)))), "{resource:?}");
        }
        for obo in ["carol ", "carol\u{200b}", "c arol", "cаrol"] {
            let mut a = sample();
            a.on_behalf_of = Some(obo.into());
            assert!(matches!(a.validate(), Err(ActionError::Name(NameError::Identity { .. }))), "{obo:?}");
        }
        let mut a = sample();
        a.kind = "SQL.execute".into();
        assert!(matches!(a.validate(), Err(ActionError::Name(NameError::Kind(_)))));
        let mut a = sample();
        a.labels = vec!["x".into(); MAX_LABELS + 1];
        assert_eq!(a.validate(), Err(ActionError::TooManyLabels));
    }

    #[test]
    fn rejects_cedar_escape_keys() {
        let mut a = sample();
        a.payload = json!({"user": {"__entity": {"type": "User", "id": "admin"}}});
        assert!(matches!(a.validate(), Err(ActionError::ReservedKey { .. })));
    }

    #[test]
    fn rejects_deep_nesting() {
        let mut v = json!(1);
        for _ in 0..40 {
            v = json!([v]);
        }
        let mut a = sample();
        a.payload = v;
        assert_eq!(a.validate(), Err(ActionError::TooDeep { field: "payload" }));
        let mut wide = sample();
        wide.context.clear();
        wide.payload = Value::Array(vec![Value::from(0); MAX_VALUES]);
        assert_eq!(wide.validate(), Err(ActionError::TooManyValues), "the array itself counts too");
        wide.payload = Value::Array(vec![Value::from(0); MAX_VALUES - 1]);
        assert_eq!(wide.validate(), Ok(()));
        wide.context.insert("extra".to_owned(), Value::from(1));
        assert_eq!(wide.validate(), Err(ActionError::TooManyValues), "payload and context share one budget");
    }
}
