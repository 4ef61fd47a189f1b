//! The `countersign` binary as a child process: commands with a clean
//! environment, identities added through the CLI, and `serve` started and
//! waited for until it says where it listens.
//!
//! Only the binary's own test crate knows its path
//! (`env!("CARGO_BIN_EXE_countersign")`): it hands it to [`Countersign::new`].

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary under test.
#[derive(Debug, Clone)]
pub struct Countersign {
    exe: PathBuf,
}

impl Countersign {
    pub fn new(exe: impl Into<PathBuf>) -> Self {
        Self { exe: exe.into() }
    }

    /// The binary with no inherited `COUNTERSIGN_*` settings, no colour,
    /// no `RUST_LOG` and nothing on standard input.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.exe);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("COUNTERSIGN_") {
                command.env_remove(key);
            }
        }
        command.env("NO_COLOR", "1").env_remove("RUST_LOG").stdin(Stdio::null());
        command
    }

    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// `users add` / `agents add` with `--output json` on `data`; returns
    /// the new token.
    pub fn add_identity(&self, data: &Path, args: &[&str]) -> String {
        let output = self.command().args(args).arg("--data-dir").arg(data).args(["--output", "json"]).output().unwrap();
        assert_code(&output, 0);
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        value["token"].as_str().unwrap().to_owned()
    }

    /// Starts the binary with `args` (a `serve` command line), its
    /// standard error appended to `log`, and waits (up to a minute) for
    /// its `listening on` line.
    pub fn serve<I, S>(&self, args: I, log: &Path) -> Server
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut child = self.command().args(args).stdout(Stdio::piped()).stderr(log_file).spawn().unwrap();
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
        let Ok(url) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gateway did not start; its log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        };
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Server { child, url, port, log: log.to_path_buf(), bin: self.clone() }
    }
}

/// A running `countersign serve`, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
    /// Where its standard error goes.
    pub log: PathBuf,
    bin: Countersign,
}

impl Server {
    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// The client binary pointed at this gateway with `token`.
    pub fn client(&self, token: &str) -> Command {
        let mut command = self.bin.command();
        command.env("COUNTERSIGN_SERVER", &self.url).env("COUNTERSIGN_TOKEN", token);
        command
    }

    /// Runs a client command to completion.
    pub fn call(&self, token: &str, args: &[&str]) -> Output {
        self.client(token).args(args).output().unwrap()
    }

    /// What it has written to its log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(mut self) {
        self.sigkill();
    }

    /// SIGKILL, keeping the handle (its URL and log stay readable).
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.sigkill();
    }
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
