//! `countersign mcp -- <server command>`: the MCP approval proxy on stdio.
//! An MCP client (Claude Desktop, Claude Code, Cursor, an SDK) launches
//! this in place of the server; every `tools/call` is decided by the
//! gateway at `COUNTERSIGN_SERVER` with the agent key in `COUNTERSIGN_TOKEN`,
//! over the same HTTP API as `exec`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use countersign_core::{Action, Status};
use countersign_mcp::approvals::{Asked, Entry, GateError, Report, Ticket};
use countersign_mcp::refusal::Refusal;
use countersign_mcp::relay::Options;
use countersign_mcp::Approvals;
use serde_json::{json, Value};

use crate::cli::McpArgs;
use crate::client::{CallError, Client};
use crate::exit::Exit;
use crate::review::path_segment;

pub async fn mcp(args: McpArgs) -> anyhow::Result<Exit> {
    init_tracing();
    countersign_mcp::install_crypto_provider();
    let client = Client::new(&args.client)?;
    let name = match args.upstream_name {
        Some(name) => name,
        None => default_name(&args.command),
    };
    // The name starts every resource `<upstream>/<tool>`, which the gateway
    // accepts only in its resource grammar (capitals are folded).
    let resource_ok = countersign_core::names::check_resource(&countersign_core::names::fold_resource(&name)).is_ok();
    if !resource_ok || name.contains('/') {
        return Err(crate::exit::Failure::usage(format!(
            "`{}` cannot name an upstream (use ASCII letters, digits, `.`, `_`, `-`, `:` or `@`, starting with a letter or digit; no `/`); pass --upstream-name",
            name.escape_debug()
        )));
    }
    let approvals: Arc<dyn Approvals> = Arc::new(Remote { client });
    let options = Options { hide_forbidden_tools: false };
    let code = countersign_mcp::stdio::run(&args.command, &name, approvals, options).await?;
    Ok(if code == 0 { Exit::OK } else { Exit::ERROR })
}

/// Logs go to stderr (stdout carries the protocol); quiet unless asked.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
}

/// The upstream's name when none is given: the server program's file
/// name, looking past launchers (`npx -y @scope/server-x@1` → `server-x`).
pub fn default_name(command: &[String]) -> String {
    const LAUNCHERS: [&str; 12] =
        ["npx", "node", "uvx", "uv", "python", "python3", "deno", "bun", "bunx", "pipx", "docker", "run"];
    let base = |s: &str| {
        let file = s.rsplit('/').next().unwrap_or(s);
        // Drop a version (`pkg@1.2`) but keep a leading scope's `@`.
        let file = match file.char_indices().skip(1).find(|(_, c)| *c == '@') {
            Some((i, _)) => &file[..i],
            None => file,
        };
        file.trim_end_matches(".js").trim_end_matches(".py").to_owned()
    };
    let mut words = command.iter().map(String::as_str);
    let Some(first) = words.next() else { return String::new() };
    if !LAUNCHERS.contains(&base(first).as_str()) {
        return base(first);
    }
    words
        .find(|w| !w.starts_with('-') && !LAUNCHERS.contains(&base(w).as_str()))
        .map(base)
        .unwrap_or_else(|| base(first))
}

/// The gateway over its HTTP API.
#[derive(Debug)]
struct Remote {
    client: Client,
}

/// The longest one long poll asks the gateway to hold.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[async_trait]
impl Approvals for Remote {
    async fn submit(&self, action: Action) -> Result<Ticket, GateError> {
        let body = json!({
            "kind": action.kind,
            "resource": action.resource,
            "payload": action.payload,
            "labels": action.labels,
            "context": action.context,
        });
        let answer = self.client.post("/v1/actions", &body, None).await.map_err(gate_error)?;
        ticket(&answer)
    }

    async fn wait(&self, id: &str, up_to: Duration) -> Result<Ticket, GateError> {
        let secs = up_to.min(MAX_WAIT).as_secs().max(1);
        let path = format!("/v1/actions/{}?wait={secs}", path_segment(id));
        let answer = self.client.get(&path, Some(Duration::from_secs(secs + 15))).await.map_err(gate_error)?;
        ticket(&answer)
    }

    async fn release(&self, id: &str) -> Result<Ticket, GateError> {
        let path = format!("/v1/actions/{}/release", path_segment(id));
        let answer = self.client.post(&path, &json!({}), None).await.map_err(gate_error)?;
        ticket(&answer)
    }

    async fn cancel(&self, id: &str) -> Result<(), GateError> {
        let path = format!("/v1/actions/{}/cancel", path_segment(id));
        self.client.post(&path, &json!({}), Some(Duration::from_secs(10))).await.map_err(gate_error)?;
        Ok(())
    }

    async fn report(&self, id: &str, report: Report) -> Result<(), GateError> {
        let path = format!("/v1/actions/{}/outcome", path_segment(id));
        let body = json!({
            "status": if report.succeeded { "succeeded" } else { "failed" },
            "summary": report.summary,
            "output_sha256": report.output_sha256,
        });
        self.client.post(&path, &body, Some(Duration::from_secs(10))).await.map_err(gate_error)?;
        Ok(())
    }

    async fn refused(&self, refusal: Refusal) -> Result<(), GateError> {
        let path = countersign_mcp::http::REFUSALS_PATH;
        self.client.post(path, &refusal.report(), Some(Duration::from_secs(10))).await.map_err(gate_error)?;
        Ok(())
    }
}

fn gate_error(error: CallError) -> GateError {
    let text = error.to_string();
    match &error {
        CallError::Transport { .. } | CallError::Untrusted { .. } | CallError::Decode(_) => {
            GateError::Unavailable(text)
        }
        CallError::Api { status: 401, message, .. } => GateError::Unauthenticated(message.clone()),
        CallError::Api { status, .. } if error.is_retryable() || *status >= 500 => GateError::Unavailable(text),
        CallError::Api { code, message, .. } => GateError::Refused { code: code.clone(), message: message.clone() },
    }
}

/// Reads a submission answer or an action view.
fn ticket(answer: &Value) -> Result<Ticket, GateError> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let entries = |v: &Value| -> Vec<Entry> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| Entry { by: text(&e["by"]).unwrap_or_default(), comment: text(&e["comment"]) })
                    .collect()
            })
            .unwrap_or_default()
    };
    let bad = |what: &str| GateError::Unavailable(format!("unexpected answer from the gateway: {what}"));
    let id = text(&answer["id"]).ok_or_else(|| bad("no `id`"))?;
    let status_text = text(&answer["status"]).ok_or_else(|| bad("no `status`"))?;
    let status = Status::parse(&status_text).ok_or_else(|| bad(&format!("status `{status_text}`")))?;
    // A submission answer nests the approval; an action view does not.
    let approval = &answer["approval"];
    let requirements = if approval.is_object() { &approval["requirements"] } else { &answer["requirements"] };
    let expires_at = text(&approval["expires_at"]).or_else(|| text(&answer["expires_at"]));
    let asked = requirements
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| Asked {
                    policy: text(&r["policy"]).unwrap_or_default(),
                    groups: strings(&r["groups"]),
                    quorum: r["quorum"].as_u64().and_then(|q| u32::try_from(q).ok()).unwrap_or(1),
                    approvals: r["approvals"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Ticket {
        id,
        status,
        reason: text(&answer["reason"]).unwrap_or_default(),
        policies: strings(&answer["policies"]),
        asked,
        expires_at,
        approvals: entries(&answer["approvals"]),
        denials: entries(&answer["denials"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn names_the_upstream_after_the_server_not_the_launcher() {
        assert_eq!(default_name(&words("npx -y @modelcontextprotocol/server-filesystem /tmp")), "server-filesystem");
        assert_eq!(default_name(&words("uvx mcp-server-git@2026.1")), "mcp-server-git");
        assert_eq!(default_name(&words("/usr/local/bin/mcp-server-time")), "mcp-server-time");
        assert_eq!(default_name(&words("node dist/index.js stdio")), "index");
        assert_eq!(default_name(&words("python3 -m mcp_server_time")), "mcp_server_time");
    }

    #[test]
    fn reads_submissions_and_views() {
        let submitted = json!({"id": "r1", "status": "pending", "reason": "needs sre", "policies": ["p"],
            "approval": {"requirements": [{"policy": "p", "groups": ["sre"], "quorum": 2, "approvals": 1}],
                         "expires_at": "2026-01-01T00:00:00Z"}});
        let t = ticket(&submitted).unwrap();
        assert_eq!(t.status, Status::Pending);
        assert_eq!(t.asked[0].quorum, 2);
        assert_eq!(t.expires_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        let view = json!({"id": "r1", "status": "denied", "reason": "r", "policies": [],
            "requirements": [], "denials": [{"by": "user:alice", "comment": "no"}]});
        let t = ticket(&view).unwrap();
        assert_eq!(t.denials[0].comment.as_deref(), Some("no"));
        assert!(ticket(&json!({"status": "x"})).is_err());
    }
}
