//! HTTP APIs through the gateway. Agents call `/http/<name>/<path>` on the
//! gateway with their countersign key (or workload token) instead of the
//! API itself; each request is an `http.request` action, decided before
//! anything reaches the API, and the gateway alone holds the API's
//! credential.
//!
//! - [`config`]: the `[[http]]` sections;
//! - [`request`]: reading a request (framing, path, headers, body) and
//!   describing it as an action;
//! - [`forward`]: the upstream client, and the response streamed back
//!   with its outcome recorded;
//! - [`websocket`]: WebSocket upgrades: the handshake checked, the
//!   messages relayed both ways once decided;
//! - [`cut`]: the one way an open stream (a streamed response, a
//!   WebSocket, a Kubernetes exec) is cut when its caller's credential
//!   stops being accepted;
//! - [`withdraw`]: held requests withdrawn when their client goes away;
//! - [`results`]: responses kept for `Prefer: respond-async` clients;
//! - [`redact`]: the gateway's credential never passed back, even when
//!   the upstream echoes it;
//! - [`reply`]: what the client is told when a request does not run;
//! - [`upstream`]: names, URLs and the client of any fronted upstream
//!   (the Kubernetes endpoint uses them too);
//! - [`endpoint`]: the routes, and a request through the approval loop
//!   ([`countersign_gateway::gate`]).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config;
pub mod cut;
pub mod endpoint;
pub mod forward;
pub mod redact;
pub mod reply;
pub mod request;
pub mod results;
#[cfg(test)]
mod test_support;
pub mod upstream;
pub mod websocket;
pub mod withdraw;

pub use config::{HttpConfig, RawHttp};
pub use endpoint::router;

/// The action kind of every request.
pub const KIND: &str = "http.request";
