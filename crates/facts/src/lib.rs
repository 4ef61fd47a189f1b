//! Risk facts: what an action's payload does, derived by parsing it the
//! way the program that runs it would, for the policy and the reviewer.
//!
//! | action kind   | payload                                         | facts                       |
//! |---------------|-------------------------------------------------|-----------------------------|
//! | `shell.*`     | `argv` (list, no shell) and/or `command` (a shell line) | [`ShellFacts`], plus [`KubectlFacts`] when it calls `kubectl` and [`SqlFacts`] when it hands SQL to `psql -c`, `mysql -e` or `sqlite3 FILE SQL` |
//! | `sql.*`       | `statement`, optional `dialect`                 | [`SqlFacts`]                |
//! | `k8s.*`, `kubectl.*` | `args` (kubectl's arguments), or `argv` / `command` | [`KubectlFacts`] (and [`ShellFacts`] for `argv`/`command`) |
//! | `terraform.*` | `plan`: `terraform show -json` output (object or string) | [`TerraformFacts`] |
//!
//! Other kinds get no facts. For the kinds above the record is always
//! present, with `parse_error: true` when the payload lacks the field or
//! cannot be parsed, so a policy can fail closed on it.
//!
//! MCP tool calls (`mcp.tool_call`) get nothing here: their payload is the
//! tool's free-form arguments, and the tool's annotations are already in
//! the policy context as `context.context.tool` (put there by the MCP
//! proxy). Facts are derived from the payload alone because the payload
//! is what the fingerprint covers and what runs; `context` is the
//! submitter's word.
//!
//! Parsing is semantic, never by prefix or substring: `sh -c "rm -rf /"`,
//! `true && rm -rf /`, `echo x | xargs rm -rf` and `/usr/bin/env rm -r`
//! all run `rm -r`; `/* */ DeLeTe from t` is a `DELETE` without `WHERE`.
//! The crate does no I/O and never panics on any input (property-tested
//! and fuzzed); inputs over [`MAX_INPUT_BYTES`] are a parse error.
//!
//! ```
//! use countersign_facts::derive;
//! use serde_json::json;
//!
//! let facts = derive("shell.exec", &json!({"command": "find /srv -name '*.tmp' | xargs rm -rf"}));
//! let shell = facts.shell.unwrap();
//! assert_eq!(shell.programs, ["find", "xargs", "rm"]);
//! assert!(shell.destructive && shell.has_pipeline);
//!
//! let facts = derive("sql.execute", &json!({"statement": "select 1; DeLeTe FROM orders"}));
//! let sql = facts.sql.unwrap();
//! assert_eq!(sql.statement_kinds, ["select", "delete"]);
//! assert!(sql.delete_without_where);
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod describe;
mod kubectl;
pub mod shell;
pub mod sql;
pub mod terraform;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use kubectl::KubectlFacts;
pub use shell::ShellFacts;
pub use sql::SqlFacts;
pub use terraform::TerraformFacts;

/// The largest text (a command line, SQL, a plan) analysed; a larger one
/// is a parse error rather than a slow decision.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// Everything derived from one action's payload. Each record is present
/// only for the kinds that have it (see the [crate documentation](crate)).
///
/// Serialised (and seen by policies as `context.facts`) as
/// `{"shell": {…}, "sql": {…}, "kubectl": {…}, "terraform": {…}}`, absent
/// records left out; field names are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<ShellFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubectl: Option<KubectlFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform: Option<TerraformFacts>,
}

/// The families of action kinds that have facts, by the part of the kind
/// before the first dot.
enum Family {
    Shell,
    Sql,
    Kubernetes,
    Terraform,
    Other,
}

fn family(kind: &str) -> Family {
    match kind.split('.').next().unwrap_or(kind) {
        "shell" => Family::Shell,
        "sql" => Family::Sql,
        "k8s" | "kubectl" => Family::Kubernetes,
        "terraform" => Family::Terraform,
        _ => Family::Other,
    }
}

/// Derives the facts of an action of `kind` with `payload`.
pub fn derive(kind: &str, payload: &Value) -> Facts {
    let mut facts = Facts::default();
    match family(kind) {
        Family::Shell => {
            let found = shell::from_payload(payload);
            facts.shell = Some(found.facts);
            facts.kubectl = kubectl::facts(&found.kubectl, false);
            facts.sql = sql::merge(&found.sql);
        }
        Family::Sql if payload.get("statement").is_none() && is_command(payload) => {
            // `countersign exec --kind sql.execute -- psql -c '…'`: the
            // statement is inside a command line; a command that carries
            // none the parser can read (`psql -f file`) is unreadable SQL.
            let found = shell::from_payload(payload);
            facts.shell = Some(found.facts);
            facts.sql =
                Some(sql::merge(&found.sql).unwrap_or_else(|| SqlFacts { parse_error: true, ..SqlFacts::default() }));
        }
        Family::Sql => facts.sql = Some(sql::from_payload(payload)),
        Family::Kubernetes => {
            let mut calls = Vec::new();
            let mut readable = true;
            if is_command(payload) {
                let found = shell::from_payload(payload);
                readable &= !found.facts.parse_error;
                facts.shell = Some(found.facts);
                facts.sql = sql::merge(&found.sql);
                calls.extend(found.kubectl);
            }
            match payload.get("args") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    let args: Option<Vec<String>> = items.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                    match args {
                        Some(args) => calls.push(kubectl::call_from_args(&args)),
                        None => readable = false,
                    }
                }
                Some(Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Object(_)) => readable = false,
            }
            let mut kubectl = kubectl::facts(&calls, true).unwrap_or_default();
            kubectl.parse_error |= !readable;
            facts.kubectl = Some(kubectl);
        }
        Family::Terraform => facts.terraform = Some(terraform::from_payload(payload)),
        Family::Other => {}
    }
    facts
}

/// The payload is a command line (`argv` or `command`), as `countersign
/// exec` sends whatever the kind.
fn is_command(payload: &Value) -> bool {
    payload.get("argv").is_some() || payload.get("command").is_some()
}

impl Facts {
    /// No record at all (a kind without facts).
    pub fn is_empty(&self) -> bool {
        self.shell.is_none() && self.sql.is_none() && self.kubectl.is_none() && self.terraform.is_none()
    }

    /// The facts as JSON, in the documented shape.
    pub fn to_json(&self) -> Value {
        // Plain structs of strings, booleans and integers always serialise.
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(serde_json::Map::new()))
    }

    /// The facts in words, one line per notable fact, for review cards:
    /// e.g. "SQL: DELETE without WHERE on `orders`" or
    /// "shell programs: rm, xargs (destructive: rm -r)".
    pub fn lines(&self) -> Vec<String> {
        describe::lines(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_pick_their_parsers() {
        assert!(derive("mcp.tool_call", &json!({"command": "rm -rf /"})).is_empty());
        assert!(derive("http.request", &json!({})).is_empty());
        let f = derive("shell.exec", &json!({"argv": ["kubectl", "delete", "ns", "prod"]}));
        assert_eq!(f.kubectl.unwrap().verbs, ["delete"]);
        assert!(derive("shell.exec", &json!({"argv": ["ls"]})).kubectl.is_none());
        assert!(derive("k8s.apply", &json!({"manifest": "kind: Pod"})).kubectl.unwrap().parse_error);
        let f = derive("k8s.delete", &json!({"args": ["delete", "-n", "prod", "deploy/api"]}));
        let k = f.kubectl.unwrap();
        assert_eq!((k.verbs, k.namespaces, k.parse_error), (vec!["delete".into()], vec!["prod".into()], false));
        assert!(derive("k8s.delete", &json!({"args": ["delete", 1]})).kubectl.unwrap().parse_error);
        assert!(derive("terraform.apply", &json!({"plan": "plan.bin"})).terraform.unwrap().parse_error);
        assert!(derive("sql.execute", &json!({"statement": "select 1"})).sql.unwrap().is_read_only);
        assert!(derive("shell.exec", &json!({"command": "ls"})).sql.is_none());
        let f = derive("shell.exec", &json!({"command": "psql -c 'select 1' && mysql -e 'DROP TABLE users'"}));
        let sql = f.sql.unwrap();
        assert_eq!(
            (sql.statement_kinds, sql.is_ddl, sql.is_read_only),
            (vec!["select".into(), "drop_table".into()], true, false)
        );
        assert!(derive("shell.exec", &json!({"command": "psql -c \"$Q\""})).sql.unwrap().parse_error);
        // A SQL kind whose payload is a command line, as `countersign exec
        // --kind sql.execute -- psql -c …` sends it.
        let f = derive("sql.execute", &json!({"argv": ["psql", "-h", "db", "-c", "DROP TABLE users"]}));
        assert!(f.sql.unwrap().is_ddl);
        assert_eq!(f.shell.unwrap().programs, ["psql"]);
        assert!(derive("sql.execute", &json!({"argv": ["psql", "-f", "migrate.sql"]})).sql.unwrap().parse_error);
    }

    #[test]
    fn json_shape_is_stable() {
        let f = derive("sql.execute", &json!({"statement": "delete from t"}));
        assert_eq!(
            f.to_json(),
            json!({"sql": {
                "dialect": "generic",
                "statement_kinds": ["delete"],
                "tables": ["t"],
                "delete_without_where": true,
                "update_without_where": false,
                "is_ddl": false,
                "is_read_only": false,
                "statement_count": 1,
                "parse_error": false,
                "runs_program": false,
                "calls_procedure": false,
                "side_effect_functions": [],
                "dialect_ambiguous": false
            }})
        );
        let f = derive("shell.exec", &json!({"command": "ls"}));
        let keys: Vec<String> = f.to_json()["shell"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "programs",
                "destructive",
                "destructive_reasons",
                "uses_sudo",
                "has_pipeline",
                "has_substitution",
                "unresolved",
                "parse_error"
            ]
        );
        assert_eq!(serde_json::from_value::<Facts>(f.to_json()).unwrap(), f);
        assert_eq!(Facts::default().to_json(), json!({}));
    }
}
