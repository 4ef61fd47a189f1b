//! Who is calling, from the `Authorization: Bearer` header: the one gate
//! that every HTTP entry point of the gateway (the API's middleware, the
//! MCP endpoint) puts a call through, so that rate limits, authentication
//! and the accounting of refusals are the same wherever an agent knocks.
//!
//! A source whose failed authentications ran out its allowance is not even
//! heard out unless it shows a credential; one that does is still
//! authenticated, so that an agent behind the same address as an attacker
//! keeps working. Every call turned away here is accounted for through
//! [`AppState::refuse`]: a bounded record, or a count. Only a failed
//! authentication uses up the source's allowance; a 429 does not, so a
//! source that waits as told is heard again. Each entry point answers a
//! refusal in its own shape.

use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use countersign_audit::RefusalRecord;
use countersign_core::Principal;
use countersign_gateway::identify::AuthError;
use countersign_gateway::refusals::{call_record, Source};
use countersign_gateway::{AppState, GatewayError, RateLimited};

/// Why a call was not let in; already accounted for.
#[derive(Debug, Clone)]
pub enum Unidentified {
    /// The source is rate-limited and showed no credential that works.
    Limited(RateLimited),
    /// No credential, or one that does not identify anyone (or could not
    /// be looked up).
    Failed(AuthError),
}

impl From<Unidentified> for GatewayError {
    fn from(refused: Unidentified) -> Self {
        match refused {
            Unidentified::Limited(limited) => Self::RateLimited(limited),
            Unidentified::Failed(failed) => Self::Unauthenticated(failed),
        }
    }
}

/// What a call is identified and, if refused, recorded by: cheap clones of
/// the request's head (a request's body is not `Sync`, so the request
/// itself cannot be held across the store's await).
#[derive(Debug, Clone)]
pub struct CallHead {
    pub method: Method,
    pub uri: Uri,
    authorization: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
}

impl CallHead {
    pub fn new(method: &Method, uri: &Uri, headers: &HeaderMap) -> Self {
        Self {
            method: method.clone(),
            uri: uri.clone(),
            authorization: headers.get(AUTHORIZATION).cloned(),
            user_agent: headers.get(USER_AGENT).cloned(),
        }
    }

    /// The bearer token the call shows: the one parser of
    /// `Authorization: Bearer`, also for entry points that keep the token
    /// after [`identify`] (to see it revoked while a request is held).
    pub fn bearer(&self) -> Result<&str, AuthError> {
        let header = self.authorization.as_ref().ok_or(AuthError::Missing)?;
        let text = header.to_str().map_err(|_| AuthError::Malformed)?;
        match text.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                Ok(token.trim())
            }
            Some(_) | None => Err(AuthError::Malformed),
        }
    }

    /// The record of the refused call: what the client chose, cut and
    /// hashed; of the credential only its first characters.
    fn record(&self, error: &GatewayError) -> RefusalRecord {
        let (code, message) = (error.code(), error.to_string());
        let user_agent = self.user_agent.as_ref().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let record = call_record(None, self.method.as_str(), self.uri.path(), self.uri.query(), code, &message)
            .text_opt("user_agent", user_agent.as_deref());
        match self.bearer() {
            // Enough to tell a user token from an agent key from junk;
            // never enough to help guess one.
            Ok(token) => {
                let prefix: String = token.chars().take(4).collect();
                record.text("token_prefix", &prefix).number("token_bytes", token.len() as u64)
            }
            Err(_) => record,
        }
    }
}

/// The principal `call` from `source` authenticates as; or why not, once
/// the refusal has been accounted for.
pub async fn identify(state: &AppState, source: Source, call: &CallHead) -> Result<Principal, Unidentified> {
    let admitted = state.admit(source);
    let refused = match (admitted, call.bearer()) {
        (Err(limited), Err(_)) => Unidentified::Limited(limited),
        (Ok(()), Err(missing)) => Unidentified::Failed(missing),
        (admitted, Ok(token)) => match state.authenticate(token).await {
            Ok(principal) => return Ok(principal),
            Err(failed) => admitted.map_or_else(Unidentified::Limited, |()| Unidentified::Failed(failed)),
        },
    };
    let charge =
        matches!(refused, Unidentified::Failed(AuthError::Missing | AuthError::Malformed | AuthError::Rejected));
    let error = GatewayError::from(refused.clone());
    state.refuse(source, None, error.code(), charge, || call.record(&error)).await;
    Err(refused)
}

/// What an entry point puts on a response that turns a call away after
/// reading it and before any decision (bad framing or path, an unknown
/// upstream, a method or body it does not take): [`account_turned_away`]
/// accounts for it as every refusal is, with a bounded record or a count.
/// (Refusals by [`identify`] are accounted for there and carry none.)
#[derive(Debug, Clone)]
pub struct TurnedAway {
    pub code: &'static str,
    pub message: String,
    /// The caller, when it was identified before being turned away.
    pub actor: Option<String>,
}

/// Middleware for the routes of an entry point that answers in its own
/// shape: a response carrying [`TurnedAway`] is accounted for through
/// [`AppState::refuse`], as the API's rejections are.
pub async fn account_turned_away(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let source = request.extensions().get::<Source>().copied().unwrap_or(Source::Unknown);
    let call = CallHead::new(request.method(), request.uri(), request.headers());
    let response = next.run(request).await;
    if let Some(turned) = response.extensions().get::<TurnedAway>() {
        let actor = turned.actor.as_deref();
        let record = || {
            call_record(actor, call.method.as_str(), call.uri.path(), call.uri.query(), turned.code, &turned.message)
        };
        state.refuse(source, actor, turned.code, false, record).await;
    }
    response
}
