//! A gateway with `[[siem]]` sinks fed by the outbox, the golden audit
//! events (one of every kind and body shape, from `countersign-core`), and
//! the test peers installed by `scripts/setup-test-deps`: rsyslog from
//! Debian (`scripts/setup.d/siem.sh`) and the PyPI packages in
//! `.venv-peers` (`tests/peers/requirements.txt`). A missing peer fails the
//! test with what to run; it never skips it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use countersign_audit::{AuditDraft, AuditEvent};
use countersign_channels::OutboxOptions;
use countersign_gateway::AppState;
use countersign_siem::Siem;
use countersign_testkit::{Builder, Gateway};
use serde_json::Value;

pub const GOLDEN: &str = include_str!("../../../core/tests/golden/events.jsonl");

/// A signed note standing in for the checkpointer's.
pub const CHECKPOINT: &str =
    "countersign.example/audit\n42\nqUX4ZvV2Jq1pFq8mN1gD1Yb2c0F5aHfOe7m3CqkzHq0=\n\n— countersign.example/audit Az3grlgtzZ0Fz1gN6zW1Gg==\n";

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A test peer's path; missing, the test fails saying how to install it.
pub fn peer(path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    let full = if path.is_absolute() { path.to_owned() } else { root().join(path) };
    assert!(
        full.exists(),
        "SIEM test peer `{}` is missing: run scripts/setup-test-deps (scripts/setup.d/siem.sh installs rsyslog; \
         scripts/setup.d/mcp.sh the PyPI peers of tests/peers/requirements.txt into .venv-peers)",
        full.display()
    );
    full
}

pub fn python() -> PathBuf {
    peer(".venv-peers/bin/python")
}

/// A script of this crate's `tests/peers`.
pub fn script(name: &str) -> PathBuf {
    peer(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers").join(name))
}

/// A loopback port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Fast delivery timings, so retries happen within a test.
pub fn options() -> OutboxOptions {
    OutboxOptions {
        poll: Duration::from_millis(50),
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        batch: 50,
        ..OutboxOptions::default()
    }
}

/// A gateway whose config file holds `siem` (`[[siem]]` sections), with
/// its sinks' workers running and their cursors placed; the checkpointer's
/// key holds [`CHECKPOINT`].
pub async fn gateway(siem: &str) -> (Gateway, Siem) {
    let gateway = Builder::new("permit(principal, action, resource);").config(siem).start().await;
    let kv = gateway.state.key_values("audit");
    assert!(kv.compare_and_set("checkpoint", None, Some(CHECKPOINT.to_owned())).await.unwrap());
    let sinks = Siem::new(gateway.state.clone(), &gateway.config.siem).unwrap();
    sinks.spawn(&options());
    for config in &gateway.config.siem {
        let key = format!("cursor:{}", config.name);
        wait_for(&format!("the cursor of `{}`", config.name), 30, || async {
            gateway.state.key_values("channels").get(&key).await.unwrap().is_some()
        })
        .await;
    }
    (gateway, sinks)
}

/// Appends every golden event; returns the events as sealed.
pub async fn append_golden(state: &AppState) -> Vec<AuditEvent> {
    let drafts: Vec<AuditDraft> = GOLDEN
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            AuditDraft::raw(record["actor"].as_str().unwrap(), record["type"].as_str().unwrap(), record["body"].clone())
        })
        .collect();
    let count = drafts.len();
    let last = state.append_audit(drafts).await.unwrap();
    let first = last + 1 - count as u64;
    let events = state.audit_events(first - 1, count).await.unwrap();
    assert_eq!(events.len(), count);
    events
}

/// Waits until `check` holds, failing after `seconds` with what it waited for.
pub async fn wait_for<F, Fut>(what: &str, seconds: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What arrived, by sequence number, checked against what was sent: every
/// copy of an event is the same event (duplicates only by id).
pub fn by_seq(copies: impl IntoIterator<Item = (u64, String)>) -> BTreeMap<u64, String> {
    let mut seen = BTreeMap::new();
    for (seq, hash) in copies {
        if let Some(earlier) = seen.insert(seq, hash.clone()) {
            assert_eq!(earlier, hash, "two different events arrived as seq {seq}");
        }
    }
    seen
}

/// Asserts that every one of `events` arrived with its hash, and nothing
/// else from their range of the log (earlier events, such as the other
/// sinks' `channel.started`, are not part of the test).
pub fn assert_all_arrived(arrived: &BTreeMap<u64, String>, events: &[AuditEvent]) {
    let first = events.first().map_or(0, |e| e.seq);
    let sent: BTreeMap<u64, String> = events.iter().map(|e| (e.seq, e.hash.clone())).collect();
    let last = events.last().map_or(0, |e| e.seq);
    let wanted: std::collections::BTreeSet<u64> = sent.keys().copied().collect();
    let got: BTreeMap<u64, String> = arrived.range(first..=last).map(|(k, v)| (*k, v.clone())).collect();
    let missing: Vec<u64> = wanted.iter().filter(|s| !got.contains_key(s)).copied().collect();
    let extra: Vec<u64> = got.keys().filter(|s| !wanted.contains(s)).copied().collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, not sent {extra:?}");
    for (seq, hash) in &sent {
        assert_eq!(&got[seq], hash, "seq {seq} arrived with another hash");
    }
}

/// The Python receiver (`tests/peers/receiver.py`): OTLP, HEC and OCSF over HTTP.
pub struct Receiver {
    child: Child,
    pub port: u16,
    pub out: PathBuf,
}

impl Receiver {
    pub fn start(dir: &Path, port: u16, extra: &[&str]) -> Self {
        let out = dir.join(format!("received-{port}.jsonl"));
        let mut child = Command::new(python())
            .arg(script("receiver.py"))
            .args(["--out", out.to_str().unwrap(), "--port", &port.to_string(), "--token", HEC_TOKEN])
            .args(extra)
            .current_dir(script("receiver.py").parent().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port =
            line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("receiver said `{line}`")).parse().unwrap();
        Self { child, port, out }
    }

    /// Every line it recorded.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The records that came in by `via`.
    pub fn via(&self, via: &str) -> Vec<Value> {
        self.received().into_iter().filter(|r| r["via"] == via).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const HEC_TOKEN: &str = "9f1c2d3e-hec-test-token";
