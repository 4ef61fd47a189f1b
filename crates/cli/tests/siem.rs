//! A SIEM sink across a crash: the gateway is killed with SIGKILL while
//! it delivers to a (slow) Splunk HEC stand-in, then restarted; every
//! audit event after the sink started arrives, and an event that arrives
//! twice is the same event (duplicates only by id, the sequence number).
//! The receiver is `crates/siem/tests/peers/receiver.py`, run by the
//! `.venv-peers` Python that `scripts/setup-test-deps` installs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use countersign_testkit::wait;
use serde_json::Value;

use common::{add_identity, assert_code, run, serve_with, write_policies};

const TOKEN: &str = "kill9-hec-token";

fn peer(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative);
    assert!(
        path.exists(),
        "SIEM test peer `{}` is missing: run scripts/setup-test-deps (its PyPI peers go into .venv-peers)",
        path.display()
    );
    path
}

struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Receiver {
    fn start(dir: &Path) -> Self {
        let script = peer("crates/siem/tests/peers/receiver.py");
        let out = dir.join("hec.jsonl");
        // Each answer takes a while, so the kill lands mid-delivery.
        let mut child = Command::new(peer(".venv-peers/bin/python"))
            .arg(&script)
            .args(["--out", out.to_str().unwrap(), "--token", TOKEN, "--delay-ms", "40"])
            .current_dir(script.parent().unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening ").unwrap().parse().unwrap();
        Self { child, port, out }
    }

    /// (seq, hash, type) of every event received, in arrival order.
    fn received(&self) -> Vec<(u64, String, String)> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let e = &v["event"]["event"];
                (
                    e["seq"].as_u64().unwrap(),
                    e["hash"].as_str().unwrap().to_owned(),
                    e["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every event in the store, from `audit export`.
fn exported(data: &Path) -> Vec<Value> {
    let output = run(&["audit", "export", "--data-dir", data.to_str().unwrap()]);
    assert_code(&output, 0);
    String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_kill_9_mid_delivery_loses_no_event_and_duplicates_only_by_id() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let receiver = Receiver::start(tmp.path());
    let config = tmp.path().join("countersign.toml");
    std::fs::write(
        &config,
        format!(
            "[[siem]]\nname = \"hec\"\ntype = \"splunk_hec\"\nurl = \"http://127.0.0.1:{}\"\ntoken = \"{TOKEN}\"\n",
            receiver.port
        ),
    )
    .unwrap();
    let policies = write_policies(tmp.path(), "all.cedar", "permit(principal, action, resource);");
    let flags: [(&str, &OsStr); 2] = [("--config", config.as_os_str()), ("--policies", policies.as_os_str())];
    let mut server = serve_with(&data, "127.0.0.1:0", &flags);

    // The sink starts at the head of the log; then 60 identities are added
    // by the CLI (another process), each an audit event.
    wait::until(Duration::from_secs(60), Duration::from_millis(100), || {
        let started =
            exported(&data).iter().any(|e| e["type"] == "channel.started" && e["body"]["channel"] == "siem-hec");
        if started {
            Ok(())
        } else {
            Err("the sink did not start".to_owned())
        }
    });
    for n in 0..60 {
        add_identity(&data, &["users", "add", &format!("user-{n}"), "--email", &format!("u{n}@example.com")]);
    }
    wait::until(Duration::from_secs(120), Duration::from_millis(20), || {
        let count = receiver.received().len();
        if count >= 10 {
            Ok(())
        } else {
            Err(format!("only {count} events arrived"))
        }
    });
    server.sigkill();
    let at_kill = receiver.received().len();
    let server = serve_with(&data, "127.0.0.1:0", &flags);

    let events = exported(&data);
    let start = events
        .iter()
        .find(|e| e["type"] == "channel.started" && e["body"]["channel"] == "siem-hec")
        .and_then(|e| e["seq"].as_u64())
        .unwrap();
    let wanted: BTreeMap<u64, String> = events
        .iter()
        .filter(|e| e["seq"].as_u64().unwrap() > start)
        .map(|e| (e["seq"].as_u64().unwrap(), e["hash"].as_str().unwrap().to_owned()))
        .collect();
    assert!(wanted.len() >= 60, "{}", wanted.len());
    assert!(at_kill < wanted.len(), "the kill came after every delivery ({at_kill}); it must interrupt it");
    wait::until(Duration::from_secs(180), Duration::from_millis(100), || {
        let got: std::collections::BTreeSet<u64> = receiver.received().iter().map(|(s, _, _)| *s).collect();
        let missing = wanted.keys().filter(|s| !got.contains(s)).count();
        if missing == 0 {
            Ok(())
        } else {
            Err(format!("{missing} events have not arrived; the gateway's log:\n{}", server.log_text()))
        }
    });

    let received = receiver.received();
    let mut seen: BTreeMap<u64, String> = BTreeMap::new();
    for (seq, hash, _) in &received {
        if let Some(earlier) = seen.insert(*seq, hash.clone()) {
            assert_eq!(&earlier, hash, "seq {seq} arrived as two different events");
        }
        if let Some(want) = wanted.get(seq) {
            assert_eq!(want, hash, "seq {seq} arrived with another hash than the log's");
        }
    }
    let users = received.iter().filter(|(_, _, t)| t == "identity.user_created").map(|(s, _, _)| *s);
    assert_eq!(users.collect::<std::collections::BTreeSet<_>>().len(), 60);
    // In order: the first copies of the events come in sequence order.
    let mut firsts = Vec::new();
    for (seq, _, _) in &received {
        if !firsts.contains(seq) {
            firsts.push(*seq);
        }
    }
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
    eprintln!("{} events, {} copies received ({} before the kill)", wanted.len(), received.len(), at_kill);
}
