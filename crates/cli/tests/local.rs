//! The commands that work without a gateway: identities, policies, the
//! audit log and configuration, run through the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{add_identity, assert_code, run, starter_dir, stderr, stdout};
use serde_json::Value;

fn json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

#[test]
fn users_and_agents_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();

    let token = add_identity(
        &data,
        &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre", "--group", "dba"],
    );
    assert!(token.starts_with("csu_"), "{token}");
    let key = add_identity(&data, &["agents", "add", "deploy-bot", "--owner", "alice", "--group", "deployers"]);
    assert!(key.starts_with("csa_"), "{key}");

    let users = json(&run(&["users", "list", "--data-dir", d, "--output", "json"]));
    assert_eq!(users["users"][0]["name"], "alice");
    assert_eq!(users["users"][0]["groups"], serde_json::json!(["sre", "dba"]));
    assert!(users["users"][0].get("token").is_none(), "tokens are never listed");
    let agents = json(&run(&["agents", "list", "--data-dir", d, "--output", "json"]));
    assert_eq!(agents["agents"][0]["name"], "deploy-bot");
    assert_eq!(agents["agents"][0]["owner"], "alice");

    // Only the hash is stored: the token appears nowhere in the database.
    let db = std::fs::read(data.join("countersign.db")).unwrap();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));

    let revoked = run(&["agents", "revoke", "deploy-bot", "--data-dir", d]);
    assert_code(&revoked, 0);
    assert!(stdout(&revoked).contains("0 open requests revoked"), "{}", stdout(&revoked));
    let agents = json(&run(&["agents", "list", "--data-dir", d, "--output", "json"]));
    assert!(agents["agents"][0]["revoked_at"].is_string(), "{agents}");
    assert_code(&run(&["users", "revoke", "alice", "--data-dir", d]), 0);
    let again = run(&["users", "revoke", "nobody", "--data-dir", d]);
    assert_code(&again, 1);

    let text = run(&["users", "list", "--data-dir", d]);
    assert_code(&text, 0);
    assert!(stdout(&text).starts_with("NAME"), "{}", stdout(&text));
}

#[test]
fn identity_mistakes_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com"]);

    let duplicate = run(&["users", "add", "alice", "--email", "other@example.com", "--data-dir", d]);
    assert_code(&duplicate, 1);
    assert_eq!(stderr(&duplicate).lines().count(), 1, "{}", stderr(&duplicate));
    assert!(stderr(&duplicate).starts_with("error: ") && stderr(&duplicate).contains("alice"));

    let bad_email = run(&["users", "add", "bob", "--email", "not-an-email", "--data-dir", d]);
    assert!(matches!(bad_email.status.code(), Some(1 | 2)), "{bad_email:?}");
    assert!(stderr(&bad_email).contains("not-an-email"), "{}", stderr(&bad_email));

    let bad_name = run(&["users", "add", "has space", "--email", "b@example.com", "--data-dir", d]);
    assert_code(&bad_name, 2);

    let no_owner = run(&["agents", "add", "bot", "--owner", "ghost", "--data-dir", d]);
    assert_code(&no_owner, 1);
    assert!(stderr(&no_owner).contains("ghost"), "{}", stderr(&no_owner));

    let dup_agent = add_identity(&data, &["agents", "add", "bot"]);
    assert!(!dup_agent.is_empty());
    assert_code(&run(&["agents", "add", "bot", "--data-dir", d]), 1);

    let missing = run(&["users", "list", "--data-dir", tmp.path().join("nowhere").to_str().unwrap()]);
    assert_code(&missing, 1);
    assert!(stderr(&missing).contains("no countersign store"), "{}", stderr(&missing));
}

#[test]
fn policy_check_reports_positions() {
    let good = run(&["policy", "check", starter_dir().to_str().unwrap()]);
    assert_code(&good, 0);
    assert!(stdout(&good).starts_with("ok: 13 policies, hash sha256:"), "{}", stdout(&good));

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("broken.cedar");
    std::fs::write(
        &file,
        "@id(\"a\")\npermit(principal, action, resource);\n\n@id(\"b\")\npermit(principal action, resource);\n",
    )
    .unwrap();
    let bad = run(&["policy", "check", tmp.path().to_str().unwrap()]);
    assert_code(&bad, 1);
    let first = stderr(&bad).lines().next().unwrap_or_default().to_owned();
    let prefix = format!("{}:", file.display());
    assert!(first.starts_with(&prefix), "{first}");
    let mut position = first[prefix.len()..].split(':');
    let line: usize = position.next().unwrap().parse().unwrap();
    let column: usize = position.next().unwrap().parse().unwrap();
    assert_eq!(line, 5, "{first}");
    assert!(column > 1, "{first}");

    assert_code(&run(&["policy", "check", tmp.path().join("missing").to_str().unwrap()]), 1);

    // A `*.cedar` that cannot be read is a problem, never skipped.
    let links = tempfile::tempdir().unwrap();
    std::fs::write(links.path().join("base.cedar"), "permit(principal, action, resource);").unwrap();
    std::os::unix::fs::symlink(links.path().join("gone.cedar"), links.path().join("deny.cedar")).unwrap();
    let dangling = run(&["policy", "check", links.path().to_str().unwrap()]);
    assert_code(&dangling, 1);
    assert!(stderr(&dangling).contains("`deny.cedar`"), "{}", stderr(&dangling));
}

#[test]
fn policy_test_exit_codes_follow_the_cases() {
    let dir = starter_dir();
    let cases = dir.join("cases.json");
    let pass = run(&["policy", "test", dir.to_str().unwrap(), cases.to_str().unwrap()]);
    assert_code(&pass, 0);
    assert!(
        stdout(&pass).contains("PASS shell command on staging runs at once → allowed [routine-nonprod]"),
        "{}",
        stdout(&pass)
    );

    let tmp = tempfile::tempdir().unwrap();
    let wrong = tmp.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"[{"name": "prod is routine (wrong)",
             "principal": {"kind": "agent", "name": "bot", "groups": []},
             "action": {"kind": "shell.exec", "resource": "prod-web", "payload": {"argv": ["ls"]}},
             "expect": "allowed"}]"#,
    )
    .unwrap();
    let fail = run(&["policy", "test", dir.to_str().unwrap(), wrong.to_str().unwrap()]);
    assert_code(&fail, 1);
    assert!(stdout(&fail).contains("FAIL prod is routine (wrong) → pending [prod-needs-sre]"), "{}", stdout(&fail));
    assert!(stdout(&fail).contains("(expected allowed)"), "{}", stdout(&fail));

    let as_json = run(&["policy", "test", dir.to_str().unwrap(), wrong.to_str().unwrap(), "--output", "json"]);
    assert_code(&as_json, 1);
    let value = json(&as_json);
    assert_eq!(value["failed"], 1);
    assert_eq!(value["cases"][0]["outcome"], "pending");

    let garbage = tmp.path().join("garbage.json");
    std::fs::write(&garbage, "[{").unwrap();
    assert_code(&run(&["policy", "test", dir.to_str().unwrap(), garbage.to_str().unwrap()]), 1);
}

#[test]
fn audit_verify_finds_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre"]);
    add_identity(&data, &["users", "add", "bob", "--email", "bob@example.com"]);
    add_identity(&data, &["agents", "add", "bot", "--owner", "bob"]);
    assert_code(&run(&["agents", "revoke", "bot", "--data-dir", d]), 0);

    let ok = run(&["audit", "verify", "--data-dir", d]);
    assert_code(&ok, 0);
    assert!(stdout(&ok).starts_with("verified 4 events; head seq 4 hash "), "{}", stdout(&ok));
    assert!(stderr(&ok).contains("events/s"), "{}", stderr(&ok));
    let ok = json(&run(&["audit", "verify", "--data-dir", d, "--output", "json"]));
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["events"], 4);
    assert_eq!(ok["head_seq"], 4);

    let jsonl = run(&["audit", "export", "--data-dir", d]);
    assert_code(&jsonl, 0);
    let events: Vec<Value> = stdout(&jsonl).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["type"], "identity.user_created");
    assert_eq!(events[3]["type"], "identity.agent_revoked");
    assert!(events[0]["actor"].as_str().unwrap().starts_with("cli:"));
    let csv = run(&["audit", "export", "--data-dir", d, "--format", "csv"]);
    assert_code(&csv, 0);
    assert!(stdout(&csv).starts_with("seq,time,actor,type,body,prev_hash,hash\r\n1,"), "{}", stdout(&csv));
    let future = run(&["audit", "export", "--data-dir", d, "--since", "2999-01-01T00:00:00Z"]);
    assert_code(&future, 0);
    assert!(stdout(&future).is_empty());
    assert_code(&run(&["audit", "export", "--data-dir", d, "--since", "yesterday"]), 2);

    let db = rusqlite::Connection::open(data.join("countersign.db")).unwrap();
    let changed = db.execute("UPDATE audit SET body = '{\"name\":\"mallory\"}' WHERE seq = 2", []).unwrap();
    assert_eq!(changed, 1);
    drop(db);

    let broken = run(&["audit", "verify", "--data-dir", d]);
    assert_code(&broken, 1);
    assert!(stdout(&broken).starts_with("audit chain broken at seq 2:"), "{}", stdout(&broken));
    let broken = json(&run(&["audit", "verify", "--data-dir", d, "--output", "json"]));
    assert_eq!(broken["ok"], false);
    assert_eq!(broken["first_bad_seq"], 2);
}

#[test]
fn config_check_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.toml");
    std::fs::write(&good, "[server]\nlisten = \"127.0.0.1:9000\"\n\n[approval]\ndefault_timeout = \"1h\"\n").unwrap();
    let ok = run(&["config", "check", "--config", good.to_str().unwrap()]);
    assert_code(&ok, 0);
    assert!(stdout(&ok).contains("listen = \"127.0.0.1:9000\""), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("default_timeout = \"1h\""), "{}", stdout(&ok));

    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"127.0.0.1:9000\"\nlisen = 1\n").unwrap();
    let err = run(&["config", "check", "--config", bad.to_str().unwrap()]);
    assert_code(&err, 1);
    let text = stderr(&err);
    assert!(text.starts_with(&format!("error: {}:3:", bad.display())), "{text}");
    assert!(text.contains("lisen"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");

    let env = common::bin().args(["config", "check"]).env("COUNTERSIGN_SERVER_LISEN", "x").output().unwrap();
    assert_code(&env, 1);
}

#[test]
fn help_documents_exit_codes() {
    let help = run(&["--help"]);
    assert_code(&help, 0);
    let text = stdout(&help);
    for code in ["3  denied", "4  expired, revoked or cancelled", "2  usage"] {
        assert!(text.contains(code), "{text}");
    }
    assert_code(&run(&["users", "add"]), 2);
    assert_code(&run(&["--no-such-flag"]), 2);
}
