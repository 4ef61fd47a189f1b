//! Helpers shared by the integration tests: running the built binary with
//! a clean environment, and starting a gateway on a free port.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test, with no inherited COUNTERSIGN_* settings and no colour.
pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_countersign"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("COUNTERSIGN_") {
            command.env_remove(key);
        }
    }
    command.env("NO_COLOR", "1").env_remove("RUST_LOG").stdin(Stdio::null());
    command
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts an exit code, showing the output when it differs.
#[track_caller]
pub fn assert_code(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(output), stderr(output));
}

/// `users add` / `agents add` with `--output json`; returns the token.
pub fn add_identity(data: &Path, args: &[&str]) -> String {
    let mut all = args.to_vec();
    let dir = data.display().to_string();
    all.extend(["--data-dir", &dir, "--output", "json"]);
    let output = run(&all);
    assert_code(&output, 0);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    value["token"].as_str().unwrap().to_owned()
}

/// A running `countersign serve`, killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub port: u16,
}

impl Server {
    /// Starts a gateway on `listen` over `data` and waits for its
    /// `listening on` line.
    pub fn start(data: &Path, listen: &str) -> Server {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data.with_extension("log")).unwrap();
        let mut child = bin()
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // The reader keeps draining after the banner so the gateway can
        // never block on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
                panic!("the gateway did not start; its log:\n{log}");
            }
        };
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Server { child, url, port }
    }

    /// The client binary pointed at this gateway with `token`.
    pub fn client(&self, token: &str) -> Command {
        let mut command = bin();
        command.env("COUNTERSIGN_SERVER", &self.url).env("COUNTERSIGN_TOKEN", token);
        command
    }

    /// Runs a client command to completion.
    pub fn call(&self, token: &str, args: &[&str]) -> Output {
        self.client(token).args(args).output().unwrap()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child with a deadline; kills it and panics on timeout.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!("the command did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `countersign pending --output json` until a request shows up.
pub fn wait_for_pending(server: &Server, token: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let output = server.call(token, &["pending", "--output", "json"]);
        assert_code(&output, 0);
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        if let Some(first) = value["actions"].as_array().and_then(|a| a.first()) {
            return first.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "nothing became pending");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The starter policy's directory in the policy crate.
pub fn starter_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/starter")
}
