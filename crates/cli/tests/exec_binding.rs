//! End to end against a real `countersign serve`: what `countersign exec`
//! runs is exactly what was approved — standard input (not read unless
//! asked; when asked, shown, digested and fed exactly), the program file
//! resolved before submission, and the environment that changes what runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{
    add_identity, assert_code, serve_with, stderr, stdout, wait_for_pending, wait_with_timeout, write_policies, Server,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// `lab` runs at once; `gated` waits for one approval from `sre`.
const POLICIES: &str = r#"
@id("lab-open")
permit (principal, action, resource) when { resource.name == "lab" };

@id("gated-needs-sre")
@approvers("sre")
permit (principal, action, resource) when { resource.name == "gated" };
"#;

struct Gateway {
    server: Server,
    tmp: tempfile::TempDir,
    agent: String,
    approver: String,
}

impl Gateway {
    fn start() -> Gateway {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let policies = write_policies(tmp.path(), "p.cedar", POLICIES);
        let server = serve_with(&data, "127.0.0.1:0", &[("--policies", policies.as_os_str())]);
        let approver =
            add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre"]);
        let agent = add_identity(&data, &["agents", "add", "bot"]);
        Gateway { server, tmp, agent, approver }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// `countersign exec` as the agent, in the temporary directory, with a
    /// plain environment (PATH and HOME only, plus `env`).
    fn exec(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut command = common::bin();
        command.env_clear().env("NO_COLOR", "1");
        command.env("PATH", std::env::var("PATH").unwrap()).env("HOME", self.dir());
        command.env("COUNTERSIGN_SERVER", &self.server.url).env("COUNTERSIGN_TOKEN", &self.agent);
        for (k, v) in env {
            command.env(k, v);
        }
        command.arg("exec").args(args).current_dir(self.dir());
        command
    }

    /// Starts `exec` with `input` on its standard input.
    fn spawn_with_input(&self, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Child {
        let mut child =
            self.exec(args, env).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        // A writer thread: exec may not read it at all, and must not block us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        child
    }

    /// The first pending request the approver sees, once there is one.
    fn pending(&self) -> Value {
        wait_for_pending(&self.server, &self.approver)
    }

    fn vote(&self, verb: &str, id: &str) {
        assert_code(&self.server.call(&self.approver, &[verb, id]), 0);
    }
}

fn finish(mut child: Child) -> std::process::Output {
    wait_with_timeout(&mut child, Duration::from_secs(60));
    child.wait_with_output().unwrap()
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(path, perms).unwrap();
}

#[test]
fn standard_input_is_not_read_unless_asked() {
    let gw = Gateway::start();
    // `sh` with no arguments runs its standard input: without --stdin it
    // gets /dev/null, so the piped script never runs.
    let out = finish(gw.spawn_with_input(&["--resource", "lab", "--", "sh"], &[], b"touch injected\n"));
    assert_code(&out, 0);
    assert!(!gw.dir().join("injected").exists(), "stdin reached the command without --stdin");
    let out = finish(gw.spawn_with_input(&["--resource", "lab", "--", "cat"], &[], b"not for cat"));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "");

    // Held for approval: the approver sees no stdin, and none is fed after.
    let child = gw.spawn_with_input(&["--resource", "gated", "--", "sh"], &[], b"touch injected\n");
    let pending = gw.pending();
    assert!(pending["payload"].get("stdin").is_none(), "{pending}");
    assert!(pending["payload"].get("stdin_sha256").is_none(), "{pending}");
    gw.vote("approve", pending["id"].as_str().unwrap());
    assert_code(&finish(child), 0);
    assert!(!gw.dir().join("injected").exists(), "stdin reached the command after approval");
}

#[test]
fn with_stdin_the_approver_sees_it_and_exactly_those_bytes_run() {
    let gw = Gateway::start();
    let input = "echo from-stdin > fed.txt\n";
    let child = gw.spawn_with_input(&["--stdin", "--resource", "gated", "--", "sh"], &[], input.as_bytes());
    let pending = gw.pending();
    let payload = &pending["payload"];
    assert_eq!(payload["stdin"], input, "{pending}");
    assert_eq!(payload["stdin_sha256"], hex::encode(Sha256::digest(input.as_bytes())));
    assert_eq!(payload["program"], which("sh").unwrap().display().to_string());
    gw.vote("approve", pending["id"].as_str().unwrap());
    let out = finish(child);
    assert_code(&out, 0);
    assert_eq!(std::fs::read_to_string(gw.dir().join("fed.txt")).unwrap(), "from-stdin\n");

    // Not text: no copy the gateway could judge, only its digest and size.
    let binary = b"touch bin.txt\n\x00\xff";
    let child = gw.spawn_with_input(&["--stdin", "--resource", "gated", "--", "cat"], &[], binary);
    let pending = gw.pending();
    let payload = &pending["payload"];
    assert!(payload.get("stdin").is_none(), "{pending}");
    assert_eq!(payload["stdin_binary"], true);
    assert_eq!(payload["stdin_bytes"], binary.len());
    assert_eq!(payload["stdin_sha256"], hex::encode(Sha256::digest(binary)));
    gw.vote("approve", pending["id"].as_str().unwrap());
    let out = finish(child);
    assert_code(&out, 0);
    assert_eq!(out.stdout, binary, "the command gets exactly the bytes that were bound");

    // Over the limit: refused before anything is submitted.
    let big = vec![b'x'; 256 * 1024 + 1];
    let out = finish(gw.spawn_with_input(&["--stdin", "--resource", "lab", "--", "cat"], &[], &big));
    assert_code(&out, 1);
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

/// The issue's case: SQL piped into `sqlite3` is part of the action.
#[test]
fn sql_piped_into_sqlite3_is_in_the_action() {
    let Some(sqlite3) = which("sqlite3") else {
        eprintln!("sqlite3 is not installed; the same binding is covered with sh above");
        return;
    };
    let gw = Gateway::start();
    let db = gw.dir().join("app.db");
    rusqlite::Connection::open(&db).unwrap().execute_batch("CREATE TABLE users (id INTEGER);").unwrap();
    let tables = || -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'users'", [], |r| r.get(0))
            .unwrap()
    };

    // Without --stdin the approver sees `sqlite3 app.db`, and that is all that runs.
    let child = gw.spawn_with_input(&["--resource", "gated", "--", "sqlite3", "app.db"], &[], b"DROP TABLE users;\n");
    let pending = gw.pending();
    gw.vote("approve", pending["id"].as_str().unwrap());
    assert_code(&finish(child), 0);
    assert_eq!(tables(), 1, "piped SQL ran without being part of the action");

    // With --stdin the SQL is in the action the approver decides on.
    let child = gw.spawn_with_input(
        &["--stdin", "--resource", "gated", "--", "sqlite3", "app.db"],
        &[],
        b"DROP TABLE users;\n",
    );
    let pending = gw.pending();
    assert_eq!(pending["payload"]["stdin"], "DROP TABLE users;\n");
    assert_eq!(pending["payload"]["program"], sqlite3.display().to_string());
    gw.vote("deny", pending["id"].as_str().unwrap());
    assert_eq!(finish(child).status.code(), Some(3));
    assert_eq!(tables(), 1);
}

#[test]
fn the_environment_cannot_inject_code() {
    let gw = Gateway::start();
    let evil = gw.dir().join("evil.sh");
    script(&evil, "touch injected");
    let evil = evil.display().to_string();
    let env: &[(&str, &str)] = &[
        ("BASH_ENV", &evil),
        ("ENV", &evil),
        ("BASH_FUNC_echo%%", "() { touch injected; }"),
        ("PS4", "$(touch injected)"),
        ("SHELLOPTS", "xtrace"),
    ];
    let out = gw.exec(&["--resource", "lab", "--", "bash", "-c", "echo ran"], env).output().unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "ran\n");
    assert!(!gw.dir().join("injected").exists(), "the environment ran code: {}", stderr(&out));
    assert!(stderr(&out).contains("BASH_ENV"), "the requester is told what was kept back: {}", stderr(&out));
    let out = gw.exec(&["--resource", "lab", "--", "sh", "-c", "echo ran"], env).output().unwrap();
    assert_code(&out, 0);
    assert!(!gw.dir().join("injected").exists(), "the environment ran code: {}", stderr(&out));

    // Passed on purpose, it is in the action for the approver to see.
    let child = gw
        .exec(&["--env", "BASH_ENV", "--resource", "gated", "--", "bash", "-c", "true"], env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pending = gw.pending();
    assert_eq!(pending["payload"]["env"]["BASH_ENV"], evil.as_str(), "{pending}");
    assert!(pending["payload"]["env"]["PATH"].is_string(), "{pending}");
    assert!(pending["payload"]["env"].get("ENV").is_none(), "{pending}");
    gw.vote("approve", pending["id"].as_str().unwrap());
    assert_code(&finish(child), 0);
    assert!(gw.dir().join("injected").exists(), "what was approved ran");
}

#[test]
fn the_program_file_is_resolved_before_submission_and_bound() {
    let gw = Gateway::start();
    let first = gw.dir().join("first");
    let second = gw.dir().join("second");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    script(&second.join("tool"), "echo approved-tool");
    let path = format!("{}:{}:{}", first.display(), second.display(), std::env::var("PATH").unwrap());

    let child = gw
        .exec(&["--resource", "gated", "--", "tool"], &[("PATH", &path)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pending = gw.pending();
    let bound = second.join("tool").display().to_string();
    assert_eq!(pending["payload"]["program"], bound.as_str(), "{pending}");
    assert_eq!(pending["payload"]["argv"], serde_json::json!(["tool"]));
    // A program that appears earlier in PATH while the request waits is not
    // what was approved, and does not run.
    script(&first.join("tool"), "echo planted-tool");
    gw.vote("approve", pending["id"].as_str().unwrap());
    let out = finish(child);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "approved-tool\n");

    // A program that cannot be found is refused before anything is submitted.
    let out = gw.exec(&["--resource", "gated", "--", "no-such-program-here"], &[]).output().unwrap();
    assert_code(&out, 127);
    assert!(stderr(&out).contains("nothing was submitted"), "{}", stderr(&out));
}
