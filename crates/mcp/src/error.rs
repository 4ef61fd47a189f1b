//! What can go wrong in the proxy itself (as opposed to a tool call being
//! refused, which is a normal tool result).

/// A failure of the proxy itself.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("cannot start the upstream MCP server `{command}`: {reason}")]
    Spawn { command: String, reason: String },
}
