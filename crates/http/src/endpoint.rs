//! `ANY /http/<name>/<path>`: one request through the approval loop.
//!
//! - allowed: forwarded, the response streamed back;
//! - denied: `403` with a JSON error naming the policies;
//! - pending: held open up to the API's `hold` while people decide, then
//!   run exactly as approved and answered; with `Prefer: respond-async`,
//!   or once the hold is over, `202` with the request id and the URL
//!   where the response can be collected once ([`crate::results`]). A
//!   client that goes away while its request is held withdraws it.
//!
//! A WebSocket upgrade is one request, decided once at the upgrade
//! (its payload says `upgrade: "websocket"`, its facts `websocket`):
//! allowed, the gateway asks the API to switch with its own credential
//! and relays the messages both ways ([`crate::websocket`]); denied,
//! `403`; pending, held up to `hold` then switched once approved, or
//! withdrawn with `504` (a WebSocket cannot be collected later). Any
//! other upgrade (`h2c`) is refused (`501`) before it is decided.
//!
//! `GET /v1/http/results/<id>` hands over such a response.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request as HttpRequest, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use countersign_core::Principal;
use countersign_gateway::gate::{self, Held, Interruption, Outcomes, Submitted};
use countersign_gateway::refusals::Source;
use countersign_gateway::AppState;
use countersign_server::bearer::{account_turned_away, identify, CallHead, TurnedAway, Unidentified};
use http_body_util::BodyExt as _;
use serde_json::json;
use tokio::sync::{oneshot, Notify};

use crate::config::HttpConfig;
use crate::forward::{read_back, stream_back, Record, Upstream};
use crate::reply::{self, error};
use crate::request::{check_framing, check_method, mark_upgrade, normal_query, path_after, prefers_async, Incoming};
use crate::results::{Collected, Results, Slot, MAX_KEPT_BYTES};
use crate::websocket::{self, BadUpgrade, Recorder, Switch};

#[derive(Debug, Clone)]
struct Service(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    state: AppState,
    upstreams: HashMap<String, Arc<Upstream>>,
    results: Results,
    outcomes: Outcomes,
}

/// The routes of the `[[http]]` APIs, merged into the gateway's server.
/// An API whose client cannot be set up is left out (and logged), so its
/// requests get `404` rather than reaching it some other way.
pub fn router(state: AppState, configs: Vec<HttpConfig>) -> Router {
    let mut upstreams = HashMap::new();
    for config in configs {
        let name = config.name.clone();
        match Upstream::new(config) {
            Ok(upstream) => {
                upstreams.insert(name, Arc::new(upstream));
            }
            Err(e) => tracing::error!(api = %name, error = %e, "cannot set up the HTTP API; it is unreachable"),
        }
    }
    let outcomes = Outcomes::new(&state);
    let accounting = axum::middleware::from_fn_with_state(state.clone(), account_turned_away);
    let service = Service(Arc::new(Inner { state, upstreams, results: Results::default(), outcomes }));
    Router::new()
        .route("/http/{name}", any(endpoint))
        .route("/http/{name}/", any(endpoint))
        .route("/http/{name}/{*path}", any(endpoint))
        .route(crate::results::PATH, get(collect))
        .route_layer(accounting)
        .with_state(service)
}

/// The caller, or the answer that turns it away.
async fn authenticate(state: &AppState, source: Source, call: &CallHead) -> Result<Principal, Box<Response>> {
    use countersign_gateway::identify::AuthError;
    let refused = match identify(state, source, call).await {
        Ok(principal) => return Ok(principal),
        Err(refused) => refused,
    };
    let response = match &refused {
        Unidentified::Limited(limited) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", &limited.to_string());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(limited.retry_after_secs));
            response
        }
        Unidentified::Failed(failed @ (AuthError::Missing | AuthError::Malformed | AuthError::Rejected)) => {
            let message = match failed {
                AuthError::Missing => "missing `Authorization: Bearer <countersign key>` header".to_owned(),
                AuthError::Malformed | AuthError::Rejected | AuthError::Store(_) => failed.to_string(),
            };
            let mut response = error(StatusCode::UNAUTHORIZED, "unauthenticated", &message);
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Unidentified::Failed(AuthError::Store(_)) => {
            let message = countersign_gateway::GatewayError::from(refused.clone()).to_string();
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &message)
        }
    };
    Err(Box::new(response))
}

/// An error answer to a call turned away before any decision, marked to
/// be accounted for (bounded record or count) by
/// [`countersign_server::bearer::account_turned_away`].
fn refused(status: StatusCode, code: &'static str, message: &str, by: Option<&Principal>) -> Response {
    let mut response = error(status, code, message);
    let actor = by.map(|p| p.reference().to_string());
    response.extensions_mut().insert(TurnedAway { code, message: message.to_owned(), actor });
    response
}

fn framing_refused(why: &crate::request::Malformed) -> Response {
    let mut response = refused(StatusCode::BAD_REQUEST, "bad_request", &why.to_string(), None);
    // The rest of the connection cannot be read safely.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn endpoint(
    State(service): State<Service>,
    Path(params): Path<HashMap<String, String>>,
    source: Option<axum::Extension<Source>>,
    request: HttpRequest,
) -> Response {
    if let Err(why) = check_framing(request.headers()) {
        return framing_refused(&why);
    }
    let source = countersign_server::source::stamped(source);
    let inner = &service.0;
    let call = CallHead::new(request.method(), request.uri(), request.headers());
    let principal = match authenticate(&inner.state, source, &call).await {
        Ok(principal) => principal,
        Err(response) => return *response,
    };
    let name = params.get("name").cloned().unwrap_or_default();
    let Some(upstream) = inner.upstreams.get(&name).cloned() else {
        return refused(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no HTTP API is named `{name}`"),
            Some(&principal),
        );
    };
    let path = match path_after(request.uri().path(), &name) {
        Ok(path) => path,
        Err(why) => return refused(StatusCode::BAD_REQUEST, "bad_request", &why.to_string(), Some(&principal)),
    };
    if let Err(why) = check_method(request.method()) {
        return refused(StatusCode::BAD_REQUEST, "bad_request", &why.to_string(), Some(&principal));
    }
    if request.method() == Method::CONNECT || request.method() == Method::TRACE {
        let message = "CONNECT and TRACE are not proxied";
        return refused(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message, Some(&principal));
    }
    let mut request = request;
    let websocket = match websocket::asked(request.method(), request.version(), request.headers()) {
        Ok(false) => None,
        Ok(true) => request.extensions_mut().remove::<hyper::upgrade::OnUpgrade>(),
        Err(why) => return upgrade_refused(&why, &principal),
    };
    if websocket.is_none() && request.headers().contains_key(header::UPGRADE) {
        // Asked for, but this connection cannot switch (not HTTP/1.1).
        return upgrade_refused(&BadUpgrade::NotABareGet, &principal);
    }
    let limit = upstream.config.max_body_bytes;
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit, &principal);
    }
    let (asynchronous, token) = (prefers_async(request.headers()), call.bearer().unwrap_or_default().to_owned());
    let headers = if websocket.is_some() {
        let mut extra = upstream.config.forward_headers.clone();
        extra.extend(websocket::HANDSHAKE_HEADERS.map(str::to_owned));
        Incoming::pick_headers(request.headers(), &extra)
    } else {
        Incoming::pick_headers(request.headers(), &upstream.config.forward_headers)
    };
    let (method, query) = (request.method().clone(), request.uri().query().map(normal_query));
    let body = match http_body_util::Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return too_large(limit, &principal)
        }
        Err(_) => {
            let message = "the request body could not be read";
            return refused(StatusCode::BAD_REQUEST, "bad_request", message, Some(&principal));
        }
    };
    let incoming = Incoming { method, path, query, headers, body };
    let mut action = incoming.action(&upstream.config.resource);
    if let Some(client) = websocket {
        mark_upgrade(&mut action, "websocket");
        let call = Switch { incoming, client, token };
        let recorder = Recorder { state: inner.state.clone(), outcomes: inner.outcomes.clone() };
        return match gate::submit(&inner.state, &principal, vec![action]).await {
            Submitted::Run(ids) => {
                let id = ids.into_iter().next().unwrap_or_default();
                websocket::switch(&recorder, &upstream, call, principal, id).await
            }
            Submitted::Refused(ended) => {
                let (status, body) = reply::ended(&upstream.config.resource, &ended);
                reply::json_response(status, &body)
            }
            Submitted::Held(held) => websocket::hold_switch(&recorder, &upstream, call, principal, held).await,
        };
    }
    match gate::submit(&inner.state, &principal, vec![action]).await {
        Submitted::Run(ids) => {
            let id = ids.into_iter().next().unwrap_or_default();
            run(&service, &upstream, &incoming, principal, id, token).await
        }
        Submitted::Refused(ended) => {
            let (status, body) = reply::ended(&upstream.config.resource, &ended);
            reply::json_response(status, &body)
        }
        Submitted::Held(held) => hold(service, upstream, incoming, principal, held, token, asynchronous).await,
    }
}

/// An upgrade refused before it is decided: `501` for another protocol
/// than `websocket`, `400` for a malformed handshake; the connection is
/// closed, since what follows (a body riding along, another protocol) was
/// never meant as a request of its own.
fn upgrade_refused(why: &BadUpgrade, by: &Principal) -> Response {
    let mut response = match why {
        BadUpgrade::NotWebSocket => {
            refused(StatusCode::NOT_IMPLEMENTED, "upgrade_not_supported", &why.to_string(), Some(by))
        }
        BadUpgrade::NotABareGet | BadUpgrade::BadHandshake => {
            refused(StatusCode::BAD_REQUEST, "bad_request", &why.to_string(), Some(by))
        }
    };
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn too_large(limit: usize, by: &Principal) -> Response {
    let mut response = refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("the request body is larger than this API's `max_body_bytes` ({limit})"),
        Some(by),
    );
    // The rest of the body is not read: the connection cannot carry
    // another request, and a client reusing it would see it reset.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Forwards a decided request and streams the answer back.
async fn run(
    service: &Service,
    upstream: &Upstream,
    incoming: &Incoming,
    principal: Principal,
    id: String,
    token: String,
) -> Response {
    let record =
        Record { state: service.0.state.clone(), outcomes: service.0.outcomes.clone(), principal, request: id };
    match upstream.send(incoming).await {
        Ok(response) => stream_back(response, record, token, &upstream.secrets),
        Err(why) => {
            record.unreachable(&why);
            error(StatusCode::BAD_GATEWAY, "bad_gateway", &why.to_string())
        }
    }
}

/// Withdraws the held request when the client goes away while waiting,
/// unless the wait was handed over to the results.
struct Waiting {
    gone: Arc<Notify>,
    detached: Arc<AtomicBool>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.detached.load(Ordering::SeqCst) {
            self.gone.notify_one();
        }
    }
}

async fn hold(
    service: Service,
    upstream: Arc<Upstream>,
    incoming: Incoming,
    principal: Principal,
    held: Held,
    token: String,
    asynchronous: bool,
) -> Response {
    let Some(request) = held.pending().next().cloned() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "a held request without a pending part");
    };
    let public_url = service.0.state.config().public_url.clone();
    let owner = principal.reference();
    if asynchronous && !service.0.results.wait_for(&request.id, &owner) {
        gate::cancel_pending(&service.0.state, &principal, &held.requests).await;
        return error(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many requests wait for their results; try later");
    }
    let (answer, answered) = oneshot::channel::<Response>();
    let waiting = Waiting { gone: Arc::new(Notify::new()), detached: Arc::new(AtomicBool::new(asynchronous)) };
    let hold_for = upstream.config.hold;
    tokio::spawn(run_when_decided(
        service.clone(),
        upstream,
        incoming,
        principal,
        held,
        token,
        answer,
        waiting.gone.clone(),
    ));
    if asynchronous {
        return reply::accepted(&public_url, &request, false);
    }
    tokio::select! {
        answered = answered => {
            waiting.detached.store(true, Ordering::SeqCst);
            answered.unwrap_or_else(|_| error(StatusCode::BAD_GATEWAY, "bad_gateway", "the request ended without an answer"))
        }
        () = tokio::time::sleep(hold_for) => {
            if !service.0.results.wait_for(&request.id, &owner) {
                // Dropping `waiting` withdraws the request.
                return error(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many requests wait for their results; the request was withdrawn");
            }
            waiting.detached.store(true, Ordering::SeqCst);
            reply::accepted(&public_url, &request, true)
        }
    }
}

/// Waits for the decision, runs the request once approved, and answers
/// the client still waiting, or keeps the answer to be collected.
#[expect(clippy::too_many_arguments, reason = "one task's whole state, handed over once")]
async fn run_when_decided(
    service: Service,
    upstream: Arc<Upstream>,
    incoming: Incoming,
    principal: Principal,
    held: Held,
    token: String,
    answer: oneshot::Sender<Response>,
    gone: Arc<Notify>,
) {
    let inner = &service.0;
    let owner = principal.reference();
    let first = held.pending().next().map(|r| r.id.clone()).unwrap_or_default();
    let interrupted = async move {
        gone.notified().await;
        Interruption::Gone
    };
    let ids = match gate::wait(&inner.state, &principal, held, interrupted).await {
        Ok(ids) => ids,
        Err(ended) => {
            let (status, body) = reply::ended(&upstream.config.resource, &ended);
            if answer.is_closed() {
                inner.results.complete(&first, &owner, Slot::Refused(status, body));
            } else if let Err(_unsent) = answer.send(reply::json_response(status, &body)) {
                inner.results.complete(&first, &owner, Slot::Refused(status, body));
            }
            return;
        }
    };
    let id = ids.into_iter().next().unwrap_or_default();
    if !answer.is_closed() {
        let response = run(&service, &upstream, &incoming, principal, id.clone(), token).await;
        if answer.send(response).is_err() {
            let body = json!({"error": {"code": "lost", "message": "the request ran, but the client stopped waiting as its answer came", "request": id}});
            inner.results.complete(&id, &owner, Slot::Refused(StatusCode::BAD_GATEWAY, body));
        }
        return;
    }
    let record =
        Record { state: inner.state.clone(), outcomes: inner.outcomes.clone(), principal, request: id.clone() };
    let slot = match upstream.send(&incoming).await {
        Ok(response) => match read_back(response, &record, MAX_KEPT_BYTES, &upstream.secrets).await {
            Ok(stored) => Slot::Ready(stored),
            Err(status) => Slot::Refused(
                StatusCode::BAD_GATEWAY,
                json!({"error": {"code": "not_kept", "message": format!("the request ran (HTTP {status}), but its response was too large to keep or broke off"), "request": id}}),
            ),
        },
        Err(why) => {
            record.unreachable(&why);
            Slot::Refused(
                StatusCode::BAD_GATEWAY,
                json!({"error": {"code": "bad_gateway", "message": why.to_string(), "request": id}}),
            )
        }
    };
    inner.results.complete(&id, &owner, slot);
}

/// `GET /v1/http/results/<id>`: the response of a request that ran in the
/// background, once, to the principal that sent it.
async fn collect(
    State(service): State<Service>,
    Path(id): Path<String>,
    source: Option<axum::Extension<Source>>,
    request: HttpRequest,
) -> Response {
    let source = countersign_server::source::stamped(source);
    let call = CallHead::new(request.method(), request.uri(), request.headers());
    let principal = match authenticate(&service.0.state, source, &call).await {
        Ok(principal) => principal,
        Err(response) => return *response,
    };
    match service.0.results.collect(&id, &principal.reference()) {
        // A replayed or guessed id: accounted for like any refusal.
        Collected::Unknown => refused(
            StatusCode::NOT_FOUND,
            "not_found",
            "no result with this id for you: never kept, already collected, or expired",
            Some(&principal),
        ),
        Collected::Waiting => {
            let mut response = reply::json_response(
                StatusCode::ACCEPTED,
                &json!({"request": id, "status": "pending", "message": "not run yet: it waits for approval"}),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            response
        }
        Collected::Done(Slot::Ready(stored)) => stored.into_response(),
        Collected::Done(Slot::Refused(status, body)) => reply::json_response(status, &body),
        Collected::Done(Slot::Waiting) => {
            Response::builder().status(StatusCode::ACCEPTED).body(Body::empty()).unwrap_or_default()
        }
    }
}
