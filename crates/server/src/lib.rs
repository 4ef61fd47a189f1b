//! The countersign gateway: the HTTP API over the approval loop.
//!
//! - [`gateway`]: the application logic every entry point shares;
//! - [`api`]: routes, views and middleware;
//! - [`auth`]: who is calling;
//! - [`hub`]: waking waiting agents;
//! - [`config`]: the validated configuration;
//! - [`refusals`]: rate limits and bounded records of refused calls.
//!
//! [`router`] serves in-process tests; [`serve`] runs on a real listener
//! with background duties and graceful shutdown.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod gateway;
pub mod hub;
pub mod metrics;
pub mod refusals;

use std::future::Future;

pub use api::router;
pub use axum::Router;
pub use error::ApiError;
pub use gateway::error::{GatewayError, RateLimited};
pub use gateway::{AppState, StartError};

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
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with(state, axum::Router::new(), listener, shutdown).await
}

/// As [`serve`], with more routes merged in: entry points and integrations
/// that live in their own crates (the MCP proxy, chat channels, the web
/// console) hand their routers to the binary, which passes them here.
pub async fn serve_with(
    state: AppState,
    extra: axum::Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let background = tokio::spawn(state.clone().run_background());
    let flusher = tokio::spawn(state.clone().run_refusal_flusher());
    let app = router(state.clone())
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(state.clone(), api::middleware::stamp_source));
    let hub_state = state.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: answering waiters and finishing in-flight calls");
        hub_state.hub.shut_down();
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
    state.hub.shut_down();
    background.abort();
    flusher.abort();
    // Counted refusals are recorded before the process goes.
    state.flush_refusals(true).await;
    result.map_err(ServeError::from)
}
