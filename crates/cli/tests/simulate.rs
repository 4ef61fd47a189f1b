//! `policy simulate` run as a CI job runs it: the binary, a store holding a
//! recorded log, a candidate policy directory, and the exit code and JSON
//! report a pipeline gates on.
//!
//! The log is recorded by the real gateway (in process, on a SQLite store
//! in a temporary data directory) under the standard test policy; events
//! a gateway never writes (bodies that do not fit, a payload nested past
//! JSON's parse limit, a multi-megabyte SQL statement) are appended to the
//! same chain through the store, as a damaged or hostile log would hold
//! them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{assert_code, run, stderr, stdout};
use countersign_audit::AuditDraft;
use countersign_testkit::fixtures::{shell, sql, standard_cast, POLICY};
use countersign_testkit::gateway::{Builder, Gateway};
use serde_json::{json, Value};

/// A log with one action of each kind of decision the standard policy
/// makes: routine, one sre, two dbas, a forbid, a deploy by `ci` and one by
/// an agent outside it.
async fn recorded() -> Gateway {
    let gw = Builder::new(POLICY).cast(standard_cast()).start().await;
    let outcomes = [
        ("bot", shell("staging-web"), "allowed"),
        ("bot", shell("prod-web"), "pending"),
        ("bot", sql("UPDATE accounts SET plan = 'pro' WHERE id = 7"), "pending"),
        ("bot", sql("DROP TABLE users"), "denied"),
        ("ci-bot", json!({"kind": "deploy", "resource": "web", "payload": {"version": "1.2.3"}}), "allowed"),
        ("bot", json!({"kind": "deploy", "resource": "web", "payload": {"version": "1.2.3"}}), "denied"),
    ];
    for (who, action, expected) in outcomes {
        let body = gw.submit(who, action).await;
        assert_eq!(body["status"], expected, "{body}");
    }
    gw
}

fn candidate(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("test.cedar"), text).unwrap();
    path
}

fn simulate(gw: &Gateway, policies: &Path, extra: &[&str]) -> std::process::Output {
    let mut args =
        vec!["policy", "simulate", policies.to_str().unwrap(), "--data-dir", gw.dir.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(output), stderr(output)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_set_in_force_changes_nothing() {
    let gw = recorded().await;
    let output = simulate(&gw, &gw.dir.path().join("policies"), &["--output", "json"]);
    assert_code(&output, 0);
    let report = json_of(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["replayed"], 6, "{report}");
    assert_eq!(report["changed"], 0, "{report}");
    assert_eq!(report["outcomes"]["allowed"]["allowed"], 2);
    assert_eq!(report["outcomes"]["pending"]["pending"], 2);
    assert_eq!(report["outcomes"]["denied"]["denied"], 2);
    assert_eq!(report["examples"], json!([]));
    // The cast's groups come from the store: the test kit enrols people
    // with identity events that carry only their names, which the report
    // counts as unreadable and skips.
    assert_eq!(report["log"]["unknown_principals"], 0, "{report}");
    assert_eq!(report["log"]["malformed"], 13, "{report}");

    let text = simulate(&gw, &gw.dir.path().join("policies"), &[]);
    assert_code(&text, 0);
    assert!(stdout(&text).contains("replayed 6 actions"), "{}", stdout(&text));
    assert!(stdout(&text).contains("no recorded decision would change"), "{}", stdout(&text));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candidate_that_changes_decisions_fails_the_job_with_a_report() {
    let gw = recorded().await;
    let tmp = tempfile::tempdir().unwrap();
    // Production shells need two sres; a deploy freeze; staging is no
    // longer routine for databases (there are none in the log: no change).
    let changed = POLICY.replace(
        "@id(\"prod-shell-sre\")\n@approvers(\"sre\")",
        "@id(\"prod-shell-sre\")\n@approvers(\"sre\")\n@quorum(\"2\")",
    ) + "\n@id(\"deploy-freeze\")\nforbid(principal, action == Action::\"deploy\", resource);\n";
    let dir = candidate(tmp.path(), "changed", &changed);
    let output = simulate(&gw, &dir, &["--output", "json", "--since", "1h"]);
    assert_code(&output, 5);
    let report = json_of(&output);
    assert_eq!(report["replayed"], 6);
    assert_eq!(report["changed"], 2, "{report}");
    assert_eq!(report["changes"], json!({"allowed → denied": 1, "approvers or quorum": 1}));
    assert_eq!(report["by_policy"]["deploy-freeze"]["now_determines"], 1);
    assert_eq!(report["by_policy"]["ci-only-deploys"]["no_longer_determines"], 1);
    assert_eq!(report["by_policy"]["prod-shell-sre"]["requirement_changed"], 1);
    let examples = report["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 2);
    let freeze = examples.iter().find(|e| e["change"] == "outcome").unwrap();
    assert_eq!((freeze["from"].as_str(), freeze["to"].as_str()), (Some("allowed"), Some("denied")));
    assert_eq!(freeze["principal"], "agent:ci-bot");
    assert_eq!(freeze["kind"], "deploy");
    assert_eq!(freeze["resource"], "web");
    assert_eq!(freeze["payload"], r#"{"version":"1.2.3"}"#);
    assert!(freeze["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(freeze["candidate"]["policies"], json!(["deploy-freeze"]));
    let quorum = examples.iter().find(|e| e["change"] == "approvers").unwrap();
    assert_eq!(quorum["recorded"]["requirements"][0]["quorum"], 1);
    assert_eq!(quorum["candidate"]["requirements"][0]["quorum"], 2);

    let text = simulate(&gw, &dir, &[]);
    assert_code(&text, 5);
    let out = stdout(&text);
    assert!(out.contains("2 decisions of 6 would change"), "{out}");
    assert!(out.contains("allowed → denied"), "{out}");
    assert!(out.contains("deploy-freeze"), "{out}");
    assert!(out.contains("agent:ci-bot  deploy on web"), "{out}");

    // Nothing was submitted in the window: nothing to change.
    let future = simulate(&gw, &dir, &["--output", "json", "--since", "2999-01-01T00:00:00Z"]);
    assert_code(&future, 0);
    assert_eq!(json_of(&future)["replayed"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_candidate_is_reported_with_file_and_line() {
    let gw = recorded().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir =
        candidate(tmp.path(), "bad", "permit(principal, action, resource);\npermit(principal, action resource);\n");
    let output = simulate(&gw, &dir, &[]);
    assert_code(&output, 1);
    let expected = format!("{}:2:", dir.join("test.cedar").display());
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    let json = simulate(&gw, &dir, &["--output", "json"]);
    assert_code(&json, 1);
    assert_eq!(json_of(&json)["ok"], false);
    assert!(json_of(&json)["problems"][0].as_str().unwrap().starts_with(&expected));

    let usage = simulate(&gw, &dir, &["--since", "last tuesday"]);
    assert_code(&usage, 2);
    let missing =
        run(&["policy", "simulate", gw.dir.path().join("policies").to_str().unwrap(), "--data-dir", "/nonexistent/x"]);
    assert_code(&missing, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_events_in_the_log_are_reported_not_fatal() {
    let gw = recorded().await;
    let submitted = |id: &str, kind: &str, payload: Value| {
        AuditDraft::raw(
            "agent:bot",
            "action.submitted",
            json!({"id": id, "fingerprint": "sha256:00", "kind": kind, "resource": "prod-db", "payload": payload,
                   "on_behalf_of": null, "justification": null, "labels": [], "context": {}}),
        )
    };
    let decided = |id: &str, status: &str| {
        AuditDraft::raw(
            "system",
            "action.decided",
            json!({"id": id, "status": status, "reason": "r", "policies": [], "errors": [],
                   "policy_hash": "sha256:old", "requirements": [], "expires_at": null}),
        )
    };
    // Nested far past what a JSON reader accepts.
    let mut deep = json!("bottom");
    for _ in 0..1000 {
        deep = json!([deep]);
    }
    // Four megabytes of SQL: the facts parser gives up at its bound.
    let huge = json!({"statement": "SELECT 1; ".repeat(400_000)});
    gw.store
        .append_audit(vec![
            submitted("deep", "sql.execute", deep),
            decided("deep", "allowed"),
            submitted("huge", "sql.execute", huge),
            decided("huge", "allowed"),
            submitted("odd", "shell.exec", json!({})),
            decided("odd", "bogus"),
            AuditDraft::raw("system", "action.decided", json!({"id": "lost", "status": "allowed"})),
        ])
        .await
        .unwrap();
    let output = simulate(&gw, &gw.dir.path().join("policies"), &["--output", "json"]);
    let report = json_of(&output);
    // The huge statement is replayed (the standard policy does not permit
    // an agent outside `dba`'s reach on `prod-db` without approval: it
    // becomes pending, a change); the rest are reported.
    assert_eq!(report["replayed"], 7, "{report}");
    let malformed: Vec<&str> =
        report["malformed"].as_array().unwrap().iter().filter_map(|m| m["type"].as_str()).collect();
    assert!(malformed.iter().filter(|k| **k == "action.submitted").count() >= 1, "{report}");
    assert!(malformed.iter().filter(|k| **k == "action.decided").count() >= 2, "{report}");
    assert_eq!(report["log"]["malformed"], 13 + 3, "{report}");
    let huge = report["examples"].as_array().unwrap().iter().find(|e| e["id"] == "huge").unwrap();
    assert_eq!(huge["truncated"], true);
    assert!(huge["payload"].as_str().unwrap().len() <= 200);
    assert_code(&output, 5);
}
