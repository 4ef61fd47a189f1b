//! The `[mcp]` section: the MCP servers the gateway serves at
//! `/mcp/{name}` behind the approval loop (see `countersign-mcp`).
//!
//! ```toml
//! [mcp]
//! hide_forbidden_tools = true          # leave tools a `forbid` denies outright out of tools/list
//! allowed_origins = ["https://app.example.com"]
//!
//! [mcp.upstreams.everything]
//! url = "http://127.0.0.1:3001/mcp"    # a Streamable HTTP server
//!
//! [mcp.upstreams.tickets]
//! url = "https://mcp.internal.example/mcp"
//! bearer_token_file = "/run/secrets/tickets-mcp-token"   # sent to the upstream, never the agent's key
//! ca_file = "/etc/countersign/internal-ca.pem"            # trust only this CA for it (default: system roots)
//!
//! [mcp.upstreams.files]
//! command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/shared"]   # one per session
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use countersign_gateway::config::{duration, read_file, secret, ConfigError, Secret};

/// `[mcp]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMcp {
    /// `[mcp.upstreams.NAME]` tables.
    #[serde(default)]
    pub upstreams: BTreeMap<String, RawMcpUpstream>,
    /// Leave tools that a `forbid` denies outright out of `tools/list`. Default false.
    pub hide_forbidden_tools: Option<bool>,
    /// Browser origins allowed besides the gateway's own and loopback ones.
    pub allowed_origins: Option<Vec<String>>,
    /// How long an unused session is kept. Default `30m`.
    pub session_idle_timeout: Option<String>,
    /// The most sessions open at once. Default 1000.
    pub max_sessions: Option<u64>,
}

/// `[mcp.upstreams.NAME]`: exactly one of `url` and `command`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMcpUpstream {
    /// The Streamable HTTP endpoint of a server, `http://…` or `https://…`.
    pub url: Option<String>,
    /// A stdio server to start for each client session: program and arguments.
    pub command: Option<Vec<String>>,
    /// The gateway's own credential for a `url` upstream, sent as
    /// `Authorization: Bearer …`. Agents never see it.
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    /// PEM CA certificates that alone are trusted for an `https` upstream.
    pub ca_file: Option<PathBuf>,
}

/// Where an upstream MCP server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpUpstream {
    /// A Streamable HTTP server.
    Url(UrlUpstream),
    /// A stdio server, one process per client session.
    Command(Vec<String>),
}

/// A Streamable HTTP upstream and how the gateway itself reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlUpstream {
    pub url: String,
    /// Sent as `Authorization: Bearer …` on every request to the upstream.
    pub bearer_token: Option<Secret>,
    /// PEM certificates: when set, the only roots trusted for this upstream.
    pub ca_pem: Option<Vec<u8>>,
}

/// The validated `[mcp]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConfig {
    pub upstreams: BTreeMap<String, McpUpstream>,
    pub hide_forbidden_tools: bool,
    pub allowed_origins: Vec<String>,
    pub session_idle_timeout: Duration,
    pub max_sessions: usize,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            upstreams: BTreeMap::new(),
            hide_forbidden_tools: false,
            allowed_origins: Vec::new(),
            session_idle_timeout: Duration::from_secs(1800),
            max_sessions: 1000,
        }
    }
}

/// An upstream name is one path segment that policies match on; it
/// starts the resource name `<upstream>/<tool>`, which must start with a
/// letter or digit (see `countersign_core::names`).
pub fn valid_upstream_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn validate(raw: RawMcp) -> Result<McpConfig, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { key: "mcp.upstreams", message };
    let mut upstreams = BTreeMap::new();
    for (name, upstream) in raw.upstreams {
        if !valid_upstream_name(&name) {
            return Err(invalid(format!(
                "`{name}` is not an upstream name: use 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit"
            )));
        }
        let upstream = match (upstream.url, upstream.command) {
            (Some(url), None) => McpUpstream::Url(url_upstream(
                &name,
                url,
                upstream.bearer_token,
                upstream.bearer_token_file,
                upstream.ca_file,
            )?),
            (None, Some(command)) => {
                if command.first().is_none_or(|program| program.trim().is_empty()) {
                    return Err(invalid(format!("`{name}`: `command` must name a program")));
                }
                if upstream.bearer_token.is_some() || upstream.bearer_token_file.is_some() || upstream.ca_file.is_some()
                {
                    return Err(invalid(format!(
                        "`{name}`: `bearer_token` and `ca_file` are for `url` upstreams; pass a command's credentials in its own environment"
                    )));
                }
                McpUpstream::Command(command)
            }
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid(format!("`{name}`: give exactly one of `url` and `command`")));
            }
        };
        upstreams.insert(name, upstream);
    }
    let allowed_origins = raw.allowed_origins.unwrap_or_default();
    if let Some(bad) = allowed_origins.iter().find(|o| !(o.starts_with("http://") || o.starts_with("https://"))) {
        return Err(ConfigError::Invalid {
            key: "mcp.allowed_origins",
            message: format!("`{bad}` is not an origin such as `https://app.example.com`"),
        });
    }
    let session_idle_timeout =
        duration("mcp.session_idle_timeout", raw.session_idle_timeout.as_deref(), Duration::from_secs(1800))?;
    if session_idle_timeout < Duration::from_secs(1) {
        return Err(ConfigError::Invalid {
            key: "mcp.session_idle_timeout",
            message: "must be at least 1s".to_owned(),
        });
    }
    let max_sessions = raw.max_sessions.unwrap_or(1000);
    if max_sessions == 0 {
        return Err(ConfigError::Invalid { key: "mcp.max_sessions", message: "must be at least 1".to_owned() });
    }
    Ok(McpConfig {
        upstreams,
        hide_forbidden_tools: raw.hide_forbidden_tools.unwrap_or(false),
        allowed_origins: allowed_origins.into_iter().map(|o| o.trim_end_matches('/').to_owned()).collect(),
        session_idle_timeout,
        max_sessions: usize::try_from(max_sessions).unwrap_or(usize::MAX),
    })
}

fn url_upstream(
    name: &str,
    url: String,
    bearer_token: Option<String>,
    bearer_token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
) -> Result<UrlUpstream, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { key: "mcp.upstreams", message };
    let https = url.starts_with("https://");
    if !(https || url.starts_with("http://")) {
        return Err(invalid(format!("`{name}`: `url` must be an http:// or https:// URL, not `{url}`")));
    }
    let bearer_token = secret("mcp.upstreams.bearer_token", bearer_token, bearer_token_file.as_deref())?;
    let ca_pem = match ca_file {
        None => None,
        Some(_) if !https => return Err(invalid(format!("`{name}`: `ca_file` needs an https:// `url`"))),
        Some(path) => {
            let pem = read_file(&path).map_err(|e| invalid(format!("`{name}`: {e}")))?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(invalid(format!("`{name}`: `{}` holds no PEM certificate", path.display())));
            }
            Some(pem)
        }
    };
    Ok(UrlUpstream { url, bearer_token, ca_pem })
}
