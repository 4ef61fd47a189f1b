//! End to end against a real `countersign serve`: the exec wrapper's
//! allowed, approved and denied paths, and a kill -9 in the middle of a
//! pending request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{
    add_identity, assert_code, run, serve, serve_with, stderr, stdout, wait_for_pending, wait_with_timeout,
    write_policies, Server,
};
use serde_json::Value;

struct Setup {
    _tmp: tempfile::TempDir,
    data: std::path::PathBuf,
    server: Server,
    agent: String,
    approver: String,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data, "127.0.0.1:0");
    let approver = add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre"]);
    add_identity(&data, &["users", "add", "olga", "--email", "olga@example.com"]);
    let agent = add_identity(&data, &["agents", "add", "deploy-bot", "--owner", "olga"]);
    Setup { _tmp: tmp, data, server, agent, approver }
}

#[test]
fn exec_runs_routine_actions_at_once() {
    let s = setup();
    let out = s.server.call(
        &s.agent,
        &["exec", "--kind", "shell.exec", "--resource", "staging-web", "--", "sh", "-c", "echo hi; exit 7"],
    );
    assert_code(&out, 7);
    assert_eq!(stdout(&out), "hi\n");

    // By name, not by path: a program run by a path outside the system's
    // program directories is `unresolved` and would wait for an SRE.
    let missing =
        s.server.call(&s.agent, &["exec", "--resource", "staging-web", "--", "nonexistent-program-for-this-test"]);
    assert_code(&missing, 127);

    let denied = s.server.call(&s.agent, &["exec", "--resource", "prod-db", "--label", "destructive", "--", "true"]);
    assert_code(&denied, 3);
    assert!(stderr(&denied).contains("no-destructive-agents-in-prod"), "{}", stderr(&denied));

    let no_token = s.server.call("", &["exec", "--resource", "staging-web", "--", "true"]);
    assert_code(&no_token, 1);
    let bad_token = s.server.call("csa_nope", &["exec", "--resource", "staging-web", "--", "true"]);
    assert_code(&bad_token, 1);
    assert!(stderr(&bad_token).starts_with("error: "), "{}", stderr(&bad_token));
}

#[test]
fn exec_waits_for_approval_then_runs() {
    let s = setup();
    let mut exec = s
        .server
        .client(&s.agent)
        .args([
            "exec",
            "--kind",
            "shell.exec",
            "--resource",
            "prod-web",
            "--justification",
            "deploy",
            "--",
            "sh",
            "-c",
            "echo approved-run",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pending = wait_for_pending(&s.server, &s.approver);
    assert_eq!(pending["resource"], "prod-web");
    assert_eq!(pending["payload"]["argv"], serde_json::json!(["sh", "-c", "echo approved-run"]));
    let id = pending["id"].as_str().unwrap();

    // The owner of the agent may not approve it.
    let olga = add_identity(&s.data, &["users", "add", "olga2", "--email", "OLGA@example.com", "--group", "sre"]);
    let refused = s.server.call(&olga, &["approve", id]);
    assert_code(&refused, 1);
    assert!(stderr(&refused).starts_with("error: "), "{}", stderr(&refused));

    let approved = s.server.call(&s.approver, &["approve", id, "--comment", "ship it"]);
    assert_code(&approved, 0);
    let status = wait_with_timeout(&mut exec, Duration::from_secs(30));
    let output = exec.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "approved-run\n");
    assert!(stderr(&output).contains("prod-needs-sre"), "who was asked: {}", stderr(&output));

    let shown = s.server.call(&s.approver, &["show", id, "--output", "json"]);
    assert_code(&shown, 0);
    let view: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(view["status"], "released");
    assert_eq!(view["outcome"]["status"], "succeeded");
    assert_eq!(view["outcome"]["exit_code"], 0);
    assert_eq!(view["approvals"][0]["comment"], "ship it");
}

#[test]
fn exec_exits_3_when_an_approver_denies() {
    let s = setup();
    let mut exec = s
        .server
        .client(&s.agent)
        .args(["exec", "--resource", "prod-web", "--", "touch", "should-not-exist"])
        .current_dir(s.data.parent().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pending = wait_for_pending(&s.server, &s.approver);
    let denied = s.server.call(&s.approver, &["deny", pending["id"].as_str().unwrap(), "--comment", "not today"]);
    assert_code(&denied, 0);
    let status = wait_with_timeout(&mut exec, Duration::from_secs(30));
    assert_eq!(status.code(), Some(3));
    assert!(!s.data.parent().unwrap().join("should-not-exist").exists());
}

#[test]
fn a_pending_request_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data, "127.0.0.1:0");
    let approver = add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre"]);
    let agent = add_identity(&data, &["agents", "add", "deploy-bot"]);
    let mut exec = server
        .client(&agent)
        .args(["exec", "--resource", "prod-web", "--", "echo", "after-restart"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let before = wait_for_pending(&server, &approver);
    let id = before["id"].as_str().unwrap().to_owned();
    let port = server.port;
    server.kill();

    // Same port, so the waiting exec finds the gateway again.
    let server = serve(&data, &format!("127.0.0.1:{port}"));
    let shown = server.call(&approver, &["show", &id, "--output", "json"]);
    assert_code(&shown, 0);
    let after: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(after["status"], "pending");
    assert_eq!(after["expires_at"], before["expires_at"]);
    assert_eq!(after["fingerprint"], before["fingerprint"]);

    assert_code(&server.call(&approver, &["approve", &id]), 0);
    let status = wait_with_timeout(&mut exec, Duration::from_secs(60));
    let output = exec.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "after-restart\n");

    let verify = run(&["audit", "verify", "--data-dir", data.to_str().unwrap(), "--output", "json"]);
    assert_code(&verify, 0);
    let verified: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verified["ok"], true);
}

#[test]
fn ctrl_c_while_pending_cancels_the_request() {
    let s = setup();
    let exec = s
        .server
        .client(&s.agent)
        .args(["exec", "--resource", "prod-web", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pending = wait_for_pending(&s.server, &s.approver);
    let sent = std::process::Command::new("kill").args(["-s", "INT", &exec.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let mut exec = exec;
    let status = wait_with_timeout(&mut exec, Duration::from_secs(30));
    assert_eq!(status.code(), Some(4));
    let shown = s.server.call(&s.approver, &["show", pending["id"].as_str().unwrap(), "--output", "json"]);
    let view: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(view["status"], "cancelled");
}

#[test]
fn exec_exits_4_when_the_request_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let policies = write_policies(
        tmp.path(),
        "quick.cedar",
        "@id(\"quick-expiry\")\n@approvers(\"sre\")\n@timeout(\"2s\")\npermit(principal, action, resource);\n",
    );
    let server = serve_with(&data, "127.0.0.1:0", &[("--policies", policies.as_os_str())]);
    let agent = add_identity(&data, &["agents", "add", "bot"]);
    let out = server.call(&agent, &["exec", "--resource", "anything", "--", "true"]);
    server.kill();
    assert_code(&out, 4);
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
}

#[test]
fn exec_streams_output_as_it_is_produced() {
    use std::io::BufRead;
    let s = setup();
    let mut exec = s
        .server
        .client(&s.agent)
        .args(["exec", "--resource", "staging-web", "--", "sh", "-c", "echo first; sleep 3; echo second"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(exec.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, "first");
    assert!(exec.try_wait().unwrap().is_none(), "the first line arrived only after the command ended");
    assert_eq!(lines.next().unwrap().unwrap(), "second");
    assert_eq!(wait_with_timeout(&mut exec, Duration::from_secs(30)).code(), Some(0));
}

#[test]
fn sighup_reloads_policies_and_keeps_the_old_set_when_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let policies = write_policies(tmp.path(), "p.cedar", "@id(\"all\")\npermit(principal, action, resource);\n");
    let file = policies.join("p.cedar");
    let server = serve_with(&data, "127.0.0.1:0", &[("--policies", policies.as_os_str())]);
    let agent = add_identity(&data, &["agents", "add", "bot"]);
    let exec = |resource: &str| server.call(&agent, &["exec", "--resource", resource, "--", "true"]).status.code();
    let hup = |pid: u32| {
        assert!(std::process::Command::new("kill").args(["-s", "HUP", &pid.to_string()]).status().unwrap().success());
    };
    assert_eq!(exec("a"), Some(0));

    // A broken file is refused; the previous set stays in force.
    std::fs::write(&file, "permit(principal, action resource);\n").unwrap();
    hup(server.child.id());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(exec("b"), Some(0));

    std::fs::write(
        &file,
        "@id(\"nothing\")\nforbid(principal, action, resource);\n@id(\"all\")\npermit(principal, action, resource);\n",
    )
    .unwrap();
    hup(server.child.id());
    let started = std::time::Instant::now();
    while exec("c") != Some(3) {
        assert!(started.elapsed() < Duration::from_secs(20), "the reload did not take effect");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn revoking_an_agent_revokes_its_pending_requests() {
    let s = setup();
    let mut exec = s
        .server
        .client(&s.agent)
        .args(["exec", "--resource", "prod-web", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_pending(&s.server, &s.approver);
    let revoked = run(&["agents", "revoke", "deploy-bot", "--data-dir", s.data.to_str().unwrap()]);
    assert_code(&revoked, 0);
    assert!(stdout(&revoked).contains("1 open request revoked"), "{}", stdout(&revoked));
    let status = wait_with_timeout(&mut exec, Duration::from_secs(30));
    assert_eq!(status.code(), Some(4));
}
