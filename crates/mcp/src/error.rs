//! What can go wrong in the proxy itself (as opposed to a tool call being
//! refused, which is a normal tool result).

/// A failure of the proxy or of one of its peers.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("cannot start the upstream MCP server `{command}`: {reason}")]
    Spawn { command: String, reason: String },
    #[error("the upstream MCP server `{name}` {how}")]
    UpstreamGone { name: String, how: String },
    #[error("cannot talk to the MCP client: {0}")]
    Client(String),
    #[error("the approval gateway: {0}")]
    Gateway(String),
}
