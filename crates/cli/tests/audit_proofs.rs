//! Signed checkpoints and proofs end to end against a real `countersign
//! serve`: a request's events proven and checked offline, the checkpoint
//! signed at shutdown, and the tampering each check must catch (a forged
//! or altered proof, a wrong key, a truncated log, a rewritten history
//! with its chain hashes recomputed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::{add_identity, assert_code, run, serve, stdout, wait_with_timeout, Server};
use countersign_audit::AuditEvent;
use countersign_core::Timestamp;
use countersign_testkit::wait;
use serde_json::Value;

/// A plain HTTP/1.0 GET (no chunking): status and body.
fn get(server: &Server, path: &str, token: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n", server.addr()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn checkpoint_size(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// Stops the gateway as an operator would (SIGTERM) and waits for it.
fn stop(mut server: Server) {
    let pid = server.child.id().to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = wait_with_timeout(&mut server.child, Duration::from_secs(30));
    assert!(exit.success(), "{exit:?}\n{}", server.log_text());
}

fn events(d: &str) -> Vec<Value> {
    stdout(&run(&["audit", "export", "--data-dir", d])).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn stored_checkpoint(data: &Path) -> String {
    let db = rusqlite::Connection::open(data.join("countersign.db")).unwrap();
    db.query_row("SELECT value FROM kv WHERE namespace = 'audit' AND key = 'checkpoint'", [], |r| r.get(0)).unwrap()
}

struct Setup {
    tmp: tempfile::TempDir,
    data: std::path::PathBuf,
    server: Server,
    auditor: String,
    agent: String,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data, "127.0.0.1:0");
    let auditor = add_identity(&data, &["users", "add", "ann", "--email", "ann@example.com", "--group", "auditor"]);
    let agent = add_identity(&data, &["agents", "add", "bot"]);
    Setup { tmp, data, server, auditor, agent }
}

/// Runs a routine action; returns its request id and the seq of its last event.
fn act(s: &Setup) -> (String, u64) {
    let out = s.server.call(&s.agent, &["exec", "--kind", "shell.exec", "--resource", "staging-web", "--", "true"]);
    assert_code(&out, 0);
    let all = events(s.data.to_str().unwrap());
    let id =
        all.iter().rev().find(|e| e["type"] == "action.submitted").unwrap()["body"]["id"].as_str().unwrap().to_owned();
    let last = all.iter().filter(|e| e["body"]["id"] == id.as_str()).map(|e| e["seq"].as_u64().unwrap()).max().unwrap();
    (id, last)
}

/// Waits until the served checkpoint covers `seq`; returns its note.
fn checkpoint_covering(s: &Setup, seq: u64) -> String {
    wait::until(Duration::from_secs(20), Duration::from_millis(100), || {
        let (status, note) = get(&s.server, "/v1/audit/checkpoint", &s.auditor);
        if status == 200 && checkpoint_size(&note) >= seq {
            Ok(note)
        } else {
            Err(format!("no checkpoint covering seq {seq}: {status} {note}"))
        }
    })
}

#[test]
fn a_request_is_proven_and_checked_offline() {
    let s = setup();
    let d = s.data.to_str().unwrap();
    let (id, last) = act(&s);
    let note = checkpoint_covering(&s, last);

    let key = run(&["audit", "key", "--data-dir", d]);
    assert_code(&key, 0);
    let vkey = stdout(&key).trim().to_owned();
    assert_eq!(get(&s.server, "/v1/audit/key", &s.auditor), (200, format!("{vkey}\n")));
    assert!(note.starts_with(&format!("{}\n", vkey.split('+').next().unwrap())), "origin is the key's name: {note}");
    // The key is the auditors' business, and bad proof requests are JSON errors.
    assert_eq!(get(&s.server, "/v1/audit/checkpoint", &s.agent).0, 403);
    let (status, body) = get(&s.server, "/v1/audit/proof/inclusion?seq=0", &s.auditor);
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "invalid_proof_request");
    let (status, body) =
        get(&s.server, &format!("/v1/audit/proof/inclusion?seq={last}&size={}", checkpoint_size(&note)), &s.auditor);
    assert_eq!(status, 200, "{body}");
    let proof: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(proof["root"].as_str().unwrap(), note.lines().nth(2).unwrap());
    let (status, body) = get(&s.server, "/v1/audit/proof/consistency?from=1", &s.auditor);
    assert_eq!(status, 200, "{body}");

    let file = s.tmp.path().join("proof.tlog-proof");
    let f = file.to_str().unwrap();
    let proved = run(&["audit", "prove", &id, "--data-dir", d, "-o", f]);
    assert_code(&proved, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
    assert_eq!(text.matches("c2sp.org/tlog-proof@v1\n").count(), 3, "submitted, decided, outcome");

    // Offline: the gateway is gone, and so is the store.
    drop(s.server);
    std::fs::remove_dir_all(&s.data).unwrap();
    let ok = run(&["audit", "verify-proof", f, "--key", &vkey]);
    assert_code(&ok, 0);
    let out = stdout(&ok);
    assert!(out.contains("action.submitted") && out.contains(&id), "{out}");
    assert!(out.contains("verified 3 events against checkpoint"), "{out}");
    let json: Value =
        serde_json::from_str(&stdout(&run(&["audit", "verify-proof", f, "--key", &vkey, "--output", "json"]))).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["events"].as_array().unwrap().len(), 3);

    // A proof hash altered, an event rewritten, the checkpoint's size
    // changed, an index moved: each fails.
    let lines: Vec<&str> = text.lines().collect();
    let hash_line = lines.iter().position(|l| l.len() == 44 && !l.contains(' ')).unwrap();
    let mut flipped = BASE64.decode(lines[hash_line]).unwrap();
    flipped[0] ^= 1;
    let altered_hash = text.replacen(lines[hash_line], &BASE64.encode(flipped), 1);
    let extra = lines[1].strip_prefix("extra ").unwrap();
    let event = String::from_utf8(BASE64.decode(extra).unwrap()).unwrap();
    let forged_event = text.replacen(extra, &BASE64.encode(event.replace("agent:bot", "agent:someone-else")), 1);
    let size = checkpoint_size(&note);
    let grown = text.replace(&format!("\n{size}\n"), &format!("\n{}\n", size + 1));
    let index_line = lines.iter().find(|l| l.starts_with("index ")).unwrap();
    let moved = text.replacen(index_line, "index 0", 1);
    for (what, forged) in [("hash", altered_hash), ("event", forged_event), ("size", grown), ("index", moved)] {
        let path = s.tmp.path().join(format!("{what}.tlog-proof"));
        std::fs::write(&path, forged).unwrap();
        let out = run(&["audit", "verify-proof", path.to_str().unwrap(), "--key", &vkey]);
        assert_code(&out, 1);
        assert!(stdout(&out).starts_with("proof invalid: "), "{what}: {}", stdout(&out));
    }
    // Another key, or no key at all.
    let other = run(&["audit", "key", "--generate", vkey.split('+').next().unwrap()]);
    assert_code(&other, 0);
    let other_vkey = common::stderr(&other).trim().trim_start_matches("vkey: ").to_owned();
    assert_code(&run(&["audit", "verify-proof", f, "--key", &other_vkey]), 1);
    assert_code(&run(&["audit", "verify-proof", f, "--key", "not-a-key"]), 2);
}

#[test]
fn the_gateway_signs_at_shutdown_and_a_saved_checkpoint_catches_truncation_and_rewrites() {
    let s = setup();
    let d = s.data.to_str().unwrap().to_owned();
    let (_, last) = act(&s);
    let saved_note = checkpoint_covering(&s, last);
    let saved = s.tmp.path().join("saved.checkpoint");
    std::fs::write(&saved, &saved_note).unwrap();
    act(&s);
    let data = s.data.clone();
    let tmp = s.tmp;
    stop(s.server);

    // The last checkpoint covers every event, the shutdown's too.
    let all = events(&d);
    assert_eq!(checkpoint_size(&stored_checkpoint(&data)), all.len() as u64);

    let since = |dir: &str| run(&["audit", "verify", "--data-dir", dir, "--since-checkpoint", saved.to_str().unwrap()]);
    let ok = since(&d);
    assert_code(&ok, 0);
    assert!(stdout(&ok).contains("the log extends checkpoint"), "{}", stdout(&ok));

    // Truncation below the checkpoint: the chain alone still verifies.
    let truncated = tmp.path().join("truncated");
    copy_dir(&data, &truncated);
    let db = rusqlite::Connection::open(truncated.join("countersign.db")).unwrap();
    let cut = checkpoint_size(&saved_note);
    db.execute("DELETE FROM audit WHERE seq >= ?1", [i64::try_from(cut).unwrap()]).unwrap();
    drop(db);
    let t = truncated.to_str().unwrap();
    assert_code(&run(&["audit", "verify", "--data-dir", t]), 0);
    let out = since(t);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("it was truncated"), "{}", stdout(&out));

    // A rewritten event with every later hash recomputed: the chain
    // verifies, the checkpoint does not.
    let rewritten = tmp.path().join("rewritten");
    copy_dir(&data, &rewritten);
    rewrite_history(&rewritten.join("countersign.db"), 2);
    let r = rewritten.to_str().unwrap();
    assert_code(&run(&["audit", "verify", "--data-dir", r]), 0);
    let out = since(r);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("history was rewritten"), "{}", stdout(&out));
    let json: Value = serde_json::from_str(&stdout(&run(&[
        "audit",
        "verify",
        "--data-dir",
        r,
        "--since-checkpoint",
        saved.to_str().unwrap(),
        "--output",
        "json",
    ])))
    .unwrap();
    assert_eq!(json["ok"], false);

    // A checkpoint signed by another key is refused when the key is given.
    let other = run(&["audit", "key", "--generate", "other/audit"]);
    let other_vkey = common::stderr(&other).trim().trim_start_matches("vkey: ").to_owned();
    let out = run(&[
        "audit",
        "verify",
        "--data-dir",
        &d,
        "--since-checkpoint",
        saved.to_str().unwrap(),
        "--key",
        &other_vkey,
    ]);
    assert_code(&out, 1);

    // And the gateway does not sign over the rewritten history.
    let before = stored_checkpoint(&rewritten);
    let server = serve(&rewritten, "127.0.0.1:0");
    add_identity(&rewritten, &["users", "add", "late", "--email", "late@example.com"]);
    wait::until(Duration::from_secs(20), Duration::from_millis(100), || {
        if server.log_text().contains("no longer matches the checkpoint") {
            Ok(())
        } else {
            Err(format!("no refusal logged:\n{}", server.log_text()))
        }
    });
    stop(server);
    assert_eq!(stored_checkpoint(&rewritten), before);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        } else {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        }
    }
}

/// Changes event `seq`'s actor and recomputes its hash and every later
/// event's links and hashes, as someone with write access to the store could.
fn rewrite_history(db: &Path, seq: u64) {
    let db = rusqlite::Connection::open(db).unwrap();
    let mut events: Vec<AuditEvent> = db
        .prepare("SELECT seq, time, actor, type, body, prev_hash, hash FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok(AuditEvent {
                seq: u64::try_from(r.get::<_, i64>(0)?).unwrap(),
                time: Timestamp(r.get(1)?),
                actor: r.get(2)?,
                kind: r.get(3)?,
                body: r.get(4)?,
                prev_hash: r.get(5)?,
                hash: r.get(6)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = None;
    for event in events.iter_mut() {
        if let Some(prev) = prev.take() {
            event.prev_hash = prev;
        }
        if event.seq == seq {
            event.actor = "user:mallory".to_owned();
        }
        if event.seq >= seq {
            event.hash = event.compute_hash();
            db.execute(
                "UPDATE audit SET actor = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
                (&event.actor, &event.prev_hash, &event.hash, i64::try_from(event.seq).unwrap()),
            )
            .unwrap();
        }
        prev = Some(event.hash.clone());
    }
}
