//! What the integration routes (Slack interactivity, the Teams bot) say
//! to callers they turn away before reading them: the source the gateway's
//! router stamped on the call, and the answer to a rate-limited source.
//! The routes carry their own authentication, so they answer in the API's
//! error shape without going through the API.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use countersign_gateway::refusals::Source;
use countersign_gateway::RateLimited;
use serde_json::json;

/// The source stamped on the call (`Unknown` when served without the
/// gateway's router, as in-process tests).
pub(crate) fn source(stamped: Option<Extension<Source>>) -> Source {
    stamped.map_or(Source::Unknown, |Extension(source)| source)
}

/// 429 with `Retry-After`, as the API answers a rate-limited source.
pub(crate) fn rate_limited(limited: RateLimited) -> Response {
    let body = json!({"error": {"code": limited.code(), "message": limited.to_string()}});
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, limited.retry_after_secs.into());
    response
}
