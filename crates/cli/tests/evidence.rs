//! `countersign audit report` end to end: a gateway records a held action,
//! a refused self-approval and a bad token; the pack says so, renders in
//! headless Chromium, is checked against the signed checkpoint, and turns
//! into an exception when the log is altered or cut short.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";

fn report_json(data: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["audit", "report", "--format", "json", "--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = run(&args);
    let value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("no JSON pack ({e}): {}", stderr(&output)));
    (output.status.code().unwrap(), value)
}

#[test]
fn the_pack_tells_who_asked_who_approved_and_what_was_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data, "127.0.0.1:0");
    let alice = add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre"]);
    let bob = add_identity(&data, &["users", "add", "bob", "--email", "bob@example.com", "--group", "sre"]);
    let mut exec = server
        .client(&alice)
        .args(["exec", "--resource", "prod-web", "--justification", "<b>restart</b>", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pending = wait_for_pending(&server, &bob);
    let id = pending["id"].as_str().unwrap().to_owned();
    // Alice may not approve her own action; a forged token is refused.
    assert_ne!(server.call(&alice, &["approve", &id]).status.code(), Some(0));
    assert_ne!(server.call("cs_not_a_real_token", &["pending"]).status.code(), Some(0));
    assert_code(&server.call(&bob, &["approve", &id]), 0);
    let status = wait_with_timeout(&mut exec, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0));

    let (code, pack) = report_json(&data, &[]);
    assert_eq!(code, 0, "{pack}");
    assert_eq!(pack["verification"]["chain_ok"], true);
    assert_eq!(pack["totals"]["held"], 1);
    assert_eq!(pack["totals"]["approved"], 1);
    assert_eq!(pack["totals"]["released"], 1);
    let action = pack["actions"].as_array().unwrap().iter().find(|a| a["id"] == id.as_str()).unwrap();
    assert_eq!(action["requester"], "user:alice");
    assert_eq!(action["approvals"][0]["by"], "user:bob");
    assert_eq!(action["approvals"][0]["person"], "bob@example.com");
    assert!(action["policy_hash"].as_str().unwrap().starts_with("sha256:"), "{action}");
    assert_eq!(action["outcome"]["status"], "succeeded");
    assert_eq!(pack["refusals"]["self_approval"], 1, "{}", pack["refusals"]);
    assert!(pack["refusals"]["bad_credentials"].as_u64().unwrap() >= 1, "{}", pack["refusals"]);
    assert_eq!(pack["segregation"]["violations"].as_array().unwrap().len(), 0);
    assert_eq!(pack["time_to_decision"]["count"], 1);
    let control = |id: &str| pack["controls"].as_array().unwrap().iter().find(|c| c["control"] == id).unwrap().clone();
    assert_eq!(control("AC-5")["status"], "met");
    assert_eq!(control("CC8.1")["status"], "met");

    // A period before anything happened holds nothing, and still verifies.
    let (code, empty) = report_json(&data, &["--until", "2000-01-01T00:00:00Z"]);
    assert_eq!(code, 0);
    assert_eq!(empty["totals"]["submitted"], 0);
    assert_eq!(
        empty["controls"].as_array().unwrap().iter().find(|c| c["control"] == "AC-5").unwrap()["status"],
        "no_activity"
    );
    let reversed = run(&[
        "audit",
        "report",
        "--data-dir",
        data.to_str().unwrap(),
        "--since",
        "2026-02-01T00:00:00Z",
        "--until",
        "2026-01-01T00:00:00Z",
    ]);
    assert_code(&reversed, 2);

    // The HTML pack, rendered by a real browser.
    let html = tmp.path().join("pack.html");
    assert_code(&run(&["audit", "report", "--data-dir", data.to_str().unwrap(), "-o", html.to_str().unwrap()]), 0);
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.contains("&lt;b&gt;restart&lt;/b&gt;"), "the justification is escaped");
    let dom = chromium(&["--dump-dom", &format!("file://{}", html.display())]);
    for expected in ["Segregation of duties", "user:bob", "bob@example.com", "AU-9", "Time to decision"] {
        assert!(dom.contains(expected), "the rendered page lacks `{expected}`");
    }
    let png = tmp.path().join("pack.png");
    chromium(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1200,1600",
        &format!("file://{}", html.display()),
    ]);
    let shot = std::fs::read(&png).unwrap();
    assert!(shot.starts_with(b"\x89PNG\r\n\x1a\n") && shot.len() > 10_000, "a screenshot of {} bytes", shot.len());
    if let Some(keep) = std::env::var_os("EVIDENCE_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }

    // The gateway signs a checkpoint every second; once one covers the
    // whole log, the pack checks it with the configured key.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let covered = loop {
        let (code, pack) = report_json(&data, &[]);
        let verification = &pack["verification"];
        let size = verification["checkpoint"]["note"].as_str().and_then(|n| n.lines().nth(1)).map(str::to_owned);
        if size.as_deref() == Some(verification["head_seq"].to_string().as_str()) {
            assert_eq!(code, 0, "{verification}");
            break verification.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint covers the log: {verification}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(covered["checkpoint"]["ok"], true, "{covered}");
    assert!(covered["checkpoint"]["key"].as_str().unwrap().contains('+'), "the vkey is named: {covered}");
    server.kill();

    // The last event removed: the chain alone still verifies (a truncated
    // chain is a valid chain), the checkpoint does not.
    let db = rusqlite::Connection::open(data.join("countersign.db")).unwrap();
    let removed = db.execute("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)", []).unwrap();
    assert_eq!(removed, 1);
    drop(db);
    let (code, truncated) = report_json(&data, &[]);
    assert_eq!(code, 1, "{}", truncated["verification"]);
    assert_eq!(truncated["verification"]["chain_ok"], true);
    assert_eq!(truncated["verification"]["checkpoint"]["ok"], false);
    assert!(truncated["verification"]["checkpoint"]["detail"].as_str().unwrap().contains("removed"));

    // An altered event: the pack is still written, says so, and exits 1.
    let db = rusqlite::Connection::open(data.join("countersign.db")).unwrap();
    let changed = db.execute("UPDATE audit SET actor = 'user:mallory' WHERE type = 'approval.accepted'", []).unwrap();
    assert_eq!(changed, 1);
    drop(db);
    let (code, broken) = report_json(&data, &[]);
    assert_eq!(code, 1);
    assert_eq!(broken["verification"]["chain_ok"], false);
    assert_eq!(
        broken["controls"].as_array().unwrap().iter().find(|c| c["control"] == "AU-9").unwrap()["status"],
        "exception"
    );
}

/// Headless Chromium as the machine's probe runs it, with a throwaway profile.
fn chromium(args: &[&str]) -> String {
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing; run scripts/setup-test-deps");
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
