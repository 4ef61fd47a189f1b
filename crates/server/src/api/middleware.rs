//! Identify every caller, and audit every refused call.
//!
//! Authentication runs here, once, before any handler; the principal is
//! handed to handlers as [`Caller`]. After the handler, a response carrying
//! a [`Rejection`] that the store has not already recorded is appended to
//! the audit log before the client hears of it.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use countersign_audit::AuditDraft;
use countersign_core::Principal;
use serde_json::json;

use crate::auth::AuthError;
use crate::error::{ApiError, Rejection};
use crate::gateway::AppState;

/// The authenticated principal of the current call.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// Paths anyone may call.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json")
}

pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if is_public(&path) {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let principal = match bearer(&request) {
        Ok(token) => state.auth.authenticate(token).await,
        Err(e) => Err(e),
    };
    let principal = match principal {
        Ok(principal) => principal,
        Err(error) => {
            let error = ApiError::Unauthenticated(error);
            record_rejection(&state, "anonymous", &method, &path, error.code(), &error.to_string()).await;
            let mut response = error.into_response();
            response.extensions_mut().remove::<Rejection>();
            return response;
        }
    };
    let actor = principal.reference().to_string();
    request.extensions_mut().insert(Caller(principal));
    let response = next.run(request).await;
    if let Some(rejection) = response.extensions().get::<Rejection>() {
        state.metrics.count_refusal(rejection.code);
        if !rejection.audited {
            record_rejection(&state, &actor, &method, &path, rejection.code, &rejection.message).await;
        }
    }
    response
}

fn bearer(request: &Request) -> Result<&str, AuthError> {
    let header = request.headers().get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    let text = header.to_str().map_err(|_| AuthError::Malformed)?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        Some(_) | None => Err(AuthError::Malformed),
    }
}

async fn record_rejection(state: &AppState, actor: &str, method: &str, path: &str, code: &str, message: &str) {
    let event = AuditDraft::new(
        actor,
        "request.rejected",
        json!({"method": method, "path": path, "code": code, "message": message}),
    );
    if let Err(e) = state.store.append_audit(vec![event]).await {
        // The caller still gets its refusal; nothing was changed.
        tracing::error!(error = %e, code, "could not audit a refused request");
    }
}
