//! Claude Code tool calls → countersign actions.
//!
//! | tool | kind | resource | payload |
//! |---|---|---|---|
//! | `Bash` | `shell.exec` | `--resource` | `command`, `cwd` (so shell facts apply) |
//! | `Write`, `Edit`, `MultiEdit`, `NotebookEdit` | `file.write` | `--resource` | `path`, `operation`, bounded `diff`, `content_sha256` of everything written |
//! | `WebFetch` | `http.request` | the URL's host | `method`, `url` |
//! | `mcp__<server>__<tool>` | `mcp.tool_call` | `<server>/<tool>`, as the MCP proxy names it | the arguments, verbatim |
//! | any other tool | `claude_code.tool_call` | `--resource`/`<tool>` | the input, verbatim |
//!
//! The payload is a pure function of the tool call (and, for `Write`, of
//! the file it replaces), so the same call asked again has the same
//! fingerprint and finds its earlier approval.

use std::path::Path;

use countersign_core::Action;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use super::diff::bounded_diff;

/// The kind for file writes. `file` is a family the gateway knows
/// (`KNOWN_FAMILIES`) but no kind in it existed; the starter policy lists
/// no `file.*` kind as routine, so writes wait for approval until a policy
/// says otherwise.
pub const FILE_WRITE: &str = "file.write";
/// The kind for tools this table does not know.
pub const OTHER_TOOL: &str = "claude_code.tool_call";
/// The largest existing file read to diff a `Write` against.
const MAX_COMPARED_FILE: u64 = 1024 * 1024;

/// Why a tool call could not be described.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("the `{tool}` call has no string `{field}`")]
    Missing { tool: String, field: &'static str },
    #[error("the URL `{0}` cannot be read")]
    Url(String),
}

/// Describes one tool call as the action the gateway decides on.
pub fn map_tool(tool: &str, input: &Value, cwd: &str, resource: &str) -> Result<Action, MapError> {
    let text = |field: &'static str| {
        input.get(field).and_then(Value::as_str).ok_or_else(|| MapError::Missing { tool: tool.to_owned(), field })
    };
    let action = |kind: &str, resource: String, payload: Value| Action {
        kind: kind.to_owned(),
        resource,
        payload,
        on_behalf_of: None,
        justification: None,
        labels: Vec::new(),
        context: Map::from_iter([("tool".to_owned(), json!(tool))]),
    };
    match tool {
        "Bash" => {
            let mut payload = json!({"command": text("command")?, "cwd": cwd});
            if input.get("run_in_background").and_then(Value::as_bool) == Some(true) {
                payload["run_in_background"] = json!(true);
            }
            let mut a = action("shell.exec", resource.to_owned(), payload);
            a.justification = input.get("description").and_then(Value::as_str).map(str::to_owned);
            Ok(a)
        }
        "Write" => {
            let path = text("file_path")?;
            let content = text("content")?;
            let old = read_existing(path);
            let (diff, cut) = match &old {
                Existing::Text(old) => bounded_diff(old, content),
                Existing::Missing => bounded_diff("", content),
                Existing::Unreadable(why) => bounded_diff(&format!("({why})"), content),
            };
            Ok(action(FILE_WRITE, resource.to_owned(), file_payload(path, "write", diff, cut, &[content])))
        }
        "Edit" => {
            let path = text("file_path")?;
            let (old, new) = (text("old_string")?, text("new_string")?);
            let (mut diff, cut) = bounded_diff(old, new);
            let all = input.get("replace_all").and_then(Value::as_bool).unwrap_or(false);
            if all {
                diff.insert_str(0, "(every occurrence)\n");
            }
            let flag = if all { "all" } else { "one" };
            Ok(action(FILE_WRITE, resource.to_owned(), file_payload(path, "edit", diff, cut, &[old, new, flag])))
        }
        "MultiEdit" => {
            let path = text("file_path")?;
            let edits = input
                .get("edits")
                .and_then(Value::as_array)
                .ok_or(MapError::Missing { tool: tool.to_owned(), field: "edits" })?;
            let mut diff = String::new();
            let mut cut = false;
            let mut bound = Vec::new();
            for edit in edits {
                let field = |f: &'static str| {
                    edit.get(f).and_then(Value::as_str).ok_or(MapError::Missing { tool: tool.to_owned(), field: f })
                };
                let (old, new) = (field("old_string")?, field("new_string")?);
                let all = edit.get("replace_all").and_then(Value::as_bool).unwrap_or(false);
                let (d, c) = bounded_diff(old, new);
                if diff.len() < super::diff::MAX_DIFF_BYTES {
                    diff.push_str(&d);
                }
                cut |= c || diff.len() >= super::diff::MAX_DIFF_BYTES;
                bound.extend([old, new, if all { "all" } else { "one" }]);
            }
            Ok(action(FILE_WRITE, resource.to_owned(), file_payload(path, "multi_edit", diff, cut, &bound)))
        }
        "NotebookEdit" => {
            let path = text("notebook_path")?;
            let source = input.get("new_source").and_then(Value::as_str).unwrap_or("");
            let mode = input.get("edit_mode").and_then(Value::as_str).unwrap_or("replace");
            let cell = input.get("cell_id").and_then(Value::as_str).unwrap_or("");
            let cell_type = input.get("cell_type").and_then(Value::as_str).unwrap_or("");
            let (diff, cut) = bounded_diff("", source);
            let mut payload = file_payload(path, "notebook_edit", diff, cut, &[source, mode, cell, cell_type]);
            payload["cell_id"] = json!(cell);
            payload["edit_mode"] = json!(mode);
            Ok(action(FILE_WRITE, resource.to_owned(), payload))
        }
        "WebFetch" => {
            let url = text("url")?;
            let parsed = reqwest::Url::parse(url).map_err(|_| MapError::Url(shown(url)))?;
            let host = parsed.host_str().ok_or_else(|| MapError::Url(shown(url)))?;
            let host = match parsed.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            };
            let mut a = action("http.request", host.to_ascii_lowercase(), json!({"method": "GET", "url": url}));
            a.context.insert("prompt".to_owned(), json!(input.get("prompt").and_then(Value::as_str)));
            Ok(a)
        }
        _ => match mcp_name(tool) {
            Some((server, name)) => {
                let params =
                    Map::from_iter([("name".to_owned(), json!(name)), ("arguments".to_owned(), input.clone())]);
                let catalogue = countersign_mcp::catalogue::Catalogue::default();
                match countersign_mcp::gate::Call::from_params(server, &params, |t| catalogue.context(t)) {
                    Some(call) => Ok(call.action()),
                    None => Err(MapError::Missing { tool: tool.to_owned(), field: "name" }),
                }
            }
            None => {
                let target = format!("{resource}/{}", tool.to_ascii_lowercase());
                Ok(action(OTHER_TOOL, target, input.clone()))
            }
        },
    }
}

/// `mcp__<server>__<tool>` → (server, tool). The server name ends at the
/// first `__` after the prefix; the tool keeps any further `__`.
fn mcp_name(tool: &str) -> Option<(&str, &str)> {
    let rest = tool.strip_prefix("mcp__")?;
    let (server, name) = rest.split_once("__")?;
    (!server.is_empty() && !name.is_empty()).then_some((server, name))
}

fn file_payload(path: &str, operation: &str, diff: String, cut: bool, bound: &[&str]) -> Value {
    // Each part is length-prefixed so that no two different lists hash alike.
    let mut hasher = Sha256::new();
    for part in bound {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    json!({
        "path": path,
        "operation": operation,
        "diff": diff,
        "diff_truncated": cut,
        "content_sha256": hex::encode(hasher.finalize()),
    })
}

enum Existing {
    Text(String),
    Missing,
    Unreadable(&'static str),
}

fn read_existing(path: &str) -> Existing {
    let path = Path::new(path);
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Existing::Missing,
        Err(_) => Existing::Unreadable("existing file unreadable"),
        Ok(meta) if !meta.is_file() => Existing::Unreadable("not a regular file"),
        Ok(meta) if meta.len() > MAX_COMPARED_FILE => Existing::Unreadable("existing file too large to compare"),
        Ok(_) => match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Existing::Text(text),
                Err(_) => Existing::Unreadable("existing file is not UTF-8"),
            },
            Err(_) => Existing::Unreadable("existing file unreadable"),
        },
    }
}

/// A URL in a message, without control characters, at most 200 characters.
fn shown(text: &str) -> String {
    text.chars().take(200).flat_map(char::escape_debug).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_is_a_shell_command_with_its_working_directory() {
        let a = map_tool("Bash", &json!({"command": "rm -rf /srv", "description": "clean"}), "/w", "laptop").unwrap();
        assert_eq!((a.kind.as_str(), a.resource.as_str()), ("shell.exec", "laptop"));
        assert_eq!(a.payload, json!({"command": "rm -rf /srv", "cwd": "/w"}));
        assert_eq!(a.justification.as_deref(), Some("clean"));
        let facts = countersign_facts::derive(&a.kind, &a.payload);
        assert!(facts.shell.unwrap().destructive);
    }

    #[test]
    fn file_writes_carry_a_bounded_diff_and_a_digest_of_everything_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        let p = path.to_str().unwrap();
        let a = map_tool("Write", &json!({"file_path": p, "content": "one\nTWO\n"}), "/", "laptop").unwrap();
        assert_eq!(a.kind, FILE_WRITE);
        assert_eq!(a.payload["diff"], "@@ -2,1 +2,1 @@\n-two\n+TWO\n");
        let e = map_tool("Edit", &json!({"file_path": p, "old_string": "two", "new_string": "2"}), "/", "l").unwrap();
        let e2 = map_tool("Edit", &json!({"file_path": p, "old_string": "two", "new_string": "3"}), "/", "l").unwrap();
        assert_ne!(e.payload["content_sha256"], e2.payload["content_sha256"]);
        // Everything past the diff budget still changes the digest.
        let big = "x\n".repeat(20_000);
        let w1 = map_tool("Write", &json!({"file_path": "/nope/f", "content": format!("{big}a")}), "/", "l").unwrap();
        let w2 = map_tool("Write", &json!({"file_path": "/nope/f", "content": format!("{big}b")}), "/", "l").unwrap();
        assert_eq!(w1.payload["diff"], w2.payload["diff"]);
        assert_eq!(w1.payload["diff_truncated"], true);
        assert_ne!(w1.payload["content_sha256"], w2.payload["content_sha256"]);
    }

    #[test]
    fn multi_edits_and_notebook_edits_are_file_writes() {
        let edits = json!({"file_path": "/a", "edits": [
            {"old_string": "a", "new_string": "b"}, {"old_string": "c", "new_string": "d", "replace_all": true}]});
        let a = map_tool("MultiEdit", &edits, "/", "l").unwrap();
        assert_eq!((a.kind.as_str(), a.payload["operation"].as_str()), (FILE_WRITE, Some("multi_edit")));
        assert_eq!(a.payload["diff"], "@@ -1,1 +1,1 @@\n-a\n+b\n@@ -1,1 +1,1 @@\n-c\n+d\n");
        let mut other = edits.clone();
        other["edits"][1]["replace_all"] = json!(false);
        assert_ne!(
            map_tool("MultiEdit", &other, "/", "l").unwrap().payload["content_sha256"],
            a.payload["content_sha256"]
        );
        assert!(map_tool("MultiEdit", &json!({"file_path": "/a", "edits": [{"old_string": 1}]}), "/", "l").is_err());
        let nb = json!({"notebook_path": "/n.ipynb", "cell_id": "c1", "new_source": "print(1)", "edit_mode": "insert"});
        let a = map_tool("NotebookEdit", &nb, "/", "l").unwrap();
        assert_eq!((a.payload["path"].as_str(), a.payload["edit_mode"].as_str()), (Some("/n.ipynb"), Some("insert")));
    }

    #[test]
    fn mcp_tools_are_named_as_the_proxy_names_them() {
        let a = map_tool("mcp__fs__Write_File", &json!({"path": "/x"}), "/", "laptop").unwrap();
        assert_eq!((a.kind.as_str(), a.resource.as_str()), ("mcp.tool_call", "fs/write_file"));
        assert_eq!(a.payload, json!({"path": "/x"}));
        assert_eq!(a.context["tool"]["annotations"]["destructiveHint"], true);
        assert_eq!(mcp_name("mcp__a__b__c"), Some(("a", "b__c")));
        assert_eq!(mcp_name("mcp____x"), None);
        assert_eq!(mcp_name("mcp__only"), None);
    }

    #[test]
    fn web_fetch_lands_on_the_host() {
        let a =
            map_tool("WebFetch", &json!({"url": "https://API.example.com:8443/x", "prompt": "p"}), "/", "l").unwrap();
        assert_eq!((a.kind.as_str(), a.resource.as_str()), ("http.request", "api.example.com:8443"));
        assert!(map_tool("WebFetch", &json!({"url": "not a url"}), "/", "l").is_err());
        assert!(map_tool("WebFetch", &json!({}), "/", "l").is_err());
    }

    #[test]
    fn unknown_tools_are_still_decided() {
        let a = map_tool("Task", &json!({"prompt": "x"}), "/", "laptop").unwrap();
        assert_eq!((a.kind.as_str(), a.resource.as_str()), (OTHER_TOOL, "laptop/task"));
    }
}
