//! The client programs in `tests/pg-peers` (psycopg 3, asyncpg,
//! node-postgres), installed by `scripts/setup.d/pg-clients.sh`, run
//! against a [`Harness`](crate::support::Harness).
//!
//! A test whose client is not installed is skipped, with a message, so
//! that `cargo test` works before the setup step has run; with
//! `REQUIRE_TEST_PEERS` set (CI, after the setup step) it fails.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// How long one client run may take, a held statement's wait included.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Psycopg,
    Asyncpg,
    NodePg,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/pg-peers")
}

/// Whether something the tests need is installed; otherwise says so and
/// tells the caller to skip, or fails when peers are required.
fn present(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    let why = format!("{what} is not installed: run scripts/setup.d/pg-clients.sh (or scripts/setup-test-deps)");
    assert!(std::env::var_os("REQUIRE_TEST_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    false
}

impl Client {
    /// The program and script to run.
    fn command(self) -> (PathBuf, PathBuf) {
        let dir = dir();
        match self {
            Self::Psycopg => (dir.join(".venv/bin/python"), dir.join("psycopg_client.py")),
            Self::Asyncpg => (dir.join(".venv/bin/python"), dir.join("asyncpg_client.py")),
            Self::NodePg => (PathBuf::from("node"), dir.join("pg_client.mjs")),
        }
    }

    /// Whether the client is installed (see [`present`]).
    pub fn available(self) -> bool {
        let dir = dir();
        let (what, found) = match self {
            Self::Psycopg => ("psycopg (tests/pg-peers/.venv)", module_in_venv("psycopg")),
            Self::Asyncpg => ("asyncpg (tests/pg-peers/.venv)", module_in_venv("asyncpg")),
            Self::NodePg => (
                "node-postgres (node, and tests/pg-peers/node_modules/pg)",
                dir.join("node_modules/pg/package.json").is_file()
                    && std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()),
            ),
        };
        present(what, found)
    }

    /// Runs `scenario` against `target` (a conninfo string or URL) and
    /// returns what the client printed; fails the test if the client did.
    pub async fn run(self, target: &str, scenario: &str) -> Value {
        let (program, script) = self.command();
        let child =
            tokio::process::Command::new(&program).arg(&script).args([target, scenario]).kill_on_drop(true).output();
        let out = tokio::time::timeout(RUN_TIMEOUT, child)
            .await
            .unwrap_or_else(|_| panic!("{self:?} {scenario}: no answer in {RUN_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{self:?} {scenario} failed ({}):\n{stderr}\n{stdout}", out.status);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{self:?} {scenario}: not JSON ({e}): {stdout}"))
    }
}

fn module_in_venv(module: &str) -> bool {
    let python = dir().join(".venv/bin/python");
    python.is_file()
        && std::process::Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
}
