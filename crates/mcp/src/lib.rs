//! The MCP approval proxy: countersign between any MCP client and any MCP
//! server, so that every `tools/call` goes through the same policy,
//! approval and audit loop as `POST /v1/actions`, and everything else
//! passes through unchanged.
//!
//! - [`jsonrpc`]: classifying messages without re-encoding them;
//! - [`config`]: the `[mcp]` section (upstreams served at `/mcp/{name}`);
//! - [`catalogue`]: what `tools/list` said about each tool (title, hints);
//! - [`approvals`]: the gateway as the proxy sees it, in-process or remote;
//! - [`gate`]: one tool call through the approval loop;
//! - [`gatekeeper`]: the gating state of a session, which every transport
//!   drives: what each message from either side may do;
//! - [`refusal`]: what the proxy refused or dropped, as audited;
//! - [`relay`]: a session between one client and one upstream, as messages;
//! - [`stdio`]: `countersign mcp -- <server command>`;
//! - [`http`]: Streamable HTTP at `/mcp/{upstream}` on the gateway;
//! - [`tls`]: recognising certificate failures of its HTTP clients.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod approvals;
pub mod catalogue;
pub mod config;
pub mod error;
pub mod gate;
pub mod gatekeeper;
pub mod http;
pub mod jsonrpc;
pub mod refusal;
pub mod relay;
pub mod stdio;
pub mod tls;

pub use approvals::{Approvals, InProcess, Ticket};
pub use error::McpError;
pub use http::router;

/// Makes sure a TLS crypto provider is installed before any HTTP client is
/// built: with the workspace's rustls build, building one without it panics.
/// The first installer wins, which is fine as long as there is one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
