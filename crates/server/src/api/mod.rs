//! The HTTP API: routes, extractors, views, and middleware. Handlers are
//! thin: they parse, call [`countersign_gateway::AppState`], and render.

pub mod actions;
pub mod admin;
pub mod audit_proofs;
pub mod json;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod views;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::ServerConfig;
use crate::error::ApiError;
use countersign_gateway::{AppState, GatewayError};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The gateway's routes, for in-process tests and for [`crate::serve`],
/// under the API's own configuration (`[server]`).
pub fn router(state: AppState, server: &ServerConfig) -> Router {
    let limit = server.body_limit_bytes;
    let api = Router::new()
        .route("/v1/actions", post(actions::submit).get(actions::list))
        .route("/v1/actions/{id}", get(actions::get))
        .route("/v1/actions/{id}/approve", post(actions::approve))
        .route("/v1/actions/{id}/deny", post(actions::deny))
        .route("/v1/actions/{id}/comments", post(actions::comment))
        .route("/v1/actions/{id}/cancel", post(actions::cancel))
        .route("/v1/actions/{id}/release", post(actions::release))
        .route("/v1/actions/{id}/outcome", post(actions::outcome))
        .route("/v1/audit", get(admin::audit))
        .route("/v1/audit/checkpoint", get(audit_proofs::checkpoint))
        .route("/v1/audit/key", get(audit_proofs::key))
        .route("/v1/audit/proof/inclusion", get(audit_proofs::inclusion))
        .route("/v1/audit/proof/consistency", get(audit_proofs::consistency))
        .route("/v1/policies", get(admin::policies))
        .route("/v1/policies/reload", post(admin::reload))
        .route("/v1/whoami", get(admin::whoami))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(middleware::read_body_first))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::authenticate))
        .layer(Extension(Arc::new(server.clone())))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state.clone());
    api.layer(axum::middleware::from_fn_with_state(state, middleware::stamp_source))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            let path = request.uri().path();
            // The path is the client's: a bounded part of it in every log line.
            let path = path.get(..path.len().min(200)).unwrap_or("(not shown)");
            tracing::info_span!("request", request_id = %id, method = %request.method(), path = %path)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    // The path is the client's; echo a bounded part of it.
    let path = uri.path();
    let shown = match path.char_indices().nth(MAX_ECHOED_PATH_CHARS) {
        Some((at, _)) => format!("{}…", &path[..at]),
        None => path.to_owned(),
    };
    ApiError::Gateway(GatewayError::NotFound { what: "route", id: shown })
}

/// The most characters of an unknown path repeated in the 404.
const MAX_ECHOED_PATH_CHARS: usize = 200;
