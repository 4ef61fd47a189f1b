//! Risk facts: what an action's payload does, derived by parsing it the
//! way the program that runs it would, for the policy and the reviewer.
//!
//! Facts follow what the payload **is**, whatever the action's kind (the
//! kind is the submitter's claim; `{"kind": "run", "payload": {"argv":
//! ["rm", "-rf", "/srv"]}}` is still `rm -r`). The payload's top-level
//! fields decide:
//!
//! | payload field | read as | facts |
//! |---------------|---------|-------|
//! | `argv` (list, no shell) and/or `command` (a shell line) | a command line | [`ShellFacts`], plus [`KubectlFacts`] for each `kubectl` it calls and [`SqlFacts`] for SQL it hands to `psql -c`, `mysql -e`, `sqlite3 FILE SQL` |
//! | `stdin` (with `stdin_sha256`, as `countersign exec` binds it) | the command's standard input | a shell reading stdin (`sh`, `bash` with no script) runs it as a script; `psql`/`mysql`/`sqlite3` with no SQL argument run it as SQL |
//! | `statement`, optional `dialect` | SQL | [`SqlFacts`] |
//! | `method`, `path`, `query?`, `body?`, for `k8s.*` kinds (no `args`) | a Kubernetes API request, read as the API server reads it | [`KubectlFacts`] (with `api_groups`, `names`, `subresources`), plus [`ShellFacts`] for the command of an `exec` |
//! | `args`, for `k8s.*`/`kubectl.*` kinds | the argv `kubectl …args` | [`KubectlFacts`], plus [`ShellFacts`] when the call runs something (`exec … -- CMD`; a plugin or unknown subcommand is unresolved) |
//! | `plan` | `terraform show -json` output (object or string) | [`TerraformFacts`] |
//! | `method`, `path`, `body_bytes`, for `http.*` kinds | an HTTP request (matched against the API's OpenAPI document when the gateway holds it: [`Bound`]) | [`HttpFacts`] |
//!
//! A kind may add expectations but never removes facts: `shell.*` expects
//! a command line, `sql.*` SQL (a statement, or a command that carries
//! some: `psql -f x.sql` does not), `k8s.*`/`kubectl.*` a kubectl call,
//! `terraform.*` a plan; a payload lacking what its kind expects gets the
//! record with `parse_error: true`, so a policy can fail closed on it.
//! Other kinds get the records their payload's fields call for, and none
//! when it has none of these fields.
//!
//! Only the payload's top-level fields are read: a `command` nested inside
//! another object (`{"steps": [{"command": …}]}`) is data of the
//! submitter's own format, which the gateway cannot know how it runs;
//! policies should not let such kinds through as routine.
//!
//! MCP tool calls (`mcp.tool_call`) are read like any other kind: when a
//! tool's arguments hold a `command`, `argv`, `statement` or `plan`, those
//! are judged as what they say they are (a tool's `command` argument is,
//! in practice, a command line), because the kind is a claim anyone with
//! a key can make. The tool's annotations are in the policy context too,
//! as `context.context.tool` (put there by the MCP proxy). Facts are
//! derived from the payload alone because the payload is what the
//! fingerprint covers and what runs; `context` is the submitter's word.
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
pub mod http;
mod kubectl;
mod kubernetes_api;
pub mod shell;
pub mod sql;
pub mod terraform;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use http::{HttpApi, HttpFacts};
pub use kubectl::{KubectlFacts, READ_ONLY_VERBS as KUBECTL_READ_ONLY_VERBS};
pub use kubernetes_api::unescape as kubernetes_query_unescape;
pub use shell::ShellFacts;
pub use sql::SqlFacts;
pub use terraform::TerraformFacts;

/// The largest text (a command line, SQL, a plan) analysed; a larger one
/// is a parse error rather than a slow decision.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// Everything derived from one action's payload. Each record is present
/// only when the payload's fields, or the kind's expectations, call for it
/// (see the [crate documentation](crate)).
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFacts>,
}

/// The families of action kinds that expect some record.
enum Family {
    Shell,
    Sql,
    Kubernetes,
    Terraform,
    Http,
    Other,
}

fn family(kind: &str) -> Family {
    match kind.split('.').next().unwrap_or(kind) {
        "shell" => Family::Shell,
        "sql" => Family::Sql,
        "k8s" | "kubectl" => Family::Kubernetes,
        "terraform" => Family::Terraform,
        "http" => Family::Http,
        _ => Family::Other,
    }
}

/// Derives the facts of an action of `kind` with `payload`.
pub fn derive(kind: &str, payload: &Value) -> Facts {
    derive_bound(kind, payload, None)
}

/// [`derive`] for an action on a resource whose SQL dialect the gateway
/// knows (`bound_dialect`: a database behind one of its endpoints): a
/// `statement` is judged in that dialect alone, whatever the payload's
/// `dialect` claims.
pub fn derive_bound(kind: &str, payload: &Value, bound_dialect: Option<&str>) -> Facts {
    derive_with(kind, payload, Bound { sql_dialect: bound_dialect, http_api: None })
}

/// What the gateway knows of the resource an action is on, because it
/// fronts it: facts then follow the resource, not what a payload claims.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bound<'a> {
    /// The SQL dialect of a database behind one of its endpoints.
    pub sql_dialect: Option<&'a str>,
    /// The operations of an HTTP API behind its proxy (from the
    /// operator's OpenAPI document).
    pub http_api: Option<&'a HttpApi>,
}

/// [`derive`] for an action on a resource the gateway fronts.
pub fn derive_with(kind: &str, payload: &Value, bound: Bound<'_>) -> Facts {
    let bound_dialect = bound.sql_dialect;
    let mut facts = Facts::default();
    let family = family(kind);
    let has = |field: &str| payload.get(field).is_some();
    let command = has("argv") || has("command") || has("stdin") || has("stdin_sha256");

    let mut kubectl_calls = Vec::new();
    let mut kubectl_readable = true;
    let mut sql_texts = Vec::new();
    if command || matches!(family, Family::Shell) {
        let found = shell::from_payload(payload);
        kubectl_readable &= !found.facts.parse_error;
        facts.shell = Some(found.facts);
        kubectl_calls = found.kubectl;
        sql_texts = found.sql;
    }

    let mut sql = sql::merge(&sql_texts);
    if has("statement") || (matches!(family, Family::Sql) && !command) {
        let statement = sql::from_payload(payload, bound_dialect);
        sql = Some(match sql {
            Some(from_command) => merge_sql(statement, from_command),
            None => statement,
        });
    } else if matches!(family, Family::Sql) && sql.is_none() {
        // `countersign exec --kind sql.execute -- psql -f x.sql`: a SQL
        // kind whose command carries no SQL the parser can read.
        sql = Some(SqlFacts { parse_error: true, ..SqlFacts::default() });
    }
    facts.sql = sql;

    let kubernetes = matches!(family, Family::Kubernetes);
    if kubernetes {
        match payload.get("args") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                let args: Option<Vec<Value>> =
                    items.iter().map(|v| v.as_str().map(|s| Value::String(s.to_owned()))).collect();
                match args {
                    Some(args) if args.len() <= 64 * 1024 => {
                        // `args` is what `kubectl` runs with: read as the argv
                        // `["kubectl", …args]`, so `exec … -- rm -rf /`, plugins
                        // and unknown subcommands are judged as they are there.
                        let mut argv = vec![Value::String("kubectl".to_owned())];
                        argv.extend(args);
                        let found = shell::from_payload(&serde_json::json!({ "argv": argv.clone() }));
                        kubectl_readable &= !found.facts.parse_error;
                        if found.kubectl.is_empty() {
                            // Past the shell reader's bounds: still say what
                            // kubectl is asked to do (the record is a parse
                            // error all the same).
                            let texts: Vec<String> =
                                argv.iter().skip(1).filter_map(|v| v.as_str().map(str::to_owned)).collect();
                            kubectl_calls.push(kubectl::call_from_args(&texts));
                        } else {
                            kubectl_calls.extend(found.kubectl);
                        }
                        // A plain call adds no shell record (the kubectl one
                        // says it all); one that runs more, or cannot be
                        // read, does.
                        let s = &found.facts;
                        let notable = s.destructive
                            || s.unresolved
                            || s.parse_error
                            || s.uses_sudo
                            || s.programs.iter().any(|p| p != "kubectl");
                        if notable {
                            facts.shell = Some(match facts.shell.take() {
                                Some(from_command) => merge_shell(from_command, found.facts),
                                None => found.facts,
                            });
                        }
                    }
                    Some(_) | None => kubectl_readable = false,
                }
            }
            Some(Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Object(_)) => kubectl_readable = false,
        }
        if !command && payload.get("args").is_none() {
            kubectl_readable = false;
        }
    }
    // A Kubernetes API request, as the gateway's `/k8s/<cluster>` proxy
    // describes it (and nothing else: a command or `args` is a kubectl call).
    let api_request = kubernetes && has("method") && has("path") && !command && !has("args");
    if api_request {
        let (kubectl, shell) = kubernetes_api::facts(payload);
        facts.kubectl = Some(kubectl);
        facts.shell = shell;
    } else if kubernetes || !kubectl_calls.is_empty() {
        let mut kubectl = kubectl::facts(&kubectl_calls, kubernetes).unwrap_or_default();
        kubectl.parse_error |= kubernetes && !kubectl_readable;
        facts.kubectl = Some(kubectl);
    }

    if has("plan") || matches!(family, Family::Terraform) {
        facts.terraform = Some(terraform::from_payload(payload));
    }
    if matches!(family, Family::Http) {
        facts.http = Some(http::from_payload(payload, bound.http_api));
    }
    facts
}

/// Shell facts of a command line and of a kubectl `args` list, together.
fn merge_shell(mut all: ShellFacts, part: ShellFacts) -> ShellFacts {
    for program in part.programs {
        if !all.programs.contains(&program) {
            all.programs.push(program);
        }
    }
    for reason in part.destructive_reasons {
        if !all.destructive_reasons.contains(&reason) {
            all.destructive_reasons.push(reason);
        }
    }
    all.destructive |= part.destructive;
    all.uses_sudo |= part.uses_sudo;
    all.has_pipeline |= part.has_pipeline;
    all.has_substitution |= part.has_substitution;
    all.unresolved |= part.unresolved;
    all.parse_error |= part.parse_error;
    all
}

/// SQL facts of a `statement` and of SQL found in a command line, together.
fn merge_sql(mut all: SqlFacts, part: SqlFacts) -> SqlFacts {
    for kind in part.statement_kinds {
        if !all.statement_kinds.contains(&kind) {
            all.statement_kinds.push(kind);
        }
    }
    for table in part.tables {
        if !all.tables.contains(&table) {
            all.tables.push(table);
        }
    }
    all.delete_without_where |= part.delete_without_where;
    all.update_without_where |= part.update_without_where;
    all.is_ddl |= part.is_ddl;
    all.is_read_only &= part.is_read_only;
    all.statement_count += part.statement_count;
    all.parse_error |= part.parse_error;
    all
}

impl Facts {
    /// No record at all (a payload with none of the fields read, under a
    /// kind that expects none).
    pub fn is_empty(&self) -> bool {
        self.shell.is_none()
            && self.sql.is_none()
            && self.kubectl.is_none()
            && self.terraform.is_none()
            && self.http.is_none()
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
    #[test]
    fn a_bound_resource_is_judged_in_its_dialect_alone_whatever_is_claimed() {
        // MySQL reads the backslash as an escape; PostgreSQL does not.
        let text = r"SELECT '\'; DELETE FROM users; -- '";
        let claimed = super::derive("sql.execute", &serde_json::json!({"statement": text, "dialect": "mysql"}));
        assert!(claimed.sql.as_ref().unwrap().dialect_ambiguous);
        let bound = super::derive_bound(
            "sql.execute",
            &serde_json::json!({"statement": text, "dialect": "mysql"}),
            Some("postgres"),
        );
        let sql = bound.sql.unwrap();
        assert_eq!(sql.dialect, "postgres");
        assert!(!sql.dialect_ambiguous);
        assert!(sql.delete_without_where, "{sql:?}");
        let plain =
            super::derive_bound("sql.execute", &serde_json::json!({"statement": "SELECT $1::int"}), Some("postgres"));
        assert!(plain.sql.unwrap().is_read_only);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_pick_their_parsers() {
        assert!(derive("http.request", &json!({})).http.unwrap().parse_error);
        let f = derive("http.request", &json!({"method": "GET", "path": "/x"}));
        assert!(f.http.unwrap().read_only && f.shell.is_none() && f.sql.is_none());
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
    fn facts_follow_the_payload_whatever_the_kind() {
        for kind in ["run", "deploy", "x.y", "mcp.tool_call", "http.request", "RUN", ""] {
            let f = derive(kind, &json!({"argv": ["rm", "-rf", "/srv"]}));
            assert!(f.shell.unwrap().destructive, "{kind}");
            let f = derive(kind, &json!({"command": "kubectl -n prod delete ns prod && psql -c 'drop table t'"}));
            assert_eq!(f.kubectl.unwrap().verbs, ["delete"], "{kind}");
            assert!(f.sql.unwrap().is_ddl, "{kind}");
            let f = derive(kind, &json!({"statement": "DELETE FROM orders"}));
            assert!(f.sql.unwrap().delete_without_where, "{kind}");
            let plan = json!({"resource_changes": [{"address": "a.b", "change": {"actions": ["delete"]}}]});
            assert_eq!(derive(kind, &json!({ "plan": plan })).terraform.unwrap().destroy_count, 1, "{kind}");
            let f = derive(kind, &json!({"argv": ["bash"], "stdin": "rm -rf /srv", "stdin_sha256": "x"}));
            assert!(f.shell.unwrap().destructive, "{kind}");
            let f = derive(kind, &json!({"argv": ["sqlite3", "app.db"], "stdin": "DROP TABLE users;"}));
            assert!(f.sql.unwrap().is_ddl, "{kind}");
            // Nothing the gateway reads: no record (an HTTP kind expects a request).
            let f = derive(kind, &json!({"url": "https://x", "steps": [{"command": "ls"}]}));
            assert_eq!(f.is_empty(), kind != "http.request", "{kind}");
        }
        // A kind adds expectations, never removes facts.
        assert!(derive("sql.execute", &json!({"query": "x"})).sql.unwrap().parse_error);
        assert!(derive("shell.exec", &json!({"statement": "select 1"})).shell.unwrap().parse_error);
        let f = derive("sql.execute", &json!({"statement": "select 1", "command": "rm -rf /"}));
        assert!(f.shell.unwrap().destructive && f.sql.unwrap().is_read_only);
        let f = derive("terraform.apply", &json!({"command": "rm -rf /", "plan": {"format_version": "1"}}));
        assert!(f.shell.unwrap().destructive && !f.terraform.unwrap().parse_error);
        assert!(derive("k8s.apply", &json!({"argv": ["ls"]})).kubectl.unwrap().parse_error);
        // `args` is kubectl's only for kubectl kinds.
        assert!(derive("run", &json!({"args": ["delete", "ns", "prod"]})).is_empty());
        // Stdin alone is no command line.
        assert!(derive("run", &json!({"stdin": "rm -rf /"})).shell.unwrap().parse_error);
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
