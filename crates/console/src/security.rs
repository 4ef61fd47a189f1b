//! Response headers for every console page: a strict Content-Security-
//! Policy (scripts and styles only from the console's own files, nothing
//! inline, no framing, forms only to this origin and the identity
//! provider), no caching of pages that show approvals, and refusal of
//! cross-origin POSTs before any handler runs.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::session::same_origin;
use crate::Shared;

/// The policy; `idp_origin` may receive form submissions because logout and
/// step-up end in a redirect there.
pub fn content_security_policy(idp_origin: Option<&str>) -> HeaderValue {
    let form_action = match idp_origin {
        Some(origin) if origin.starts_with("http") && !origin.contains([';', ',', ' ', '\'']) => {
            format!("'self' {origin}")
        }
        Some(_) | None => "'self'".to_owned(),
    };
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

pub async fn headers(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        return (StatusCode::FORBIDDEN, "cross-origin form submissions are refused").into_response();
    }
    let is_asset = request.uri().path().starts_with("/console/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, state.csp.clone());
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
