//! `ANY /k8s/<cluster>/<API path>`: one Kubernetes API request through
//! the approval loop.
//!
//! - allowed: sent to the API server with the gateway's credential, the
//!   answer streamed back (a `watch`, `logs -f`, as it comes);
//! - denied: `403` with a `Status` naming the policies;
//! - pending: held open up to the cluster's `hold` while people decide,
//!   then sent exactly as approved; once the hold is over the request is
//!   withdrawn and kubectl gets `504` (nothing runs that no one waits
//!   for). A client that goes away while its request is held withdraws it.
//!
//! A write the policy would hold first gets its impact preview: the API
//! server's dry run of it, shown on the review card ([`crate::preview`]).
//!
//! Requests that open a stream into a container (`Connection: Upgrade`,
//! WebSocket or SPDY, for exec, attach and port-forward) are decided once,
//! at the upgrade, like any other request; once allowed the upgrade is
//! asked of the API server and, when it agrees, the two streams are
//! passed through untouched until either side closes ([`crate::stream`]).
//! Every open stream — a watch, `logs -f`, exec, attach, port-forward — is
//! cut when the caller's credential stops being accepted
//! ([`countersign_http::cut`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request as HttpRequest, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use countersign_core::Principal;
use countersign_gateway::gate::{self, Held, Interruption, Outcomes, Submitted};
use countersign_gateway::refusals::Source;
use countersign_gateway::AppState;
use countersign_http::cut::Caller;
use countersign_http::forward::{stream_back, Record};
use countersign_http::request::{check_framing, mark_upgrade, normal_query, Incoming};
use countersign_http::withdraw::wait_held;
use countersign_server::bearer::{account_turned_away, identify, CallHead, TurnedAway, Unidentified};
use http_body_util::BodyExt as _;

use crate::config::KubernetesConfig;
use crate::preview;
use crate::status::{self, failure};
use crate::upstream::Upstream;

#[derive(Debug, Clone)]
struct Service(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    state: AppState,
    clusters: HashMap<String, Arc<Upstream>>,
    outcomes: Outcomes,
}

/// The routes of the `[[kubernetes]]` clusters, merged into the gateway's
/// server. A cluster whose client cannot be set up is left out (and
/// logged), so its requests get `404`.
pub fn router(state: AppState, configs: Vec<KubernetesConfig>) -> Router {
    let mut clusters = HashMap::new();
    for config in configs {
        let name = config.name.clone();
        match Upstream::new(config) {
            Ok(upstream) => {
                clusters.insert(name, Arc::new(upstream));
            }
            Err(e) => {
                tracing::error!(cluster = %name, error = %e, "cannot set up the Kubernetes cluster; it is unreachable")
            }
        }
    }
    let outcomes = Outcomes::new(&state);
    let accounting = axum::middleware::from_fn_with_state(state.clone(), account_turned_away);
    let service = Service(Arc::new(Inner { state, clusters, outcomes }));
    Router::new()
        .route("/k8s/{cluster}", any(endpoint))
        .route("/k8s/{cluster}/", any(endpoint))
        .route("/k8s/{cluster}/{*path}", any(endpoint))
        .route_layer(accounting)
        .with_state(service)
}

/// The caller, or the `Status` that turns it away.
async fn authenticate(state: &AppState, source: Source, call: &CallHead) -> Result<Principal, Box<Response>> {
    use countersign_gateway::identify::AuthError;
    let refused = match identify(state, source, call).await {
        Ok(principal) => return Ok(principal),
        Err(refused) => refused,
    };
    let response = match &refused {
        Unidentified::Limited(limited) => {
            let mut response = failure(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", &limited.to_string());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(limited.retry_after_secs));
            response
        }
        Unidentified::Failed(failed @ (AuthError::Missing | AuthError::Malformed | AuthError::Rejected)) => {
            let message = match failed {
                AuthError::Missing => {
                    "countersign: missing `Authorization: Bearer <countersign key>` header".to_owned()
                }
                AuthError::Malformed | AuthError::Rejected | AuthError::Store(_) => format!("countersign: {failed}"),
            };
            failure(StatusCode::UNAUTHORIZED, "Unauthorized", &message)
        }
        Unidentified::Failed(AuthError::Store(_)) => {
            let message = countersign_gateway::GatewayError::from(refused.clone()).to_string();
            failure(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", &message)
        }
    };
    Err(Box::new(response))
}

/// Why a request path is refused before it is decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPath {
    #[error("the path holds `%`, a `.` or `..` segment, an empty segment, a backslash or a control character; Kubernetes API paths need none")]
    Ambiguous,
}

/// The API path after `/k8s/<cluster>` (at least `/`). Refused when the
/// API server could read it as another path than the one decided on:
/// Kubernetes names never need escaping, so any `%` is refused.
pub fn api_path(full: &str, cluster: &str) -> Result<String, BadPath> {
    // The cluster as written, not as decoded: `/k8s/stag%69ng` is no cluster.
    let rest = full.strip_prefix("/k8s/").and_then(|r| r.strip_prefix(cluster)).ok_or(BadPath::Ambiguous)?;
    let path = if rest.is_empty() { "/" } else { rest };
    let bad_byte = path.bytes().any(|b| b == b'%' || b == b'\\' || b.is_ascii_control() || !b.is_ascii());
    let inner = path.strip_prefix('/').unwrap_or(path);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    let bad_segment = !inner.is_empty() && inner.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if bad_byte || bad_segment || !path.starts_with('/') {
        return Err(BadPath::Ambiguous);
    }
    Ok(path.to_owned())
}

/// The request asks to become a stream (exec, attach, port-forward).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        || headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// A `Status` answer to a call turned away before any decision, marked to
/// be accounted for (bounded record or count) by
/// [`countersign_server::bearer::account_turned_away`] under `code`.
fn refused(status: StatusCode, reason: &str, code: &'static str, message: &str, by: Option<&Principal>) -> Response {
    let mut response = failure(status, reason, message);
    let actor = by.map(|p| p.reference().to_string());
    response.extensions_mut().insert(TurnedAway { code, message: message.to_owned(), actor });
    response
}

async fn endpoint(
    State(service): State<Service>,
    Path(params): Path<HashMap<String, String>>,
    source: Option<axum::Extension<Source>>,
    request: HttpRequest,
) -> Response {
    if let Err(why) = check_framing(request.headers()) {
        let mut response = refused(StatusCode::BAD_REQUEST, "BadRequest", "bad_request", &why.to_string(), None);
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let source = countersign_server::source::stamped(source);
    let inner = &service.0;
    let call = CallHead::new(request.method(), request.uri(), request.headers());
    let principal = match authenticate(&inner.state, source, &call).await {
        Ok(principal) => principal,
        Err(response) => return *response,
    };
    let name = params.get("cluster").cloned().unwrap_or_default();
    let Some(upstream) = inner.clusters.get(&name).cloned() else {
        let message = format!("countersign: no Kubernetes cluster is named `{name}`");
        return refused(StatusCode::NOT_FOUND, "NotFound", "not_found", &message, Some(&principal));
    };
    let path = match api_path(request.uri().path(), &name) {
        Ok(path) => path,
        Err(why) => {
            let message = format!("countersign: {why}");
            return refused(StatusCode::BAD_REQUEST, "BadRequest", "bad_request", &message, Some(&principal));
        }
    };
    if !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        let message = "countersign: this method is not proxied";
        return refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method_not_allowed",
            message,
            Some(&principal),
        );
    }
    let mut request = request;
    let upgrade = if is_upgrade(request.headers()) {
        let protocol = request.headers().get(header::UPGRADE).cloned();
        let on_upgrade = request.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
        match (protocol, on_upgrade) {
            (Some(protocol), Some(on_upgrade)) => Some(Upgrade { protocol, on_upgrade }),
            (None | Some(_), None | Some(_)) => {
                let message = "countersign: an upgrade without a protocol";
                return refused(StatusCode::BAD_REQUEST, "BadRequest", "bad_request", message, Some(&principal));
            }
        }
    } else {
        None
    };
    let limit = upstream.config.max_body_bytes;
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit, &principal);
    }
    let token = call.bearer().unwrap_or_default().to_owned();
    let headers = Incoming::pick_headers(request.headers(), &STREAM_HEADERS.map(str::to_owned));
    let (method, query) = (request.method().clone(), request.uri().query().map(normal_query));
    let body = match http_body_util::Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return too_large(limit, &principal)
        }
        Err(_) => {
            let message = "countersign: the request body could not be read";
            return refused(StatusCode::BAD_REQUEST, "BadRequest", "bad_request", message, Some(&principal));
        }
    };
    let incoming = Incoming { method, path, query, headers, body };
    let mut action = incoming.action(&upstream.config.resource);
    crate::KIND.clone_into(&mut action.kind);
    if let Some(upgrade) = &upgrade {
        mark_upgrade(&mut action, &String::from_utf8_lossy(upgrade.protocol.as_bytes()));
    }
    if upgrade.is_none() && !upstream.config.preview_timeout.is_zero() {
        add_preview(&inner.state, &principal, &upstream, &incoming, &mut action).await;
    }
    let call = Call { incoming, upgrade, token };
    match gate::submit(&inner.state, &principal, vec![action]).await {
        Submitted::Run(ids) => {
            let id = ids.into_iter().next().unwrap_or_default();
            run(&service, &upstream, call, principal, id).await
        }
        Submitted::Refused(ended) => status::ended(&upstream.config.resource, &ended),
        Submitted::Held(held) => hold(&service, &upstream, call, principal, held).await,
    }
}

/// Puts the impact preview of a write the policy would hold on its
/// context, where the review cards read it ([`crate::preview`]).
async fn add_preview(
    state: &AppState,
    principal: &Principal,
    upstream: &Upstream,
    incoming: &Incoming,
    action: &mut countersign_core::Action,
) {
    if matches!(incoming.method, Method::GET | Method::HEAD) {
        // Reads are never previewed: spare them the facts.
        return;
    }
    let Some(plan) = preview::plan(action) else { return };
    if !preview::would_hold(state, principal, action) {
        return;
    }
    let value = match plan {
        Ok(plan) => preview::preview(upstream, incoming, &plan).await,
        Err(why) => preview::unavailable(&why),
    };
    action.context.insert("impact_preview".to_owned(), value);
}

fn too_large(limit: usize, by: &Principal) -> Response {
    let mut response = refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        "payload_too_large",
        &format!("countersign: the request body is larger than this cluster's `max_body_bytes` ({limit})"),
        Some(by),
    );
    // The rest of the body is not read: the connection cannot carry
    // another request.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Request headers a stream's upgrade needs (besides the allow-list).
const STREAM_HEADERS: [&str; 4] =
    ["sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol", "x-stream-protocol-version"];

/// Response headers of a switch of protocols passed back to the client.
const SWITCH_HEADERS: [&str; 5] = [
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

/// The client's wish to switch protocols, and its side of the stream.
struct Upgrade {
    protocol: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
}

/// A request as decided, and how to answer it.
struct Call {
    incoming: Incoming,
    upgrade: Option<Upgrade>,
    /// The caller's bearer credential (rechecked while a response streams).
    token: String,
}

/// Sends a decided request and streams the answer back.
async fn run(service: &Service, upstream: &Upstream, call: Call, principal: Principal, id: String) -> Response {
    let record =
        Record { state: service.0.state.clone(), outcomes: service.0.outcomes.clone(), principal, request: id };
    let Call { incoming, upgrade, token } = call;
    let Some(upgrade) = upgrade else {
        return match upstream.send(&incoming).await {
            Ok(response) => stream_back(response, record, token, &upstream.secrets),
            Err(why) => {
                record.unreachable(&why);
                failure(StatusCode::BAD_GATEWAY, "InternalError", &format!("countersign: {why}"))
            }
        };
    };
    let response = match upstream.send_upgrade(&incoming, &upgrade.protocol).await {
        Ok(response) => response,
        Err(why) => {
            record.unreachable(&why);
            return failure(StatusCode::BAD_GATEWAY, "InternalError", &format!("countersign: {why}"));
        }
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The API server said no (or answered plainly): its answer goes back.
        return stream_back(response, record, token, &upstream.secrets);
    }
    let mut switched = Response::new(axum::body::Body::empty());
    *switched.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for name in SWITCH_HEADERS {
        for value in response.headers().get_all(name) {
            switched.headers_mut().append(name, value.clone());
        }
    }
    switched.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    let caller = Caller::new(record.state.clone(), token, record.request.clone());
    tokio::spawn(pass_through(upgrade.on_upgrade, response, record, caller));
    switched
}

/// Passes the upgraded streams through until either side closes or the
/// caller is no longer accepted, then records how much went each way.
async fn pass_through(
    client: hyper::upgrade::OnUpgrade,
    upstream: reqwest::Response,
    record: Record,
    mut caller: Caller,
) {
    let (client, mut upstream) = match (client.await, upstream.upgrade().await) {
        (Ok(client), Ok(upstream)) => (client, upstream),
        (Err(_), _) | (_, Err(_)) => {
            crate::stream::record(&record, None);
            return;
        }
    };
    let mut client = hyper_util::rt::TokioIo::new(client);
    let passed = crate::stream::pass(&mut client, &mut upstream, &mut caller).await;
    crate::stream::record(&record, Some(passed));
}

async fn hold(service: &Service, upstream: &Upstream, call: Call, principal: Principal, held: Held) -> Response {
    let inner = &service.0;
    let hold_for = upstream.config.hold;
    let first = held.pending().next().map(|r| r.id.clone()).unwrap_or_default();
    tracing::info!(request = %first, cluster = %upstream.config.name, "a Kubernetes request waits for approval");
    match wait_held(&inner.state, &principal, held, hold_for).await {
        Ok(ids) => {
            let id = ids.into_iter().next().unwrap_or_default();
            run(service, upstream, call, principal, id).await
        }
        Err(gate::Ended::Interrupted { interruption: Interruption::Cancelled, request }) => failure(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            &format!(
                "countersign: request {} to `{}` still waited for approval after {}s; it was withdrawn and did not run",
                request.as_deref().unwrap_or(&first),
                upstream.config.resource,
                hold_for.as_secs()
            ),
        ),
        Err(ended) => status::ended(&upstream.config.resource, &ended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_the_api_server_could_read_otherwise_are_refused() {
        assert_eq!(api_path("/k8s/prod", "prod").unwrap(), "/");
        assert_eq!(api_path("/k8s/prod/api/v1/pods", "prod").unwrap(), "/api/v1/pods");
        assert_eq!(api_path("/k8s/prod/api/v1/pods/", "prod").unwrap(), "/api/v1/pods/");
        for bad in [
            "/k8s/prod/api/v1/namespaces/a/pods/../secrets",
            "/k8s/prod/api/v1/./pods",
            "/k8s/prod/api/v1/namespaces/a%2Fb/pods",
            "/k8s/prod/api/v1/%2e%2e/pods",
            "/k8s/prod/api//v1/pods",
            "/k8s/prod/api/v1/pods\\x",
            "/k8s/prodx/api",
            "/k8s/pr%6fd/api",
        ] {
            assert!(api_path(bad, "prod").is_err(), "{bad}");
        }
    }
}
