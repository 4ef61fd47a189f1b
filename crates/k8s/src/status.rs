//! What kubectl is told when its request does not reach the API server:
//! a Kubernetes `Status` object (`kind: Status`, `reason`, `code`,
//! `message`), which kubectl and client libraries print as
//! `Error from server (Forbidden): <message>`. A decision against the
//! request names its policies; nothing here holds the API server's
//! address or the gateway's credential.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_core::{Request, Status};
use countersign_gateway::gate::{Ended, Interruption};
use countersign_gateway::{Blame, GatewayError};
use serde_json::{json, Value};

/// A `Status` answer with `reason` (a Kubernetes `StatusReason`).
pub fn failure(code: StatusCode, reason: &str, message: &str) -> Response {
    failure_with(code, reason, message, None)
}

fn failure_with(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let (Some(details), Some(object)) = (details, body.as_object_mut()) {
        object.insert("details".to_owned(), details);
    }
    let mut response = (code, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The answer for a request that ended without running.
pub fn ended(resource: &str, ended: &Ended) -> Response {
    match ended {
        Ended::Closed(request) => closed(resource, request),
        Ended::Unavailable { error, request } => unavailable(resource, error, request.as_deref()),
        Ended::Interrupted { interruption, request } => {
            let what = match interruption {
                Interruption::Cancelled => "the request was withdrawn",
                Interruption::Gone => "the client went away; the request was withdrawn",
            };
            let message = format!("countersign: {what} (request {})", request.as_deref().unwrap_or("-"));
            failure(StatusCode::CONFLICT, "Conflict", &message)
        }
    }
}

fn closed(resource: &str, request: &Request) -> Response {
    let what = match request.status {
        Status::Denied => "denied",
        Status::Expired => "expired before anyone approved it",
        Status::Revoked => "revoked",
        Status::Cancelled => "cancelled",
        Status::Released => "already used",
        Status::Pending | Status::Approved | Status::Allowed => "not released",
    };
    let policies = if request.policies.is_empty() { "none".to_owned() } else { request.policies.join(", ") };
    let message = format!(
        "countersign: request to `{resource}` {what}: {} (policies: {policies}; request {})",
        request.reason, request.id
    );
    let causes: Vec<Value> = request
        .policies
        .iter()
        .map(|p| json!({"reason": "countersign.policy", "message": p, "field": "policy"}))
        .collect();
    let details = json!({"name": request.id, "kind": "countersign-request", "causes": causes});
    failure_with(StatusCode::FORBIDDEN, "Forbidden", &message, Some(details))
}

fn unavailable(resource: &str, error: &GatewayError, request: Option<&str>) -> Response {
    let (code, reason, what) = match error.blame() {
        Blame::Unauthenticated => {
            (StatusCode::UNAUTHORIZED, "Unauthorized", "your countersign credential is no longer accepted")
        }
        Blame::Caller | Blame::NotFound => (StatusCode::FORBIDDEN, "Forbidden", "countersign refused the request"),
        Blame::Gateway => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "countersign could not decide on the request, so it was not sent",
        ),
    };
    let message = format!("{what} (`{resource}`): {error} (request {})", request.unwrap_or("-"));
    failure(code, reason, &message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn a_failure_is_a_kubernetes_status() {
        let response = failure(StatusCode::FORBIDDEN, "Forbidden", "no");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let status: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], 403);
        assert_eq!(status["status"], "Failure");
    }
}
