//! Operational endpoints: liveness, readiness, metrics, and the OpenAPI
//! document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use countersign_gateway::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The gateway can decide: the store answers, a policy set is loaded, and
/// it is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.ping().await;
    let policy = state.policy();
    let ready = store.is_ok() && !state.is_shutting_down();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "ready": ready,
        "store": if store.is_ok() { "ok" } else { "unavailable" },
        "shutting_down": state.is_shutting_down(),
        "policy_hash": policy.engine.hash(),
        "policy_loaded_at": policy.loaded_at,
    });
    (status, Json(body))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "OpenMetrics text")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics().render())
}

/// This API's OpenAPI 3.1 description.
pub async fn openapi() -> impl IntoResponse {
    Json(super::openapi::document())
}
