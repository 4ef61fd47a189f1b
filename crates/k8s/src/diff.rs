//! What a write would change in a Kubernetes object, as lines a reviewer
//! reads: `~ data.level: "info" → "debug"`, `+ spec.replicas: 3`,
//! `- data.level: "info"`. The object before (the API server's current
//! copy) and after (its answer to a dry run) are flattened to their
//! leaves and compared.
//!
//! Bounded whatever the objects hold: at most [`MAX_LEAVES`] leaves are
//! read from each side, [`MAX_DEPTH`] levels deep, and each path and value
//! is cut to a few dozen characters. What the API server itself keeps up
//! to date (`resourceVersion`, `managedFields`, kubectl's
//! `last-applied-configuration` copy of the manifest, …) is left out: it
//! changes on every write and would hide the change that matters. The
//! values of a Secret (`data`, `stringData`) are never shown: a changed
//! one reads `~ data.password: (secret value hidden)`.

use std::collections::BTreeMap;

use serde_json::Value;

/// Leaves read from one object; the rest is counted as not compared.
pub const MAX_LEAVES: usize = 2000;
/// Levels followed into an object.
pub const MAX_DEPTH: usize = 24;
/// Characters of a path shown.
const MAX_PATH_CHARS: usize = 100;
/// Characters of a value shown.
const MAX_VALUE_CHARS: usize = 60;

/// The mark shown in place of a Secret's value.
pub const HIDDEN: &str = "(secret value hidden)";

/// Metadata the API server maintains itself, left out of a diff.
const NOISE: [&str; 8] = [
    "metadata.resourceVersion",
    "metadata.managedFields",
    "metadata.generation",
    "metadata.uid",
    "metadata.creationTimestamp",
    "metadata.selfLink",
    "metadata.annotations[\"kubectl.kubernetes.io/last-applied-configuration\"]",
    "metadata.annotations[\"deployment.kubernetes.io/revision\"]",
];

/// One leaf that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added { path: String, value: String },
    Removed { path: String, value: String },
    Changed { path: String, before: String, after: String },
}

impl Change {
    /// The line a reviewer reads.
    pub fn line(&self) -> String {
        match self {
            Self::Added { path, value } => format!("+ {path}: {value}"),
            Self::Removed { path, value } => format!("- {path}: {value}"),
            Self::Changed { path, before, after } => format!("~ {path}: {before} → {after}"),
        }
    }
}

/// The changes from `before` to `after` (either absent: a create or a
/// delete), in path order. `secret`: the object is a Secret (by its
/// `kind` or the resource type), so its values are hidden. The flag is
/// `true` when some leaves were past the bounds and not compared.
pub fn changes(before: Option<&Value>, after: Option<&Value>, secret: bool) -> (Vec<Change>, bool) {
    let secret = secret || [before, after].into_iter().flatten().any(|o| o.get("kind") == Some(&"Secret".into()));
    let mut left = Leaves::default();
    let mut right = Leaves::default();
    if let Some(before) = before {
        left.walk(before, &mut String::new(), 0);
    }
    if let Some(after) = after {
        right.walk(after, &mut String::new(), 0);
    }
    let shown = |path: &str, value: &Value| {
        if secret && (path.starts_with("data.") || path.starts_with("data[") || path.starts_with("stringData")) {
            HIDDEN.to_owned()
        } else {
            render(value)
        }
    };
    let mut out = Vec::new();
    for (path, old) in &left.leaves {
        match right.leaves.get(path) {
            None => out.push(Change::Removed { path: cut(path, MAX_PATH_CHARS), value: shown(path, old) }),
            Some(new) if new != old => out.push(Change::Changed {
                path: cut(path, MAX_PATH_CHARS),
                before: shown(path, old),
                after: shown(path, new),
            }),
            Some(_) => {}
        }
    }
    for (path, new) in &right.leaves {
        if !left.leaves.contains_key(path) {
            out.push(Change::Added { path: cut(path, MAX_PATH_CHARS), value: shown(path, new) });
        }
    }
    out.sort_by(|a, b| path_of(a).cmp(path_of(b)));
    (out, left.truncated || right.truncated)
}

fn path_of(change: &Change) -> &str {
    match change {
        Change::Added { path, .. } | Change::Removed { path, .. } | Change::Changed { path, .. } => path,
    }
}

#[derive(Default)]
struct Leaves {
    leaves: BTreeMap<String, Value>,
    truncated: bool,
}

impl Leaves {
    fn walk(&mut self, value: &Value, path: &mut String, depth: usize) {
        if NOISE.iter().any(|n| path == n || path.strip_prefix(n).is_some_and(|r| r.starts_with(['.', '[']))) {
            return;
        }
        if self.leaves.len() >= MAX_LEAVES || depth > MAX_DEPTH {
            self.truncated = true;
            return;
        }
        let at = path.len();
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    push_key(path, key);
                    self.walk(child, path, depth + 1);
                    path.truncate(at);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (i, child) in items.iter().enumerate() {
                    // Lists of named things (containers, ports, env) by
                    // name, so an insertion does not shift every index.
                    match child.get("name").and_then(Value::as_str) {
                        Some(name) => path.push_str(&format!("[name={}]", quoted_if_needed(name))),
                        None => path.push_str(&format!("[{i}]")),
                    }
                    self.walk(child, path, depth + 1);
                    path.truncate(at);
                }
            }
            Value::Object(_) | Value::Array(_) | Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                self.leaves.insert(path.clone(), value.clone());
            }
        }
    }
}

fn plain_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn quoted_if_needed(key: &str) -> String {
    if plain_key(key) {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

fn push_key(path: &mut String, key: &str) {
    if plain_key(key) {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::String(key.to_owned()).to_string());
        path.push(']');
    }
}

/// A leaf as JSON, cut.
fn render(value: &Value) -> String {
    cut(&value.to_string(), MAX_VALUE_CHARS)
}

/// `text` cut to `max` characters, marked with `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(before: Option<&Value>, after: Option<&Value>, secret: bool) -> Vec<String> {
        changes(before, after, secret).0.iter().map(Change::line).collect()
    }

    #[test]
    fn a_changed_configmap_shows_what_changes_and_not_the_servers_bookkeeping() {
        let before = json!({"kind": "ConfigMap", "metadata": {"name": "app", "resourceVersion": "4",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"level\":\"info\"}}"}},
            "data": {"level": "info", "keep": "same", "gone": "x"}});
        let after = json!({"kind": "ConfigMap", "metadata": {"name": "app", "resourceVersion": "5",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"level\":\"debug\"}}"}},
            "data": {"level": "debug", "keep": "same", "new.key": "y"}});
        assert_eq!(
            lines(Some(&before), Some(&after), false),
            ["- data.gone: \"x\"", "~ data.level: \"info\" → \"debug\"", "+ data[\"new.key\"]: \"y\""]
        );
    }

    #[test]
    fn containers_are_compared_by_name() {
        let before = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "api", "image": "api:1.0"}]}}}});
        let after = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "sidecar", "image": "envoy:1"}, {"name": "api", "image": "api:1.1"}]}}}});
        assert_eq!(
            lines(Some(&before), Some(&after), false),
            [
                "~ spec.replicas: 2 → 3",
                "~ spec.template.spec.containers[name=api].image: \"api:1.0\" → \"api:1.1\"",
                "+ spec.template.spec.containers[name=sidecar].image: \"envoy:1\"",
                "+ spec.template.spec.containers[name=sidecar].name: \"sidecar\"",
            ]
        );
    }

    #[test]
    fn a_create_and_a_delete_are_all_additions_or_all_removals() {
        let object = json!({"kind": "ConfigMap", "metadata": {"name": "app", "uid": "u1"}, "data": {"a": "1"}});
        assert_eq!(
            lines(None, Some(&object), false),
            ["+ data.a: \"1\"", "+ kind: \"ConfigMap\"", "+ metadata.name: \"app\""]
        );
        assert_eq!(
            lines(Some(&object), None, false),
            ["- data.a: \"1\"", "- kind: \"ConfigMap\"", "- metadata.name: \"app\""]
        );
    }

    #[test]
    fn secret_values_are_never_shown_but_their_change_is() {
        let before = json!({"kind": "Secret", "metadata": {"name": "db"},
            "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}});
        let after = json!({"kind": "Secret", "metadata": {"name": "db"},
            "data": {"password": "czNjcjN0", "user": "YWRtaW4="}, "stringData": {"token": "plain-t0ken"}});
        let shown = lines(Some(&before), Some(&after), false).join("\n");
        assert!(shown.contains("~ data.password: (secret value hidden) → (secret value hidden)"), "{shown}");
        assert!(shown.contains("+ stringData.token: (secret value hidden)"), "{shown}");
        for secret in ["aHVudGVyMg", "czNjcjN0", "plain-t0ken", "YWRtaW4"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        // A Secret known by its resource type alone (no `kind` in the answer).
        let deleted = json!({"data": {"password": "aHVudGVyMg=="}});
        let shown = lines(Some(&deleted), None, true).join("\n");
        assert_eq!(shown, "- data.password: (secret value hidden)");
    }

    #[test]
    fn huge_or_deep_objects_are_bounded() {
        let wide: serde_json::Map<String, Value> =
            (0..10_000).map(|i| (format!("k{i}"), json!("x".repeat(500)))).collect();
        let (found, truncated) = changes(None, Some(&json!({ "data": wide })), false);
        assert!(truncated);
        assert_eq!(found.len(), MAX_LEAVES);
        assert!(found.iter().all(|c| c.line().chars().count() < 200), "a line is not cut");
        let mut deep = json!("bottom");
        for _ in 0..200 {
            deep = json!({ "a": deep });
        }
        let (found, truncated) = changes(None, Some(&deep), false);
        assert!(truncated && found.is_empty());
        let long_key = "k".repeat(500);
        let (found, _) = changes(None, Some(&json!({ long_key: 1 })), false);
        assert!(found[0].line().chars().count() < 120, "{}", found[0].line());
    }

    #[test]
    fn equal_objects_have_no_changes() {
        let object = json!({"metadata": {"name": "a"}, "data": {"x": [1, 2, {"y": null}]}, "empty": {}});
        assert_eq!(changes(Some(&object), Some(&object), false), (Vec::new(), false));
    }
}
