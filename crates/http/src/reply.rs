//! What the client is told when its request does not reach the API, as
//! JSON: `{"error": {"code", "message", "request"?, "policies"?}}`. A
//! decision against it names the policies; nothing here ever holds the
//! API's address or credential.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_core::{Request, Status};
use countersign_gateway::gate::{self, Ended, Interruption};
use countersign_gateway::{Blame, GatewayError};
use serde_json::{json, Value};

/// A JSON error answer.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({"error": {"code": code, "message": message}}))
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The status and body for a request that ended without running.
pub fn ended(resource: &str, ended: &Ended) -> (StatusCode, Value) {
    match ended {
        Ended::Closed(request) => closed(resource, request),
        Ended::Unavailable { error, request } => unavailable(resource, error, request.as_deref()),
        Ended::Interrupted { interruption, request } => {
            let message = match interruption {
                Interruption::Cancelled => "the request was withdrawn",
                Interruption::Gone => "the client went away; the request was withdrawn",
            };
            (StatusCode::CONFLICT, json!({"error": {"code": "withdrawn", "message": message, "request": request}}))
        }
    }
}

fn closed(resource: &str, request: &Request) -> (StatusCode, Value) {
    let (code, what) = match request.status {
        Status::Denied => ("denied", "denied"),
        Status::Expired => ("expired", "expired before anyone approved it"),
        Status::Revoked => ("revoked", "revoked"),
        Status::Cancelled => ("cancelled", "cancelled"),
        Status::Released => ("already_used", "already used"),
        Status::Pending | Status::Approved | Status::Allowed => ("not_released", "not released"),
    };
    let policies = if request.policies.is_empty() { "none".to_owned() } else { request.policies.join(", ") };
    let message = format!(
        "countersign: request to `{resource}` {what}: {} (policies: {policies}; request {})",
        request.reason, request.id
    );
    let body = json!({"error": {
        "code": code,
        "message": message,
        "request": request.id,
        "policies": request.policies,
        "reason": request.reason,
    }});
    (StatusCode::FORBIDDEN, body)
}

fn unavailable(resource: &str, error: &GatewayError, request: Option<&str>) -> (StatusCode, Value) {
    let (status, code, what) = match error.blame() {
        Blame::Unauthenticated => {
            (StatusCode::UNAUTHORIZED, "unauthenticated", "your countersign credential is no longer accepted")
        }
        Blame::Caller | Blame::NotFound => (StatusCode::FORBIDDEN, "refused", "countersign refused the request"),
        Blame::Gateway => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "countersign could not decide on the request, so it was not sent",
        ),
    };
    let message = format!("{what} (`{resource}`): {error}");
    (status, json!({"error": {"code": code, "message": message, "request": request}}))
}

/// What the client is told while its request waits for people: 202 with
/// the request id and where to collect the API's response.
pub fn accepted(public_url: &str, request: &Request, hold_ended: bool) -> Response {
    let base = public_url.trim_end_matches('/');
    let result = crate::results::PATH.replace("{id}", &request.id);
    let note = if hold_ended {
        "the request is still waiting for approval; it runs once approved"
    } else {
        "the request waits for approval; it runs once approved"
    };
    let body = json!({
        "request": request.id,
        "status": "pending",
        "message": note,
        "asked": gate::asked(request),
        "expires_at": request.expires_at,
        "result_url": format!("{base}{result}"),
        "review_url": format!("{base}/console/requests/{}", request.id),
    });
    let mut response = json_response(StatusCode::ACCEPTED, &body);
    if let Ok(location) = HeaderValue::from_str(&result) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}
