//! Identify every caller, and account for every refused call.
//!
//! Authentication runs here, once, before any handler, through the gate
//! every entry point shares ([`crate::bearer`]); the principal is handed to
//! handlers as [`Caller`]. A source whose failed authentications ran out
//! its allowance is answered 429 with `Retry-After`; a caller that
//! authenticates is never held back. After the handler, a response carrying
//! a [`Rejection`] that the store has not already recorded is accounted
//! for through [`AppState::refuse`]: a bounded record, or a count.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use countersign_core::Principal;

use crate::bearer::{self, CallHead};
use crate::config::ServerConfig;
use crate::error::{ApiError, Rejection};
use countersign_gateway::refusals::{call_record, Source};
use countersign_gateway::AppState;

/// The authenticated principal of the current call.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// Paths anyone may call.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json")
}

/// Puts the call's [`Source`] in its extensions, once, for every route
/// (the API's, and those merged in from other crates).
pub async fn stamp_source(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if request.extensions().get::<Source>().is_none() {
        let source = crate::source::of(&state, request.extensions(), request.headers());
        request.extensions_mut().insert(source);
    }
    next.run(request).await
}

/// Reads an authenticated call's whole body (within the body limit) before
/// its handler runs, for every API route, whether or not the handler takes
/// a body. Clients send a body after the head (httpx writes them apart); a
/// handler that answered before the body came would leave it unread, and
/// the server then closes the kept-alive connection, so the client's next
/// call on it gets no answer at all.
pub async fn read_body_first(request: Request, next: Next) -> Response {
    let limit = request.extensions().get::<Arc<ServerConfig>>().map_or(0, |server| server.body_limit_bytes);
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let too_large = std::iter::successors(std::error::Error::source(&e), |inner| inner.source())
                .any(|inner| inner.is::<http_body_util::LengthLimitError>());
            return match too_large {
                true => ApiError::PayloadTooLarge { limit },
                false => ApiError::bad_request("invalid_body", "the request body could not be read"),
            }
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let source = crate::source::of(&state, request.extensions(), request.headers());
    let call = CallHead::new(request.method(), request.uri(), request.headers());
    let principal = match bearer::identify(&state, source, &call).await {
        Ok(principal) => principal,
        Err(refused) => {
            let mut response = ApiError::from(refused).into_response();
            // Accounted for already.
            response.extensions_mut().remove::<Rejection>();
            return response;
        }
    };
    let actor = principal.reference().to_string();
    request.extensions_mut().insert(Caller(principal));
    let response = next.run(request).await;
    if let Some(rejection) = response.extensions().get::<Rejection>() {
        if rejection.audited {
            state.metrics().count_refusal(rejection.code);
        } else {
            let (method, uri) = (&call.method, &call.uri);
            let record = || {
                call_record(Some(&actor), method.as_str(), uri.path(), uri.query(), rejection.code, &rejection.message)
            };
            state.refuse(source, Some(&actor), rejection.code, false, record).await;
        }
    }
    response
}
