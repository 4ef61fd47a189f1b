//! The countersign gateway's HTTP face: the REST API over the approval
//! loop, whose logic lives in `countersign-gateway`.
//!
//! - [`api`]: routes, views and middleware (authentication runs there,
//!   once, before any handler);
//! - [`bearer`]: the gate every HTTP entry point puts a call through
//!   (rate limit, authentication, the accounting of refusals);
//! - [`config`]: the `[server]` section;
//! - [`error`]: the one mapping of gateway errors to HTTP;
//! - [`source`]: which client a call comes from.
//!
//! [`router`] serves in-process tests; [`serve`] runs on a real listener
//! with background duties and graceful shutdown.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod bearer;
pub mod config;
pub mod error;
pub mod source;

use std::future::Future;

pub use api::router;
pub use axum::Router;
use config::ServerConfig;
use countersign_gateway::AppState;
pub use error::ApiError;

/// Why serving stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the gateway on `listener` until `shutdown` completes. Then it
/// stops accepting, answers every waiting agent (`shutting_down`), lets
/// in-flight calls finish — each was made durable before it answered —
/// and returns.
pub async fn serve(
    state: AppState,
    server: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with(state, server, axum::Router::new(), listener, shutdown).await
}

/// As [`serve`], with more routes merged in: entry points and integrations
/// that live in their own crates (the MCP proxy, chat channels, the web
/// console) hand their routers to the binary, which passes them here.
pub async fn serve_with(
    state: AppState,
    server: ServerConfig,
    extra: axum::Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let background = tokio::spawn(state.clone().run_background());
    let flusher = tokio::spawn(state.clone().run_refusal_flusher());
    let signer = tokio::spawn(state.clone().run_checkpoint_signer());
    let app = router(state.clone(), &server)
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(state.clone(), api::middleware::stamp_source));
    let hub_state = state.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: answering waiters and finishing in-flight calls");
        hub_state.shut_down();
    };
    // Answers are small and written as they are ready: without NODELAY,
    // Nagle's algorithm holds a response's last segment back until the
    // client's delayed ACK (tens of milliseconds per call).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
    });
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service).with_graceful_shutdown(graceful).await;
    state.shut_down();
    background.abort();
    flusher.abort();
    // Counted refusals are recorded before the process goes.
    state.flush_refusals(true).await;
    signer.abort();
    // The last checkpoint covers every event, the refusals just flushed too.
    state.final_checkpoint().await;
    result.map_err(ServeError::from)
}
