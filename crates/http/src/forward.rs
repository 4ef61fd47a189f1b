//! The gateway as the API's client: a request forwarded exactly as it was
//! decided, with the gateway's credential added, redirects never followed
//! (a redirect goes back to the agent, and the credential never follows it
//! to another host), and the answer streamed back — chunked and SSE
//! responses as they come — with hop-by-hop headers and cookies left out.
//! The outcome (status, size, SHA-256 of the body) is recorded when the
//! body ends; a stream whose caller's key stops being accepted is cut
//! ([`crate::cut`]).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use countersign_core::{Outcome, OutcomeStatus, Principal};
use countersign_gateway::gate::Outcomes;
use countersign_gateway::AppState;
use sha2::{Digest, Sha256};

use crate::config::{Credential, HttpConfig};
use crate::cut::Caller;
use crate::redact::{Masking, Secrets};
use crate::request::Incoming;

/// Response headers never passed back: hop-by-hop ones, and cookies the
/// API sets for the gateway's own credential.
const DROPPED_RESPONSE: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
];

/// One configured API, and how the gateway reaches it.
#[derive(Debug)]
pub struct Upstream {
    pub config: HttpConfig,
    client: reqwest::Client,
    /// The gateway's credential, marked sensitive so it never shows in logs.
    credential: Option<(HeaderName, HeaderValue)>,
    /// The credential's secret parts, never passed back ([`crate::redact`]).
    pub secrets: Secrets,
}

/// Why the API could not be asked; says nothing of its address or credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    #[error("the API `{0}` could not be reached")]
    Connect(String),
    #[error("the API `{0}` did not answer in time")]
    Timeout(String),
    #[error("the request cannot be sent to the API `{0}`")]
    Request(String),
}

impl Upstream {
    /// The client for `config`; an error when its CA file or credential
    /// cannot be used.
    pub fn new(config: HttpConfig) -> Result<Self, String> {
        let builder = crate::upstream::client_builder(config.ca_pem.as_deref())?;
        let (credential, secrets) = match &config.credential {
            Credential::None => (None, Secrets::default()),
            Credential::Bearer(token) => (
                Some((header::AUTHORIZATION, format!("Bearer {}", token.expose()))),
                Secrets::of(&[token.expose().as_bytes()]),
            ),
            Credential::Basic { user, password } => {
                use base64::Engine as _;
                let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
                let secrets = Secrets::of(&[password.expose().as_bytes(), pair.as_bytes()]);
                (Some((header::AUTHORIZATION, format!("Basic {pair}"))), secrets)
            }
            Credential::Header { name, value } => {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "the credential header".to_owned())?;
                (Some((name, value.expose().to_owned())), Secrets::of(&[value.expose().as_bytes()]))
            }
        };
        let credential = match credential {
            None => None,
            Some((name, text)) => {
                let mut value = HeaderValue::from_str(&text)
                    .map_err(|_| "the credential is not a valid header value".to_owned())?;
                value.set_sensitive(true);
                Some((name, value))
            }
        };
        let client = builder.build().map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Self { config, client, credential, secrets })
    }

    /// Sends `incoming` to the API.
    pub async fn send(&self, incoming: &Incoming) -> Result<reqwest::Response, Unreachable> {
        self.send_with(incoming, None).await
    }

    /// Sends `incoming` asking the API to switch to `protocol`
    /// (`websocket`); the switch is the caller's to check.
    pub async fn send_upgrade(
        &self,
        incoming: &Incoming,
        protocol: &'static str,
    ) -> Result<reqwest::Response, Unreachable> {
        self.send_with(incoming, Some(protocol)).await
    }

    async fn send_with(
        &self,
        incoming: &Incoming,
        upgrade: Option<&'static str>,
    ) -> Result<reqwest::Response, Unreachable> {
        let name = &self.config.name;
        let base = &self.config.base_url;
        let mut text = format!("{}{}", base.as_str().trim_end_matches('/'), incoming.path);
        if let Some(query) = &incoming.query {
            text.push('?');
            text.push_str(query);
        }
        let url = reqwest::Url::parse(&text).map_err(|_| Unreachable::Request(name.clone()))?;
        // The path cannot move the request to another host; checked all the same.
        if url.scheme() != base.scheme() || url.host_str() != base.host_str() || url.port() != base.port() {
            return Err(Unreachable::Request(name.clone()));
        }
        let mut request = self.client.request(incoming.method.clone(), url);
        let mut headers = HeaderMap::with_capacity(incoming.headers.len() + 1);
        for (header_name, value) in &incoming.headers {
            headers.append(header_name.clone(), value.clone());
        }
        if let Some(protocol) = upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            headers.insert(header::UPGRADE, HeaderValue::from_static(protocol));
        }
        if let Some((header_name, value)) = &self.credential {
            headers.insert(header_name.clone(), value.clone());
        }
        request = request.headers(headers).body(incoming.body.clone());
        request.send().await.map_err(|e| {
            if e.is_timeout() {
                Unreachable::Timeout(name.clone())
            } else if e.is_connect() {
                Unreachable::Connect(name.clone())
            } else {
                // Without the URL: the error's text is not passed on.
                tracing::debug!(api = %name, error = %e.without_url(), "the request to the API failed");
                Unreachable::Connect(name.clone())
            }
        })
    }
}

/// The API's response headers that pass back to the client: not
/// hop-by-hop ones, cookies, the gateway's own (`countersign-*`), nor any
/// that holds the gateway's credential.
fn passed_back(headers: &HeaderMap, secrets: &Secrets) -> HeaderMap {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.as_str();
        let dropped = DROPPED_RESPONSE.contains(&lower)
            || listed.iter().any(|l| l == lower)
            || lower.starts_with("countersign-")
            || secrets.found_in(value.as_bytes());
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Where the outcome of a forwarded request goes.
#[derive(Debug, Clone)]
pub struct Record {
    pub state: AppState,
    pub outcomes: Outcomes,
    pub principal: Principal,
    pub request: String,
}

impl Record {
    fn report(&self, status: u16, bytes: u64, digest: Option<String>, note: &str) {
        let outcome = Outcome {
            status: if status < 400 && note.is_empty() { OutcomeStatus::Succeeded } else { OutcomeStatus::Failed },
            exit_code: None,
            summary: Some(format!("HTTP {status}; {bytes} bytes{note}")),
            output_sha256: digest,
            reported_at: self.state.now(),
        };
        self.outcomes.report(&self.principal, self.request.clone(), outcome);
    }

    /// How an upgraded stream (a WebSocket, a Kubernetes exec) ended:
    /// `summary` says what went each way and why it stopped.
    pub fn stream_ended(&self, status: OutcomeStatus, summary: String) {
        let outcome = Outcome {
            status,
            exit_code: None,
            summary: Some(summary),
            output_sha256: None,
            reported_at: self.state.now(),
        };
        self.outcomes.report(&self.principal, self.request.clone(), outcome);
    }

    /// The request was decided but the API could not be asked.
    pub fn unreachable(&self, why: &Unreachable) {
        let outcome = Outcome {
            status: OutcomeStatus::Failed,
            exit_code: None,
            summary: Some(why.to_string()),
            output_sha256: None,
            reported_at: self.state.now(),
        };
        self.outcomes.report(&self.principal, self.request.clone(), outcome);
    }
}

/// A response body on its way back, hashed and counted as it goes.
struct Relay {
    upstream: reqwest::Response,
    status: u16,
    hasher: Sha256,
    bytes: u64,
    record: Option<Record>,
    /// The caller, whose credential is checked again while the body flows.
    caller: Caller,
    /// The gateway's credential, masked wherever the body holds it.
    masking: Masking,
    /// The API's body has ended (what was held back is passed on last).
    ended: bool,
}

impl Relay {
    fn finish(&mut self, note: &str) {
        if let Some(record) = self.record.take() {
            let digest = hex::encode(std::mem::take(&mut self.hasher).finalize());
            record.report(self.status, self.bytes, Some(digest), note);
        }
    }

    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.ended {
            return None;
        }
        tokio::select! {
            chunk = self.upstream.chunk() => match chunk {
                Ok(Some(bytes)) => {
                    self.hasher.update(&bytes);
                    self.bytes += bytes.len() as u64;
                    // A server that knows the length stops reading
                    // the body there, without asking for its end.
                    if self.upstream.content_length().is_some_and(|length| self.bytes >= length) {
                        self.finish("");
                    }
                    Some(Ok(self.masking.push(&bytes)))
                }
                Ok(None) => {
                    self.finish("");
                    self.ended = true;
                    let held = self.masking.finish();
                    (!held.is_empty()).then_some(Ok(held))
                }
                Err(_) => {
                    self.finish("; the API broke off the response");
                    Some(Err(std::io::Error::other("the API broke off the response")))
                }
            },
            cut = self.caller.no_longer_allowed(), if self.record.is_some() => {
                self.finish(&format!("; {}", cut.note()));
                Some(Err(std::io::Error::other("the stream was cut")))
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.finish("; the client went away before the end");
    }
}

/// The API's response, streamed back to the client; its outcome is
/// recorded when the body ends, breaks off or is cut.
pub fn stream_back(upstream: reqwest::Response, record: Record, bearer: String, secrets: &Secrets) -> Response {
    let status = upstream.status();
    let headers = passed_back(upstream.headers(), secrets);
    let request = HeaderValue::from_str(&record.request).ok();
    if upstream.content_length() == Some(0) {
        // Nothing to stream (a redirect, a 204): answered and recorded at once.
        record.report(status.as_u16(), 0, Some(hex::encode(Sha256::digest([]))), "");
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        if let Some(request) = request {
            response.headers_mut().insert(REQUEST_HEADER, request);
        }
        return response;
    }
    let caller = Caller::new(record.state.clone(), bearer, record.request.clone());
    let masking = Masking::new(secrets.clone());
    let relay = Relay {
        upstream,
        status: status.as_u16(),
        hasher: Sha256::new(),
        bytes: 0,
        record: Some(record),
        caller,
        masking,
        ended: false,
    };
    let stream = futures_util::stream::unfold(relay, |mut relay| async move {
        let item = relay.next().await?;
        Some((item, relay))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if let Some(request) = request {
        response.headers_mut().insert(REQUEST_HEADER, request);
    }
    response
}

/// The response header that names the request a response answers.
pub const REQUEST_HEADER: &str = "countersign-request";

/// A response read in full (for a client that will collect it later).
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Stored {
    pub fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

/// Reads the API's response in full, up to `limit` bytes; `Err` with
/// the status when it is larger (read no further than the chunk that
/// went over). The outcome is recorded either way.
pub async fn read_back(
    mut upstream: reqwest::Response,
    record: &Record,
    limit: usize,
    secrets: &Secrets,
) -> Result<Stored, StatusCode> {
    let status = upstream.status();
    let mut headers = passed_back(upstream.headers(), secrets);
    let mut hasher = Sha256::new();
    let mut body = Vec::new();
    let mut total: u64 = 0;
    let mut note = "";
    loop {
        match upstream.chunk().await {
            Ok(Some(chunk)) => {
                hasher.update(&chunk);
                total += chunk.len() as u64;
                if body.len() + chunk.len() <= limit {
                    body.extend_from_slice(&chunk);
                } else {
                    // Not read on: an endless stream (SSE) would hold this
                    // task, and the API's connection, for ever.
                    note = "; too large to keep for the client (read no further)";
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {
                note = "; the API broke off the response";
                break;
            }
        }
    }
    record.report(status.as_u16(), total, Some(hex::encode(hasher.finalize())), note);
    if !note.is_empty() {
        return Err(status);
    }
    headers.remove(header::CONTENT_LENGTH);
    secrets.mask(&mut body);
    Ok(Stored { status, headers, body: Bytes::from(body) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_cookies_do_not_pass_back() {
        let mut headers = HeaderMap::new();
        for (n, v) in [
            ("content-type", "text/event-stream"),
            ("connection", "x-private, keep-alive"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("set-cookie", "session=gateway"),
            ("etag", "\"1\""),
        ] {
            headers.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        let out = passed_back(&headers, &Secrets::default());
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "etag"]);
    }
}
