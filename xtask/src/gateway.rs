//! Driving the `countersign` binary for a benchmark: a throwaway data
//! directory, identities, a gateway on a free loopback port, and a
//! shutdown that always happens (the child is killed on drop).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// A temporary data directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> anyhow::Result<TempDir> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("countersign-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary with a clean COUNTERSIGN_* environment.
pub fn command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("COUNTERSIGN_") {
            command.env_remove(key);
        }
    }
    command.env("NO_COLOR", "1").stdin(Stdio::null());
    command
}

/// Runs an `add` command with `--output json` and returns the token.
pub fn add_identity(binary: &Path, data: &Path, args: &[&str]) -> anyhow::Result<String> {
    add_identity_to(binary, &[OsString::from("--data-dir"), data.as_os_str().to_owned()], args)
}

/// As [`add_identity`], on the store `store_args` name (`--database URL`).
pub fn add_identity_to(binary: &Path, store_args: &[OsString], args: &[&str]) -> anyhow::Result<String> {
    let output = command(binary)
        .args(args)
        .args(store_args)
        .args(["--output", "json"])
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!("`countersign {}` failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    value["token"].as_str().map(str::to_owned).context("no token in the answer")
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
}

impl Gateway {
    pub fn start(binary: &Path, data: &Path) -> anyhow::Result<Gateway> {
        Self::start_with(binary, data, &[])
    }

    /// As [`Gateway::start`], with more `serve` arguments (`--database URL`).
    pub fn start_with(binary: &Path, data: &Path, extra: &[OsString]) -> anyhow::Result<Gateway> {
        let log = std::fs::File::create(data.join("serve.log"))?;
        let mut child = command(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.join("data"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let mut gateway = Gateway { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
            bail!("the gateway did not print `listening on`; see {}", data.join("serve.log").display());
        };
        gateway.addr = addr.parse().with_context(|| format!("bad listening address `{addr}`"))?;
        Ok(gateway)
    }

    /// SIGTERM (graceful, so the log is complete), then SIGKILL after 10 s.
    /// CPU time the gateway process has used so far (user + system), from
    /// `/proc`; `None` where there is no `/proc`.
    pub fn cpu(&self) -> Option<Duration> {
        cpu_of(self.child.id())
    }

    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").args(["-s", "TERM", &self.child.id().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `audit verify` and returns (events, events/s as it reports them).
pub fn verify(binary: &Path, data: &Path) -> anyhow::Result<(u64, f64)> {
    verify_store(binary, &[OsString::from("--data-dir"), data.as_os_str().to_owned()])
}

/// As [`verify`], on the store `store_args` name (`--database URL`).
pub fn verify_store(binary: &Path, store_args: &[OsString]) -> anyhow::Result<(u64, f64)> {
    let output = command(binary).args(["audit", "verify"]).args(store_args).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("audit verify failed: {} {}", stdout.trim(), stderr.trim());
    }
    let events = stdout
        .strip_prefix("verified ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("cannot read the event count from `audit verify`")?;
    let rate = stderr
        .split_whitespace()
        .zip(stderr.split_whitespace().skip(1))
        .find(|(_, unit)| *unit == "events/s")
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0.0);
    Ok((events, rate))
}

/// A process's user + system CPU time, from `/proc/<pid>/stat` (fields 14
/// and 15, in clock ticks of 1/100 s: Linux's USER_HZ on every architecture
/// it ships for).
pub fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields count from after it.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
