//! WebSocket upgrades through the proxy: the handshake checked before
//! anything is decided, the switch asked of the API once decided (held up
//! to the API's `hold` while people decide), the API's answer checked
//! before the client is switched, and the messages relayed both ways.
//!
//! - Only `Upgrade: websocket` on an HTTP/1.1 `GET` without a body, with
//!   `Connection: Upgrade`, `Sec-WebSocket-Version: 13` and a 16-byte
//!   `Sec-WebSocket-Key`; any other upgrade (`h2c`, several protocols, a
//!   body riding along) is refused before the decision.
//! - No extension is offered to the API (`Sec-WebSocket-Extensions` is
//!   not forwarded), so messages are never compressed and their sizes
//!   are what crosses the wire; an API that switches with one anyway is
//!   refused.
//! - The relay reads whole messages on each side (at most
//!   [`Limits::to_api`] from the client, [`Limits::from_api`] from the
//!   API; a larger one closes both with `1009`), passes pings on and
//!   answers them, and ends when either side closes, goes away, breaks
//!   the protocol, or the caller may no longer use it ([`crate::cut`]:
//!   the client is closed with `1008`). The outcome
//!   records the messages and bytes each way and how it ended.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use axum::response::Response;
use base64::Engine as _;
use countersign_core::{OutcomeStatus, Principal};
use countersign_gateway::gate::{self, Held, Interruption, Outcomes};
use countersign_gateway::AppState;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::cut::{Caller, Cut};
use crate::forward::{stream_back, Record, Upstream, REQUEST_HEADER};
use crate::redact::Secrets;
use crate::reply::{self, error};
use crate::request::Incoming;
use crate::withdraw::wait_held;

/// The request headers a WebSocket handshake forwards (besides the
/// allow-list): not `Sec-WebSocket-Extensions`.
pub const HANDSHAKE_HEADERS: [&str; 3] = ["sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol"];

/// The response headers of the API's switch passed back to the client.
const SWITCH_HEADERS: [&str; 2] = ["sec-websocket-accept", "sec-websocket-protocol"];

/// The largest message (and frame) the API may send the client.
pub const MAX_FROM_API: usize = 16 * 1024 * 1024;

/// How long the closing handshake may take on each side.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Why an upgrade is refused before it is decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadUpgrade {
    #[error("only `Upgrade: websocket` is proxied")]
    NotWebSocket,
    #[error("a WebSocket upgrade must be an HTTP/1.1 `GET` without a body")]
    NotABareGet,
    #[error(
        "a WebSocket upgrade needs `Connection: Upgrade`, one `Sec-WebSocket-Version: 13` and one `Sec-WebSocket-Key` of 16 bytes"
    )]
    BadHandshake,
}

fn tokens<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|t| !t.is_empty())
}

/// Whether the request asks to switch protocols: `Ok(true)` for a
/// well-formed WebSocket handshake, `Ok(false)` for no upgrade at all,
/// and why it is refused otherwise.
pub fn asked(method: &Method, version: Version, headers: &HeaderMap) -> Result<bool, BadUpgrade> {
    let protocols: Vec<String> = tokens(headers, &header::UPGRADE).collect();
    let connection_upgrade = tokens(headers, &header::CONNECTION).any(|t| t == "upgrade");
    let h2c = headers.contains_key("http2-settings");
    if protocols.is_empty() && headers.get(header::UPGRADE).is_none() && !connection_upgrade && !h2c {
        return Ok(false);
    }
    if h2c || protocols.len() != 1 || protocols.first().map(String::as_str) != Some("websocket") {
        return Err(BadUpgrade::NotWebSocket);
    }
    let length = headers.get_all(header::CONTENT_LENGTH).iter().any(|v| v.as_bytes() != b"0");
    let encoded = headers.contains_key(header::TRANSFER_ENCODING);
    if *method != Method::GET || version != Version::HTTP_11 || length || encoded {
        return Err(BadUpgrade::NotABareGet);
    }
    let one = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value.as_bytes()),
            (None | Some(_), _) => None,
        }
    };
    let version_13 = one("sec-websocket-version") == Some(b"13");
    let key_ok = one("sec-websocket-key")
        .and_then(|key| base64::engine::general_purpose::STANDARD.decode(key).ok())
        .is_some_and(|key| key.len() == 16);
    if !connection_upgrade || !version_13 || !key_ok {
        return Err(BadUpgrade::BadHandshake);
    }
    Ok(true)
}

/// The headers of the switch passed back to the client, or why the
/// API's `101` is not accepted (it must switch to `websocket`, with an
/// accept key, and no extension since none was offered).
pub fn switched(api: &HeaderMap) -> Result<HeaderMap, &'static str> {
    let upgrade: Vec<String> = tokens(api, &header::UPGRADE).collect();
    if upgrade != ["websocket"] || !api.contains_key("sec-websocket-accept") {
        return Err("the API switched protocols without a WebSocket handshake");
    }
    if api.contains_key("sec-websocket-extensions") {
        return Err("the API switched to a WebSocket extension that was not offered");
    }
    let mut out = HeaderMap::new();
    for name in SWITCH_HEADERS {
        for value in api.get_all(name) {
            out.append(name, value.clone());
        }
    }
    out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    Ok(out)
}

/// The largest message each way.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the client (the API's `max_body_bytes`).
    pub to_api: usize,
    pub from_api: usize,
}

/// Messages and bytes one way.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    messages: u64,
    bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Api,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::Client => "the client",
            Self::Api => "the API",
        }
    }
}

/// How a relayed WebSocket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// A close frame (its code, if any).
    Closed(Side, Option<u16>),
    /// The connection ended without a close frame.
    Gone(Side),
    TooLarge(Side),
    Broken(Side),
    Cut(Cut),
}

impl End {
    fn describe(&self, limits: Limits) -> (OutcomeStatus, String) {
        match self {
            Self::Closed(side, code) => {
                let code = code.map_or_else(|| "no code".to_owned(), |c| c.to_string());
                (OutcomeStatus::Succeeded, format!("closed by {} ({code})", side.name()))
            }
            Self::Gone(side) => (OutcomeStatus::Failed, format!("{} went away without closing", side.name())),
            Self::TooLarge(side) => {
                let limit = match side {
                    Side::Client => limits.to_api,
                    Side::Api => limits.from_api,
                };
                (OutcomeStatus::Failed, format!("a message from {} was over {limit} bytes (closed, 1009)", side.name()))
            }
            Self::Broken(side) => (OutcomeStatus::Failed, format!("{} broke the WebSocket protocol", side.name())),
            Self::Cut(cut) => (OutcomeStatus::Failed, cut.note()),
        }
    }

    /// The close frame each side is sent: (client, API).
    fn farewells(&self) -> (Option<CloseFrame>, Option<CloseFrame>) {
        let frame =
            |code: CloseCode, reason: &'static str| Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) });
        match self {
            // The side that closed is answered by the library; the other
            // is sent the same close.
            Self::Closed(..) => (None, None),
            Self::Gone(_) | Self::Broken(_) => {
                (frame(CloseCode::Away, "the other side went away"), frame(CloseCode::Away, "the other side went away"))
            }
            Self::TooLarge(_) => (frame(CloseCode::Size, "message too large"), frame(CloseCode::Away, "")),
            Self::Cut(Cut::Credential) => {
                (frame(CloseCode::Policy, "countersign: credential no longer accepted"), frame(CloseCode::Away, ""))
            }
            Self::Cut(Cut::Policy(_) | Cut::Unknown) => {
                (frame(CloseCode::Policy, "countersign: no longer allowed"), frame(CloseCode::Away, ""))
            }
        }
    }
}

fn failed(side: Side, error: &WsError) -> End {
    match error {
        WsError::Capacity(_) => End::TooLarge(side),
        WsError::Protocol(_) | WsError::Utf8(_) => End::Broken(side),
        _ => End::Gone(side),
    }
}

/// Where a switched WebSocket's decision and outcome go.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub state: AppState,
    pub outcomes: Outcomes,
}

/// A decided WebSocket upgrade, and the client's side of it.
pub struct Switch {
    pub incoming: Incoming,
    pub client: hyper::upgrade::OnUpgrade,
    /// The caller's bearer credential (rechecked while the WebSocket is open).
    pub token: String,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the caller's credential.
        f.debug_struct("Switch").field("incoming", &self.incoming).finish_non_exhaustive()
    }
}

/// Asks the API to switch to a WebSocket with the gateway's credential;
/// when it does, switches the client and relays the messages in the
/// background. An API that does not switch is answered as any request.
pub async fn switch(
    recorder: &Recorder,
    upstream: &Upstream,
    call: Switch,
    principal: Principal,
    id: String,
) -> Response {
    let record = Record { state: recorder.state.clone(), outcomes: recorder.outcomes.clone(), principal, request: id };
    let Switch { incoming, client, token } = call;
    let response = match upstream.send_upgrade(&incoming, "websocket").await {
        Ok(response) => response,
        Err(why) => {
            record.unreachable(&why);
            return error(StatusCode::BAD_GATEWAY, "bad_gateway", &why.to_string());
        }
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return stream_back(response, record, token, &upstream.secrets);
    }
    let headers = match switched(response.headers()) {
        Ok(headers) => headers,
        Err(why) => {
            record.stream_ended(countersign_core::OutcomeStatus::Failed, format!("HTTP 101: {why}"));
            return error(StatusCode::BAD_GATEWAY, "bad_gateway", why);
        }
    };
    let request = HeaderValue::from_str(&record.request).ok();
    let limits = Limits { to_api: upstream.config.max_body_bytes, from_api: MAX_FROM_API };
    let caller = Caller::new(recorder.state.clone(), token, record.request.clone());
    let secrets = upstream.secrets.clone();
    tokio::spawn(async move {
        match (client.await, response.upgrade().await) {
            (Ok(client), Ok(api)) => {
                relay(hyper_util::rt::TokioIo::new(client), api, caller, secrets, limits, record).await;
            }
            (Err(_), _) | (_, Err(_)) => record.stream_ended(
                countersign_core::OutcomeStatus::Failed,
                "WebSocket (HTTP 101): the connections could not be taken over".to_owned(),
            ),
        }
    });
    let mut switched = Response::new(Body::empty());
    *switched.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *switched.headers_mut() = headers;
    if let Some(request) = request {
        switched.headers_mut().insert(REQUEST_HEADER, request);
    }
    switched
}

/// Holds a WebSocket upgrade up to the API's `hold` while people decide,
/// then switches it once approved. It cannot be collected later, so a
/// hold that runs out withdraws it (`504`), as a client that leaves does.
pub async fn hold_switch(
    recorder: &Recorder,
    upstream: &Upstream,
    call: Switch,
    principal: Principal,
    held: Held,
) -> Response {
    let first = held.pending().next().map(|r| r.id.clone()).unwrap_or_default();
    let hold_for = upstream.config.hold;
    match wait_held(&recorder.state, &principal, held, hold_for).await {
        Ok(ids) => {
            let id = ids.into_iter().next().unwrap_or_default();
            switch(recorder, upstream, call, principal, id).await
        }
        Err(gate::Ended::Interrupted { interruption: Interruption::Cancelled, request }) => {
            let id = request.unwrap_or(first);
            let message = format!(
                "the WebSocket upgrade still waited for approval after {}s; it was withdrawn and did not run",
                hold_for.as_secs()
            );
            reply::json_response(
                StatusCode::GATEWAY_TIMEOUT,
                &json!({"error": {"code": "withdrawn", "message": message, "request": id}}),
            )
        }
        Err(ended) => {
            let (status, body) = reply::ended(&upstream.config.resource, &ended);
            reply::json_response(status, &body)
        }
    }
}

/// Relays messages between the switched client and API connections until
/// either ends, then records how it went under `record`; the gateway's
/// credential (`secrets`) is masked in messages from the API.
pub async fn relay<C, A>(client: C, api: A, caller: Caller, secrets: Secrets, limits: Limits, record: Record)
where
    C: AsyncRead + AsyncWrite + Unpin,
    A: AsyncRead + AsyncWrite + Unpin,
{
    let config = |limit: usize| WebSocketConfig::default().max_message_size(Some(limit)).max_frame_size(Some(limit));
    let mut client = WebSocketStream::from_raw_socket(client, Role::Server, Some(config(limits.to_api))).await;
    let mut api = WebSocketStream::from_raw_socket(api, Role::Client, Some(config(limits.from_api))).await;
    let (up, down, end) = pump(&mut client, &mut api, caller, &secrets).await;
    let (to_client, to_api) = end.farewells();
    tokio::join!(close(&mut client, to_client), close(&mut api, to_api));
    let (status, how) = end.describe(limits);
    let summary = format!(
        "WebSocket (HTTP 101): {} messages ({} bytes) to the API, {} messages ({} bytes) back; {how}",
        up.messages, up.bytes, down.messages, down.bytes
    );
    record.stream_ended(status, summary);
}

/// Ends one side: sends `farewell` (or completes a closing handshake the
/// peer began) and waits, a bounded time, for the peer's close.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, farewell: Option<CloseFrame>) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        let _ = ws.close(farewell).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Moves messages both ways; what went each way and how it ended.
async fn pump<C, A>(
    client: &mut WebSocketStream<C>,
    api: &mut WebSocketStream<A>,
    mut caller: Caller,
    secrets: &Secrets,
) -> (Tally, Tally, End)
where
    C: AsyncRead + AsyncWrite + Unpin,
    A: AsyncRead + AsyncWrite + Unpin,
{
    let (mut up, mut down) = (Tally::default(), Tally::default());
    loop {
        let ended = tokio::select! {
            message = client.next() => {
                caller.unless_cut(step(Side::Client, message, &mut up, api, &Secrets::default())).await.unwrap_or_else(|cut| Some(End::Cut(cut)))
            }
            message = api.next() => {
                caller.unless_cut(step(Side::Api, message, &mut down, client, secrets)).await.unwrap_or_else(|cut| Some(End::Cut(cut)))
            }
            cut = caller.no_longer_allowed() => Some(End::Cut(cut)),
        };
        if let Some(end) = ended {
            return (up, down, end);
        }
    }
}

/// Passes one message read `from` one side on `to` the other; how the
/// relay ends, if it does.
async fn step<T: AsyncRead + AsyncWrite + Unpin>(
    from: Side,
    message: Option<Result<Message, WsError>>,
    tally: &mut Tally,
    to: &mut WebSocketStream<T>,
    secrets: &Secrets,
) -> Option<End> {
    let other = match from {
        Side::Client => Side::Api,
        Side::Api => Side::Client,
    };
    let message = match message {
        Some(Ok(message)) => message,
        Some(Err(error)) => return Some(failed(from, &error)),
        None => return Some(End::Gone(from)),
    };
    match message {
        Message::Close(frame) => {
            let code = frame.as_ref().map(|f| u16::from(f.code));
            // The other side hears the same close; the library answers
            // the side that closed.
            let _ = to.send(Message::Close(frame)).await;
            Some(End::Closed(from, code))
        }
        // Pings are answered here; the other side's answers are its own.
        Message::Pong(_) | Message::Frame(_) => None,
        Message::Ping(data) => to.send(Message::Ping(data)).await.err().map(|_| End::Gone(other)),
        message @ (Message::Text(_) | Message::Binary(_)) => {
            tally.messages += 1;
            tally.bytes += message.len() as u64;
            to.send(masked(message, secrets)).await.err().map(|_| End::Gone(other))
        }
    }
}

/// `message` with every secret masked (a text stays text: the secrets'
/// bytes, when found in valid UTF-8, are whole characters).
fn masked(message: Message, secrets: &Secrets) -> Message {
    let found = |data: &[u8]| secrets.found_in(data);
    match message {
        Message::Text(text) if found(text.as_bytes()) => {
            let mut bytes = text.as_bytes().to_vec();
            secrets.mask(&mut bytes);
            match String::from_utf8(bytes) {
                Ok(text) => Message::Text(text.into()),
                Err(e) => Message::Binary(e.into_bytes().into()),
            }
        }
        Message::Binary(data) if found(&data) => {
            let mut bytes = data.to_vec();
            secrets.mask(&mut bytes);
            Message::Binary(bytes.into())
        }
        other @ (Message::Text(_)
        | Message::Binary(_)
        | Message::Ping(_)
        | Message::Pong(_)
        | Message::Close(_)
        | Message::Frame(_)) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    const KEY: (&str, &str) = ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    const V13: (&str, &str) = ("sec-websocket-version", "13");

    #[test]
    fn only_a_bare_websocket_handshake_is_an_upgrade() {
        let get = |pairs: &[(&str, &str)]| asked(&Method::GET, Version::HTTP_11, &headers(pairs));
        assert_eq!(get(&[("accept", "*/*")]), Ok(false));
        assert_eq!(get(&[("connection", "keep-alive, Upgrade"), ("upgrade", "WebSocket"), KEY, V13]), Ok(true));
        assert_eq!(
            get(&[("connection", "upgrade"), ("upgrade", "websocket"), KEY, V13, ("content-length", "0")]),
            Ok(true)
        );
        for other in ["h2c", "websocket, h2c", "websocket/13", "tls/1.2", ""] {
            assert_eq!(
                get(&[("connection", "upgrade"), ("upgrade", other), KEY, V13]),
                Err(BadUpgrade::NotWebSocket),
                "{other}"
            );
        }
        assert_eq!(get(&[("connection", "upgrade")]), Err(BadUpgrade::NotWebSocket));
        assert_eq!(get(&[("http2-settings", "AAA")]), Err(BadUpgrade::NotWebSocket));
        let ws = [("connection", "upgrade"), ("upgrade", "websocket"), KEY, V13];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = ws.to_vec();
            pairs.push(extra);
            get(&pairs)
        };
        assert_eq!(with(("content-length", "5")), Err(BadUpgrade::NotABareGet));
        assert_eq!(with(("transfer-encoding", "chunked")), Err(BadUpgrade::NotABareGet));
        assert_eq!(with(("sec-websocket-version", "8")), Err(BadUpgrade::BadHandshake));
        assert_eq!(with(("sec-websocket-key", "c2hvcnQ=")), Err(BadUpgrade::BadHandshake));
        assert_eq!(asked(&Method::POST, Version::HTTP_11, &headers(&ws)), Err(BadUpgrade::NotABareGet));
        assert_eq!(asked(&Method::GET, Version::HTTP_10, &headers(&ws)), Err(BadUpgrade::NotABareGet));
        assert_eq!(get(&[("connection", "close"), ("upgrade", "websocket"), KEY, V13]), Err(BadUpgrade::BadHandshake));
        assert_eq!(get(&[("connection", "upgrade"), ("upgrade", "websocket"), V13]), Err(BadUpgrade::BadHandshake));
        assert_eq!(get(&[("connection", "upgrade"), ("upgrade", "websocket"), KEY]), Err(BadUpgrade::BadHandshake));
    }

    #[test]
    fn the_apis_switch_must_be_a_websocket_without_extensions() {
        let ok = headers(&[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            ("sec-websocket-protocol", "echo.v1"),
            ("set-cookie", "session=gateway"),
        ]);
        let passed = switched(&ok).unwrap();
        let names: Vec<&str> = passed.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["sec-websocket-accept", "sec-websocket-protocol", "upgrade", "connection"]);
        let mut extended = ok.clone();
        extended.insert("sec-websocket-extensions", HeaderValue::from_static("permessage-deflate"));
        assert!(switched(&extended).is_err());
        assert!(switched(&headers(&[("upgrade", "h2c"), ("sec-websocket-accept", "x")])).is_err());
        assert!(switched(&headers(&[("upgrade", "websocket")])).is_err());
    }
}
