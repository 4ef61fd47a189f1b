//! Helpers shared by the integration tests: the built binary with a clean
//! environment, and `countersign serve` started on a port (the process
//! harness is the test kit's; only this crate knows the binary's path).

#![allow(dead_code, unused_imports)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

pub use countersign_testkit::fixtures::starter_dir;
use countersign_testkit::process::Countersign;
pub use countersign_testkit::process::{assert_code, stderr, stdout, Server};
use countersign_testkit::wait;

/// The binary under test.
pub fn countersign() -> Countersign {
    Countersign::new(env!("CARGO_BIN_EXE_countersign"))
}

/// The binary under test, with no inherited COUNTERSIGN_* settings and no colour.
pub fn bin() -> Command {
    countersign().command()
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    countersign().run(args)
}

/// `users add` / `agents add` with `--output json`; returns the token.
pub fn add_identity(data: &Path, args: &[&str]) -> String {
    countersign().add_identity(data, args)
}

/// Starts a gateway on `listen` over `data` and waits for its `listening
/// on` line; it logs to `data.log`, next to `data`.
pub fn serve(data: &Path, listen: &str) -> Server {
    serve_with(data, listen, &[])
}

/// As [`serve`], with more flags (`--policies`, `--config`, `--database`).
pub fn serve_with(data: &Path, listen: &str, flags: &[(&str, &OsStr)]) -> Server {
    let mut args: Vec<&OsStr> = ["serve", "--listen", listen, "--data-dir"].map(OsStr::new).to_vec();
    args.push(data.as_os_str());
    for (flag, value) in flags {
        args.extend([OsStr::new(flag), value]);
    }
    countersign().serve(args, &data.with_extension("log"))
}

/// `<dir>/policies` holding `text` as `file`; returns the directory.
pub fn write_policies(dir: &Path, file: &str, text: &str) -> PathBuf {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join(file), text).unwrap();
    policies
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
    wait::until(Duration::from_secs(30), Duration::from_millis(100), || {
        let output = server.call(token, &["pending", "--output", "json"]);
        assert_code(&output, 0);
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        value["actions"].as_array().and_then(|a| a.first()).cloned().ok_or_else(|| "nothing became pending".to_owned())
    })
}
