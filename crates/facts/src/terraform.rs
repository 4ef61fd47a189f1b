//! Terraform plans: how many resources a plan creates, updates, replaces
//! and destroys, read from the `resource_changes` of
//! `terraform show -json <planfile>` — the plan Terraform will carry out,
//! not a description of it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::MAX_INPUT_BYTES;

/// The most destroyed resource addresses listed.
const MAX_ADDRESSES: usize = 32;
/// How deeply a plan given as a string may nest; deeper is a parse error
/// before it is parsed (plans nest about a dozen levels; the limit keeps
/// parsing and dropping the value off the stack's edge).
pub const MAX_PLAN_DEPTH: usize = 64;

/// What a Terraform plan changes.
///
/// Serialised as the `terraform` record of the facts; field names are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerraformFacts {
    /// Resources the plan destroys, replacements included (a replacement
    /// destroys the old object, and its data with it).
    pub destroy_count: u64,
    /// Resources the plan creates (replacements not included).
    pub create_count: u64,
    /// Resources the plan updates in place.
    pub update_count: u64,
    /// Resources the plan replaces (destroy and create, in either order).
    pub replace_count: u64,
    /// The addresses of destroyed and replaced resources, e.g.
    /// `aws_db_instance.main` (at most 32).
    pub destroyed: Vec<String>,
    /// The plan is missing, is not `terraform show -json` output, or has
    /// a change whose actions are not ones Terraform documents.
    pub parse_error: bool,
}

/// Analyses a `terraform.*` payload: `plan`, either the JSON object
/// `terraform show -json` prints or that JSON as a string.
pub(crate) fn from_payload(payload: &Value) -> TerraformFacts {
    match payload.get("plan") {
        Some(Value::Object(_)) => payload.get("plan").map(analyse).unwrap_or_default(),
        Some(Value::String(text)) if text.len() <= MAX_INPUT_BYTES && nesting_within(text, MAX_PLAN_DEPTH) => {
            match serde_json::from_str::<Value>(text) {
                Ok(plan) => analyse(&plan),
                Err(_) => TerraformFacts { parse_error: true, ..TerraformFacts::default() },
            }
        }
        Some(_) | None => TerraformFacts { parse_error: true, ..TerraformFacts::default() },
    }
}

/// Whether JSON `text` nests arrays and objects at most `max` deep
/// (brackets inside strings not counted). A loop, so any depth is safe.
fn nesting_within(text: &str, max: usize) -> bool {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                (false, _) => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Counts the changes of a parsed plan.
pub fn analyse(plan: &Value) -> TerraformFacts {
    let mut facts = TerraformFacts::default();
    let Some(plan) = plan.as_object() else {
        facts.parse_error = true;
        return facts;
    };
    // A plan without changes may leave out `resource_changes`; a JSON
    // document with neither that nor `format_version` is not a plan.
    let changes = match plan.get("resource_changes") {
        Some(Value::Array(changes)) => changes.as_slice(),
        None if plan.contains_key("format_version") => &[],
        Some(_) | None => {
            facts.parse_error = true;
            return facts;
        }
    };
    for change in changes {
        let actions: Option<Vec<&str>> = change
            .pointer("/change/actions")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_str).collect());
        let destroyed = match actions.as_deref() {
            Some(["no-op"] | ["read"] | ["forget"]) => false,
            Some(["create"]) => {
                facts.create_count += 1;
                false
            }
            Some(["update"]) => {
                facts.update_count += 1;
                false
            }
            Some(["delete"]) => {
                facts.destroy_count += 1;
                true
            }
            Some(["delete", "create"] | ["create", "delete"]) => {
                facts.replace_count += 1;
                facts.destroy_count += 1;
                true
            }
            // Terraform 1.7+: the object is forgotten and a new one made;
            // nothing is destroyed.
            Some(["create", "forget"] | ["forget", "create"]) => {
                facts.create_count += 1;
                false
            }
            // An action this code does not know: fail closed.
            Some(_) | None => {
                facts.parse_error = true;
                false
            }
        };
        if destroyed && facts.destroyed.len() < MAX_ADDRESSES {
            if let Some(address) = change.get("address").and_then(Value::as_str) {
                facts.destroyed.push(address.to_owned());
            }
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(address: &str, actions: &[&str]) -> Value {
        json!({"address": address, "type": "x", "change": {"actions": actions}})
    }

    #[test]
    fn counts_every_action() {
        let plan = json!({
            "format_version": "1.2",
            "resource_changes": [
                change("a.one", &["create"]),
                change("a.two", &["update"]),
                change("a.three", &["delete"]),
                change("a.four", &["delete", "create"]),
                change("a.five", &["create", "delete"]),
                change("a.six", &["no-op"]),
                change("a.seven", &["read"]),
            ]
        });
        let f = analyse(&plan);
        assert_eq!((f.create_count, f.update_count, f.destroy_count, f.replace_count), (1, 1, 3, 2));
        assert_eq!(f.destroyed, ["a.three", "a.four", "a.five"]);
        assert!(!f.parse_error);
        assert_eq!(from_payload(&json!({"plan": plan.to_string()})), f);
    }

    #[test]
    fn what_is_not_a_plan() {
        assert!(from_payload(&json!({})).parse_error);
        assert!(from_payload(&json!({"plan": "plan.bin"})).parse_error);
        assert!(from_payload(&json!({"plan": {"hello": 1}})).parse_error);
        assert!(from_payload(&json!({"plan": {"resource_changes": [change("a", &["explode"])]}})).parse_error);
        assert!(from_payload(&json!({"plan": {"resource_changes": [{"change": {}}]}})).parse_error);
        assert!(!from_payload(&json!({"plan": {"format_version": "1.2"}})).parse_error);
    }

    #[test]
    fn deep_plans_are_parse_errors_on_a_small_stack() {
        let worker = std::thread::Builder::new().stack_size(256 * 1024).spawn(|| {
            let deep = format!("{{\"format_version\":\"1\",\"x\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
            assert!(from_payload(&json!({ "plan": deep })).parse_error);
            let quoted = format!("{{\"format_version\":\"1\",\"x\":\"{}\"}}", "[".repeat(1000));
            assert!(!from_payload(&json!({ "plan": quoted })).parse_error);
            let ok = format!("{{\"format_version\":\"1\",\"x\":{}1{}}}", "[".repeat(60), "]".repeat(60));
            assert!(!from_payload(&json!({ "plan": ok })).parse_error);
        });
        worker.unwrap().join().unwrap();
    }
}
