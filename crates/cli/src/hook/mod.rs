//! `countersign hook claude-code`: a Claude Code hook. On `PreToolUse` it
//! describes the tool call as an action ([`map`]), gets it decided by the
//! gateway ([`gate`]) and answers with `hookSpecificOutput.permissionDecision`;
//! on `PostToolUse` / `PostToolUseFailure` it reports the outcome against
//! the request the call ran under.
//!
//! Fail closed: any failure to reach a decision on a `PreToolUse` (bad or
//! oversized input, no token, an unreachable gateway) exits 2, which Claude
//! Code documents as "blocking error": the call is not made and stderr is
//! shown to the model. Other non-zero codes would let the call through.

mod diff;
mod gate;
mod map;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::cli::{ClaudeCodeHookArgs, HookCommand};
use crate::client::Client;
use crate::exit::Exit;

/// The most hook input read; a larger one is refused, not parsed.
pub const MAX_INPUT_BYTES: u64 = 8 * 1024 * 1024;
/// Claude Code's "blocking error" exit code.
const BLOCK: Exit = Exit(2);

pub async fn run(command: HookCommand) -> anyhow::Result<Exit> {
    match command {
        HookCommand::ClaudeCode(args) => Ok(claude_code(&args, std::io::stdin().lock()).await),
    }
}

async fn claude_code(args: &ClaudeCodeHookArgs, stdin: impl std::io::Read) -> Exit {
    let input = match read_input(stdin) {
        Ok(input) => input,
        Err(why) => return block(&why),
    };
    let event = input.get("hook_event_name").and_then(Value::as_str).unwrap_or("");
    match event {
        "PreToolUse" => pre_tool_use(args, &input).await,
        "PostToolUse" => post_tool_use(args, &input, true).await,
        "PostToolUseFailure" => post_tool_use(args, &input, false).await,
        // A hook configured for another event has nothing to decide.
        _ => Exit::OK,
    }
}

/// Reads at most [`MAX_INPUT_BYTES`] and parses them as one JSON object
/// (serde_json refuses nesting deeper than 128 levels without recursing further).
fn read_input(stdin: impl std::io::Read) -> Result<Value, String> {
    let mut bytes = Vec::new();
    stdin
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the hook input: {}", e.kind()))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "the hook input is larger than {} MiB; countersign cannot decide on it",
            MAX_INPUT_BYTES / (1024 * 1024)
        ));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("the hook input is not valid JSON ({e})"))?;
    if !value.is_object() {
        return Err("the hook input is not a JSON object".to_owned());
    }
    Ok(value)
}

async fn pre_tool_use(args: &ClaudeCodeHookArgs, input: &Value) -> Exit {
    let (Some(tool), Some(tool_input)) = (input.get("tool_name").and_then(Value::as_str), input.get("tool_input"))
    else {
        return block("the PreToolUse input has no `tool_name` or `tool_input`");
    };
    let cwd = input.get("cwd").and_then(Value::as_str).unwrap_or("");
    let action = match map::map_tool(tool, tool_input, cwd, &args.resource) {
        Ok(action) => action,
        Err(e) => return block(&format!("countersign cannot describe this call: {e}")),
    };
    let client = match Client::new(&args.client) {
        Ok(client) => client,
        Err(e) => return block(&format!("countersign cannot ask the gateway: {e:#}")),
    };
    match gate::decide(&client, &action, Duration::from_secs(args.wait)).await {
        Ok(gate::Decision::Allow { id, note }) => {
            if let Err(e) = remember(args, input, &id) {
                crate::output::print_warning(&format!("the outcome of request {id} will not be reported: {e}"));
            }
            answer("allow", &format!("{note} (countersign request {id})"))
        }
        Ok(gate::Decision::Deny(reason)) => answer("deny", &reason),
        Err(e) if e.status().is_some_and(|s| (400..500).contains(&s) && s != 401 && s != 429) => {
            answer("deny", &format!("countersign refused this call: {e}"))
        }
        Err(e) => block(&format!("countersign could not get a decision, so the call was not made: {e}")),
    }
}

async fn post_tool_use(args: &ClaudeCodeHookArgs, input: &Value, succeeded: bool) -> Exit {
    let Some(path) = state_file(args, input) else { return Exit::OK };
    let Ok(id) = std::fs::read_to_string(&path) else { return Exit::OK };
    let _ = std::fs::remove_file(&path);
    let response = input.get("tool_response").or_else(|| input.get("error")).cloned().unwrap_or(Value::Null);
    let digest = hex::encode(Sha256::digest(response.to_string().as_bytes()));
    let tool = input.get("tool_name").and_then(Value::as_str).unwrap_or("tool");
    let summary = if succeeded {
        format!("Claude Code ran {tool}")
    } else {
        let error = input.get("error").and_then(Value::as_str).unwrap_or("");
        format!("Claude Code's {tool} failed: {}", error.chars().take(200).collect::<String>())
    };
    let client = match Client::new(&args.client) {
        Ok(client) => client,
        Err(e) => {
            crate::output::print_error(&format!("cannot report the outcome of request {id}: {e:#}"));
            return Exit::ERROR;
        }
    };
    match gate::report(&client, id.trim(), succeeded, &summary, &digest).await {
        Ok(()) => Exit::OK,
        Err(e) => {
            crate::output::print_error(&format!("the outcome of request {} was not recorded: {e}", id.trim()));
            Exit::ERROR
        }
    }
}

/// Prints the decision Claude Code reads from stdout.
fn answer(decision: &str, reason: &str) -> Exit {
    let out = json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
    });
    println!("{out}");
    Exit::OK
}

/// Blocks the call: exit 2 with the reason on stderr, for the model.
fn block(reason: &str) -> Exit {
    eprintln!("{reason}");
    BLOCK
}

/// Where the request id of one tool call is kept between its
/// `PreToolUse` and its `PostToolUse`, named by a digest of the session
/// and tool-use ids (never by their text, which Claude Code chooses).
fn state_file(args: &ClaudeCodeHookArgs, input: &Value) -> Option<PathBuf> {
    let session = input.get("session_id").and_then(Value::as_str)?;
    let tool_use = input.get("tool_use_id").and_then(Value::as_str)?;
    let dir = state_dir(args)?;
    let mut hasher = Sha256::new();
    hasher.update(session.as_bytes());
    hasher.update([0]);
    hasher.update(tool_use.as_bytes());
    Some(dir.join(hex::encode(hasher.finalize())))
}

fn state_dir(args: &ClaudeCodeHookArgs) -> Option<PathBuf> {
    if let Some(dir) = &args.state_dir {
        return Some(dir.clone());
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))?;
    Some(base.join("countersign/claude-code"))
}

fn remember(args: &ClaudeCodeHookArgs, input: &Value, id: &str) -> Result<(), String> {
    let path = state_file(args, input).ok_or("the input has no session or tool-use id")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {}", dir.display(), e.kind()))?;
    }
    std::fs::write(&path, id).map_err(|e| format!("cannot write `{}`: {}", path.display(), e.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_deep_and_odd_input_is_refused_without_panicking() {
        let huge = vec![b' '; usize::try_from(MAX_INPUT_BYTES).unwrap() + 1];
        assert!(read_input(huge.as_slice()).unwrap_err().contains("larger than 8 MiB"));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(read_input(deep.as_bytes()).unwrap_err().contains("not valid JSON"));
        assert!(read_input(&b"[1]"[..]).unwrap_err().contains("not a JSON object"));
        assert!(read_input(&b"\xff\xfe"[..]).is_err());
        assert!(read_input(&br#"{"hook_event_name":"PreToolUse"}"#[..]).is_ok());
    }
}
