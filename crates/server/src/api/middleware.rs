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
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use countersign_audit::RefusalRecord;
use countersign_core::Principal;

use crate::error::{ApiError, Rejection};
use countersign_gateway::identify::AuthError;
use countersign_gateway::refusals::{call_record, Source};
use countersign_gateway::{AppState, GatewayError};

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

pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let source = crate::source::of(&state, request.extensions(), request.headers());
    // A limited source is not even heard out unless it shows a credential;
    // one that does is still authenticated, so that an agent behind the
    // same address as an attacker keeps working.
    let admitted = state.admit(source);
    let principal = match (admitted, bearer(&request)) {
        (Err(limited), Err(_)) => {
            let call = CallHead::of(&request, None);
            return refuse_anonymous(&state, source, |e| call.record(e), ApiError::from(limited)).await;
        }
        (Ok(()), Err(missing)) => {
            let call = CallHead::of(&request, None);
            let error = ApiError::from(missing);
            return refuse_anonymous(&state, source, |e| call.record(e), error).await;
        }
        (admitted, Ok(token)) => match state.authenticate(token).await {
            Ok(principal) => principal,
            Err(failed) => {
                let call = CallHead::of(&request, Some(token));
                let error = admitted.map_or_else(ApiError::from, |()| ApiError::from(failed));
                return refuse_anonymous(&state, source, |e| call.record(e), error).await;
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
            state.metrics().count_refusal(rejection.code);
        } else {
            let record = || {
                call_record(Some(&actor), method.as_str(), uri.path(), uri.query(), rejection.code, &rejection.message)
            };
            state.refuse(source, Some(&actor), rejection.code, false, record).await;
        }
    }
    response
}

/// Accounts for a call refused before anyone was identified, and answers
/// it. Only a failed authentication uses up the source's allowance; a 429
/// does not, so a source that waits as told is heard again.
async fn refuse_anonymous(
    state: &AppState,
    source: Source,
    record: impl FnOnce(&ApiError) -> RefusalRecord,
    error: ApiError,
) -> Response {
    let code = error.code();
    let charge = matches!(
        error,
        ApiError::Gateway(GatewayError::Unauthenticated(
            AuthError::Missing | AuthError::Malformed | AuthError::Rejected
        ))
    );
    state.refuse(source, None, code, charge, || record(&error)).await;
    let mut response = error.into_response();
    response.extensions_mut().remove::<Rejection>();
    response
}

/// What the record of a refused unauthenticated call is made from: cheap
/// clones of the request's head (the body is not `Sync`, so the request
/// itself cannot be held across the store's await).
struct CallHead {
    method: Method,
    uri: Uri,
    user_agent: Option<HeaderValue>,
    token: Option<(String, usize)>,
}

impl CallHead {
    fn of(request: &Request, token: Option<&str>) -> Self {
        Self {
            method: request.method().clone(),
            uri: request.uri().clone(),
            user_agent: request.headers().get(USER_AGENT).cloned(),
            // Enough to tell a user token from an agent key from junk;
            // never enough to help guess one.
            token: token.map(|t| (t.chars().take(4).collect(), t.len())),
        }
    }

    /// The record: what the client chose, cut and hashed; of the
    /// credential only its first characters.
    fn record(&self, error: &ApiError) -> RefusalRecord {
        let (code, message) = (error.code(), error.to_string());
        let user_agent = self.user_agent.as_ref().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let record = call_record(None, self.method.as_str(), self.uri.path(), self.uri.query(), code, &message)
            .text_opt("user_agent", user_agent.as_deref());
        match &self.token {
            Some((prefix, bytes)) => record.text("token_prefix", prefix).number("token_bytes", *bytes as u64),
            None => record,
        }
    }
}

fn bearer(request: &Request) -> Result<&str, AuthError> {
    let header = request.headers().get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    let text = header.to_str().map_err(|_| AuthError::Malformed)?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        Some(_) | None => Err(AuthError::Malformed),
    }
}
