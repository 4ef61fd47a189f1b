//! The facts in words, for people reviewing a request: one short line per
//! thing worth knowing, the alarming ones first within each record.

use crate::{Facts, HttpFacts, KubectlFacts, ShellFacts, SqlFacts, TerraformFacts};

/// How many names a line lists before "…".
const LISTED: usize = 6;

pub(crate) fn lines(facts: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(shell) = &facts.shell {
        shell_lines(shell, &mut out);
    }
    if let Some(sql) = &facts.sql {
        sql_lines(sql, &mut out);
    }
    if let Some(kubectl) = &facts.kubectl {
        kubectl_lines(kubectl, &mut out);
    }
    if let Some(terraform) = &facts.terraform {
        terraform_lines(terraform, &mut out);
    }
    if let Some(http) = &facts.http {
        http_lines(http, &mut out);
    }
    out
}

fn http_lines(http: &HttpFacts, out: &mut Vec<String>) {
    if http.parse_error {
        out.push("HTTP: the request could not be read".to_owned());
        return;
    }
    let mut line = if http.websocket {
        format!("HTTP {} `{}` opens a WebSocket (messages both ways, decided once)", http.method, http.path)
    } else {
        let what = if http.read_only { "reads" } else { "writes" };
        format!("HTTP {} `{}` ({what}, {} body bytes)", http.method, http.path, http.body_bytes)
    };
    if !http.operation.is_empty() {
        line.push_str(&format!("; operation `{}`", http.operation));
    } else if !http.path_template.is_empty() {
        line.push_str(&format!("; `{}`", http.path_template));
    }
    out.push(line);
}

fn list(items: &[String], quote: bool) -> String {
    let mut shown: Vec<String> =
        items.iter().take(LISTED).map(|i| if quote { format!("`{i}`") } else { i.clone() }).collect();
    if items.len() > LISTED {
        shown.push(format!("… ({} more)", items.len() - LISTED));
    }
    shown.join(", ")
}

fn shell_lines(shell: &ShellFacts, out: &mut Vec<String>) {
    if shell.parse_error {
        out.push("shell: the command could not be parsed".to_owned());
    }
    if !shell.programs.is_empty() {
        let mut line = format!("shell programs: {}", list(&shell.programs, false));
        if shell.destructive {
            line.push_str(&format!(" (destructive: {})", shell.destructive_reasons.join(", ")));
        }
        out.push(line);
    } else if shell.destructive {
        // Only a redirection, e.g. `> /dev/sda`.
        out.push(format!("shell: destructive: {}", shell.destructive_reasons.join(", ")));
    }
    if shell.unresolved {
        out.push(
            "shell: runs something that cannot be read before it runs (computed name, script, stdin, downloaded file, or a program that may run its arguments)".to_owned(),
        );
    }
    if shell.uses_sudo {
        out.push("shell: runs as another user (sudo / su)".to_owned());
    }
}

fn sql_lines(sql: &SqlFacts, out: &mut Vec<String>) {
    if sql.parse_error {
        out.push(format!("SQL: could not be parsed as {}", sql.dialect));
        return;
    }
    let on = if sql.tables.is_empty() { String::new() } else { format!(" on {}", list(&sql.tables, true)) };
    if sql.delete_without_where {
        out.push(format!("SQL: DELETE without WHERE{on}"));
    }
    if sql.update_without_where {
        out.push(format!("SQL: UPDATE without WHERE{on}"));
    }
    let statements =
        if sql.statement_count == 1 { String::new() } else { format!("{} statements: ", sql.statement_count) };
    let mode = if sql.is_ddl {
        " (changes the schema)"
    } else if sql.is_read_only {
        " (read-only)"
    } else {
        ""
    };
    out.push(format!("SQL: {statements}{}{on}{mode}", list(&sql.statement_kinds, false)));
}

fn kubectl_lines(k: &KubectlFacts, out: &mut Vec<String>) {
    if k.parse_error {
        out.push("kubectl: the call could not be read".to_owned());
    }
    if k.verbs.is_empty() {
        return;
    }
    let mut line = format!("kubectl: {}", list(&k.verbs, false));
    if !k.resource_types.is_empty() {
        line.push_str(&format!(" {}", list(&k.resource_types, false)));
    }
    if !k.names.is_empty() {
        line.push_str(&format!(" {}", list(&k.names, true)));
    }
    if !k.subresources.is_empty() {
        line.push_str(&format!(" ({})", list(&k.subresources, false)));
    }
    if k.all_namespaces {
        line.push_str(" in all namespaces");
    } else if !k.namespaces.is_empty() {
        line.push_str(&format!(" in {}", list(&k.namespaces, true)));
    }
    if k.dry_run {
        line.push_str(" (dry run)");
    } else if k.read_only {
        line.push_str(" (read-only)");
    }
    out.push(line);
}

fn terraform_lines(t: &TerraformFacts, out: &mut Vec<String>) {
    if t.parse_error {
        out.push("Terraform: the plan could not be read".to_owned());
    }
    let mut parts = Vec::new();
    if t.destroy_count > 0 {
        parts.push(format!("destroys {} ({})", t.destroy_count, list(&t.destroyed, false)));
    }
    if t.replace_count > 0 {
        parts.push(format!("of which {} replaced", t.replace_count));
    }
    if t.create_count > 0 {
        parts.push(format!("creates {}", t.create_count));
    }
    if t.update_count > 0 {
        parts.push(format!("updates {}", t.update_count));
    }
    if !parts.is_empty() {
        out.push(format!("Terraform: {}", parts.join(", ")));
    } else if !t.parse_error {
        out.push("Terraform: no changes".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use crate::derive;
    use serde_json::json;

    fn lines(kind: &str, payload: serde_json::Value) -> Vec<String> {
        derive(kind, &payload).lines()
    }

    #[test]
    fn reads_like_a_reviewer_would_say_it() {
        assert_eq!(
            lines("sql.execute", json!({"statement": "DELETE FROM orders"})),
            ["SQL: DELETE without WHERE on `orders`", "SQL: delete on `orders`"]
        );
        assert_eq!(
            lines("sql.execute", json!({"statement": "select 1; drop table x"})),
            ["SQL: 2 statements: select, drop_table on `x` (changes the schema)"]
        );
        assert_eq!(
            lines("shell.exec", json!({"command": "ls | xargs rm -rf"})),
            ["shell programs: ls, xargs, rm (destructive: rm -r, rm over many files (xargs / find -exec))"]
        );
        assert_eq!(
            lines("k8s.delete", json!({"args": ["delete", "po", "web", "-n", "prod"]})),
            ["kubectl: delete pods in `prod`"]
        );
        let plan = json!({"resource_changes": [
            {"address": "aws_db_instance.main", "change": {"actions": ["delete"]}},
            {"address": "aws_s3_bucket.b", "change": {"actions": ["create"]}}
        ]});
        assert_eq!(
            lines("terraform.apply", json!({"plan": plan})),
            ["Terraform: destroys 1 (aws_db_instance.main), creates 1"]
        );
        assert_eq!(lines("terraform.apply", json!({"plan": "plan.bin"})), ["Terraform: the plan could not be read"]);
        assert_eq!(lines("http.request", json!({})), ["HTTP: the request could not be read"]);
        assert_eq!(
            lines("http.request", json!({"method": "delete", "path": "/v1/x", "body_bytes": 3})),
            ["HTTP DELETE `/v1/x` (writes, 3 body bytes)"]
        );
        assert_eq!(
            lines("http.request", json!({"method": "GET", "path": "/ws", "body_bytes": 0, "upgrade": "websocket"})),
            ["HTTP GET `/ws` opens a WebSocket (messages both ways, decided once)"]
        );
        assert_eq!(lines("shell.exec", json!({"command": "> /dev/sda"})), ["shell: destructive: write to /dev/sda"]);
    }
}
