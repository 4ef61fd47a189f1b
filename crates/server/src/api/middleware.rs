//! Identify every caller, and account for every refused call.
//!
//! Authentication runs here, once, before any handler; the principal is
//! handed to handlers as [`Caller`]. A source whose failed authentications
//! ran out its allowance is answered 429 with `Retry-After`; a caller that
//! authenticates is never held back. After the handler, a response carrying
//! a [`Rejection`] that the store has not already recorded is accounted
//! for through [`AppState::refuse`]: a bounded record, or a count.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use countersign_audit::RefusalRecord;
use countersign_core::Principal;

use crate::auth::AuthError;
use crate::error::{ApiError, Rejection};
use crate::gateway::AppState;
use crate::refusals::{call_record, Source};

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
        let source = state.source_of(request.extensions(), request.headers());
        request.extensions_mut().insert(source);
    }
    next.run(request).await
}

pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let source = state.source_of(request.extensions(), request.headers());
    // A limited source is not even heard out unless it shows a credential;
    // one that does is still authenticated, so that an agent behind the
    // same address as an attacker keeps working.
    let admitted = state.admit(source);
    let principal = match (admitted, bearer(&request)) {
        (Err(limited), Err(_)) => {
            let record = refusal_record(&request, None, &limited);
            return refuse_anonymous(&state, source, record, limited).await;
        }
        (Ok(()), Err(missing)) => {
            let error = ApiError::Unauthenticated(missing);
            let record = refusal_record(&request, None, &error);
            return refuse_anonymous(&state, source, record, error).await;
        }
        (admitted, Ok(token)) => match state.auth.authenticate(token).await {
            Ok(principal) => principal,
            Err(failed) => {
                let error = admitted.err().unwrap_or(ApiError::Unauthenticated(failed));
                let record = refusal_record(&request, Some(token), &error);
                return refuse_anonymous(&state, source, record, error).await;
            }
        },
    };
    let actor = principal.reference().to_string();
    let method = request.method().clone();
    let uri = request.uri().clone();
    request.extensions_mut().insert(Caller(principal));
    let response = next.run(request).await;
    if let Some(rejection) = response.extensions().get::<Rejection>() {
        if rejection.audited {
            state.metrics.count_refusal(rejection.code);
        } else {
            let record =
                call_record(Some(&actor), method.as_str(), uri.path(), uri.query(), rejection.code, &rejection.message);
            state.refuse(source, Some(&actor), rejection.code, false, record).await;
        }
    }
    response
}

/// Accounts for a call refused before anyone was identified, and answers
/// it. Only a failed authentication uses up the source's allowance; a 429
/// does not, so a source that waits as told is heard again.
async fn refuse_anonymous(state: &AppState, source: Source, record: RefusalRecord, error: ApiError) -> Response {
    let code = error.code();
    let charge =
        matches!(error, ApiError::Unauthenticated(AuthError::Missing | AuthError::Malformed | AuthError::Rejected));
    state.refuse(source, None, code, charge, record).await;
    let mut response = error.into_response();
    response.extensions_mut().remove::<Rejection>();
    response
}

/// The record of a refused unauthenticated call: what the client chose,
/// cut and hashed; of the credential only its first characters.
fn refusal_record(request: &Request, token: Option<&str>, error: &ApiError) -> RefusalRecord {
    let (code, message) = (error.code(), error.to_string());
    let header = |name| request.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut record =
        call_record(None, request.method().as_str(), request.uri().path(), request.uri().query(), code, &message)
            .text_opt("user_agent", header(USER_AGENT).as_deref());
    if let Some(token) = token {
        // Enough to tell a user token from an agent key from junk; never
        // enough to help guess one.
        let prefix: String = token.chars().take(4).collect();
        record = record.text("token_prefix", &prefix).number("token_bytes", token.len() as u64);
    }
    record
}

fn bearer(request: &Request) -> Result<&str, AuthError> {
    let header = request.headers().get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    let text = header.to_str().map_err(|_| AuthError::Malformed)?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        Some(_) | None => Err(AuthError::Malformed),
    }
}
