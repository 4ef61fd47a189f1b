//! One request must never take the gateway down: deep and wide payloads of
//! every parser family, submitted over real HTTP to a gateway served on a
//! runtime with the binary's worker stack size, are answered with a
//! decision or a 4xx, and the gateway keeps answering.
//!
//! A stack overflow cannot be caught: if a parser recursed without bound,
//! this whole test process would abort, which is the failure this test
//! exists to show.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use countersign_core::SystemClock;
use countersign_testkit::{gateway_configured, POLICY};
use serde_json::{json, Value};

/// Tokio's default, and what `countersign serve` runs its workers with.
const WORKER_STACK_BYTES: usize = 2 * 1024 * 1024;

fn sql_cases() -> Vec<(String, String)> {
    let n = 32_000;
    vec![
        ("sum of 32,000 terms".into(), format!("SELECT {}1", "1+".repeat(n))),
        ("20,000 parentheses".into(), format!("SELECT {}1{}", "(".repeat(20_000), ")".repeat(20_000))),
        ("20,000 NOTs".into(), format!("SELECT {}1", "NOT ".repeat(20_000))),
        ("30,000 unary minus".into(), format!("SELECT {}1", "- ".repeat(30_000))),
        (
            "5,000 nested subqueries".into(),
            format!("SELECT * FROM {}t{}", "(SELECT * FROM ".repeat(5_000), ")".repeat(5_000)),
        ),
        (
            "5,000 nested IN subqueries".into(),
            format!("SELECT 1 WHERE 1 IN {}1{}", "(SELECT 1 WHERE 1 IN ".repeat(5_000), ")".repeat(5_000)),
        ),
        ("5,000 nested CASE".into(), format!("SELECT {}1{}", "CASE WHEN 1 THEN ".repeat(5_000), " END".repeat(5_000))),
        ("20,000 ORs".into(), format!("DELETE FROM t WHERE {}a = 1", "a = 1 OR ".repeat(20_000))),
        ("20,000 statements".into(), "SELECT 1;".repeat(20_000)),
        ("5,000 nested function calls".into(), format!("SELECT {}1{}", "abs(".repeat(5_000), ")".repeat(5_000))),
        ("10,000 nested arrays".into(), format!("SELECT {}1{}", "ARRAY[".repeat(10_000), "]".repeat(10_000))),
    ]
}

fn nested_sh_c(levels: usize) -> String {
    let mut command = "rm -rf /srv".to_owned();
    for _ in 0..levels {
        let escaped = command.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('`', "\\`");
        command = format!("sh -c \"{escaped}\"");
    }
    command
}

fn shell_commands() -> Vec<(String, String)> {
    vec![
        ("20,000 || of true".into(), format!("{}true", "true || ".repeat(20_000))),
        ("20,000 && of true".into(), format!("{}true", "true && ".repeat(20_000))),
        ("20,000 pipes".into(), format!("{}cat", "cat | ".repeat(20_000))),
        ("20,000 ;".into(), "true; ".repeat(20_000)),
        ("nested sh -c, 14 levels".into(), nested_sh_c(14)),
        ("10,000 nested $(".into(), format!("echo {}true{}", "$(".repeat(10_000), ")".repeat(10_000))),
        ("10,000 nested subshells".into(), format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000))),
        ("10,000 nested brace groups".into(), format!("{}true;{}", "{ ".repeat(10_000), " };".repeat(10_000))),
        ("3,000 backquotes".into(), format!("echo {}", "`echo ".repeat(3_000))),
        ("10,000 nested ${".into(), format!("echo {}x{}", "${a:-".repeat(10_000), "}".repeat(10_000))),
        ("10,000 nested $((".into(), format!("echo $(({}1{}))", "(".repeat(10_000), ")".repeat(10_000))),
        ("10,000 if".into(), format!("{}true{}", "if true; then ".repeat(10_000), "; fi".repeat(10_000))),
        ("psql -c with 32,000 terms".into(), format!("psql -c 'SELECT {}1'", "1+".repeat(32_000))),
        (
            "mysql -e with 20,000 parentheses".into(),
            format!("mysql -e 'SELECT {}1{}'", "(".repeat(20_000), ")".repeat(20_000)),
        ),
        (
            "kubectl exec with a deep sh -c".into(),
            format!("kubectl exec pod -- sh -c '{}true'", "true || ".repeat(20_000)),
        ),
        ("kubectl with 10,000 flags".into(), format!("kubectl {}delete ns prod", "-v 0 ".repeat(10_000))),
        ("terraform with 10,000 flags".into(), format!("terraform apply {}", "-var x=1 ".repeat(10_000))),
    ]
}

fn deep_json(open: &str, close: &str, depth: usize) -> String {
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

/// Every hostile body, as (name, raw JSON text).
fn cases() -> Vec<(String, String)> {
    let mut cases = Vec::new();
    let body =
        |kind: &str, payload: Value| json!({"kind": kind, "resource": "prod-db", "payload": payload}).to_string();
    for (name, statement) in sql_cases() {
        cases.push((format!("sql.execute: {name}"), body("sql.execute", json!({"statement": statement}))));
        for dialect in ["generic", "postgres", "mysql", "sqlite", "mssql", "bigquery", "snowflake"] {
            let payload = json!({"statement": statement, "dialect": dialect});
            cases.push((format!("sql.execute ({dialect}): {name}"), body("sql.execute", payload)));
        }
        let argv = json!({"argv": ["psql", "-c", statement]});
        cases.push((format!("shell.exec psql -c argv: {name}"), body("shell.exec", argv.clone())));
        cases.push((format!("sql.execute psql -c argv: {name}"), body("sql.execute", argv)));
        let command = json!({"command": format!("psql -c \"{statement}\"")});
        cases.push((format!("shell.exec psql -c command: {name}"), body("shell.exec", command)));
    }
    for (name, command) in shell_commands() {
        cases.push((format!("shell.exec command: {name}"), body("shell.exec", json!({"command": command}))));
        let argv = json!({"argv": ["sh", "-c", command]});
        cases.push((format!("shell.exec sh -c argv: {name}"), body("shell.exec", argv.clone())));
        cases.push((format!("kubectl.apply sh -c argv: {name}"), body("kubectl.apply", argv.clone())));
        cases.push((format!("terraform.apply sh -c argv: {name}"), body("terraform.apply", argv)));
    }
    let flags: Vec<String> = (0..20_000).map(|_| "-v".to_owned()).chain(["delete".into(), "ns".into()]).collect();
    cases.push(("kubectl args: 20,000 flags".into(), body("kubectl.delete", json!({"args": flags}))));
    cases.push((
        "terraform plan: 10,000 nested arrays".into(),
        body("terraform.apply", json!({"plan": deep_json("[", "]", 10_000)})),
    ));
    cases.push((
        "terraform plan: 10,000 nested objects".into(),
        body("terraform.apply", json!({"plan": deep_json("{\"a\":", "}", 10_000)})),
    ));
    let deep_after = deep_json("{\"a\":", "}", 120);
    let plan = format!(
        r#"{{"format_version":"1.2","resource_changes":[{}]}}"#,
        vec![format!(r#"{{"address":"x","change":{{"actions":["delete"],"after":{deep_after}}}}}"#); 500].join(",")
    );
    cases.push(("terraform plan: 500 changes, 120 deep".into(), body("terraform.apply", json!({"plan": plan}))));
    // Deep JSON in the request itself, in every place a value goes.
    for (name, open, close) in [("arrays", "[", "]"), ("objects", "{\"a\":", "}")] {
        let deep = deep_json(open, close, 10_000);
        for kind in ["sql.execute", "shell.exec", "kubectl.apply", "terraform.apply", "mcp.tool_call"] {
            cases.push((
                format!("{kind} payload: 10,000 nested {name}"),
                format!(r#"{{"kind":"{kind}","resource":"prod-db","payload":{deep}}}"#),
            ));
            cases.push((
                format!("{kind} payload.statement: 10,000 nested {name}"),
                format!(r#"{{"kind":"{kind}","resource":"prod-db","payload":{{"statement":{deep},"argv":{deep}}}}}"#),
            ));
        }
        cases.push((
            format!("context: 10,000 nested {name}"),
            format!(r#"{{"kind":"shell.exec","resource":"prod-db","context":{{"c":{deep}}}}}"#),
        ));
        cases.push((format!("body: 10,000 nested {name}"), deep.clone()));
    }
    let wide: Vec<Value> = (0..50_000).map(|n| json!(n)).collect();
    cases.push((
        "sql.execute: 50,000-wide payload".into(),
        body("sql.execute", json!({"statement": "SELECT 1", "x": wide})),
    ));
    cases
}

#[test]
fn hostile_payloads_get_an_answer_and_the_gateway_stays_up() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(WORKER_STACK_BYTES)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let g = gateway_configured(POLICY, &[], Arc::new(SystemClock)).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(countersign_server::serve(g.state.clone(), g.config.server(), listener, async {
            let _ = stopped.await;
        }));
        countersign_testkit::install_crypto_provider();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let token = g.token("bot");
        let mut failures = Vec::new();
        for (name, body) in cases() {
            // Named first: if the process aborts, the last name printed is why.
            eprintln!("hostile case: {name}");
            let answer = client
                .post(format!("{base}/v1/actions"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            match answer {
                Ok(response) if response.status().as_u16() == 201 || response.status().is_client_error() => {}
                Ok(response) => failures.push(format!("{name}: {}", response.status())),
                Err(e) => failures.push(format!("{name}: no answer: {e}")),
            }
            let health = client.get(format!("{base}/healthz")).send().await.map(|r| r.status().as_u16());
            assert_eq!(health.ok(), Some(200), "the gateway is down after `{name}`");
        }
        assert!(failures.is_empty(), "answers that were neither a decision nor a 4xx:\n{}", failures.join("\n"));
        // Wide, not deep: a body within the size limit holding about
        // 340,000 values is refused before the policy engine sees it.
        let many = json!({"kind": "sql.execute", "resource": "dev-db",
            "payload": {"statement": "SELECT 1", "x": vec![0; 340_000]}});
        let response = client.post(format!("{base}/v1/actions")).bearer_auth(&token).json(&many).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "payload_too_complex", "{error}");
        // Still deciding.
        let routine = json!({"kind": "shell.exec", "resource": "staging-web", "payload": {"argv": ["ls"]}});
        let response =
            client.post(format!("{base}/v1/actions")).bearer_auth(&token).json(&routine).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    });
}
