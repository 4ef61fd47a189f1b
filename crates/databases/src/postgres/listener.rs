//! Accepting PostgreSQL clients: TLS when they ask for it (and required
//! off loopback), the startup message, a cleartext-password login whose
//! password is the caller's countersign credential, the gateway's own
//! login to the database, and cancel requests.
//!
//! Why a password and not SCRAM: countersign stores only a hash of each
//! key, from which no SCRAM verifier can be made, and workload and IdP
//! tokens are not passwords at all. The password is therefore sent as
//! is — over TLS, or on a loopback connection — and checked like any
//! bearer credential, so a revoked key stops working at once.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use countersign_core::Principal;
use countersign_gateway::refusals::{call_record, Source};
use countersign_gateway::AppState;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::config::PostgresConfig;
use super::wire::{self, Report};
use super::{session, upstream, Io, Stream};

/// The client settings passed on to the database at login. Others
/// (`options`, `search_path`, `standard_conforming_strings`, …) would
/// change what a statement means without a statement being decided.
///
/// `client_encoding` is not passed either: the database's session always
/// speaks UTF-8, as the proxy reads statements. In Shift-JIS, GBK or Big5 a
/// byte `\` can end a multi-byte character, so `E'ぁ\'; DELETE …'` would
/// be one string here and a `DELETE` there.
const PASSED_SETTINGS: [&str; 5] = ["application_name", "datestyle", "timezone", "intervalstyle", "extra_float_digits"];
/// The refusal code of a login past `max_sessions_per_principal`.
const TOO_MANY_SESSIONS: &str = "too_many_sessions";
/// How long a client has to log in.
const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Open sessions by the key their clients cancel with, and how many each
/// principal holds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sessions(Arc<Mutex<HashMap<CancelKey, Arc<Cancel>>>>, Arc<Mutex<HashMap<String, usize>>>);

/// One principal's place among the open sessions, given back when dropped.
pub(crate) struct Slot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    who: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.who) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.who);
            }
        }
    }
}

/// A process id and secret key, as a client cancels with them.
type CancelKey = (i32, i32);

/// How a cancel request reaches a session.
#[derive(Debug)]
pub(crate) struct Cancel {
    /// Wakes a statement waiting for approval.
    pub notify: Notify,
    /// The database's own key for the session's connection.
    pub upstream: (i32, i32),
}

impl Sessions {
    fn register(&self, cancel: Arc<Cancel>) -> (i32, i32) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let key = (rand::random::<i32>() & i32::MAX, rand::random::<i32>());
            if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(key) {
                slot.insert(cancel);
                return key;
            }
        }
    }

    fn remove(&self, key: (i32, i32)) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
    }

    fn find(&self, key: (i32, i32)) -> Option<Arc<Cancel>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned()
    }

    /// A place for one more of `who`'s sessions, unless they hold `max`.
    fn claim(&self, who: &str, max: usize) -> Option<Slot> {
        let mut open = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(who.to_owned()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot { open: self.1.clone(), who: who.to_owned() })
    }
}

/// Serves PostgreSQL clients on `listener` until `shutdown` completes.
pub async fn serve(
    state: AppState,
    config: Arc<PostgresConfig>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) {
    let sessions = Sessions::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let (state, config, sessions) = (state.clone(), config.clone(), sessions.clone());
                tokio::spawn(async move { connection(state, config, sessions, tcp, peer).await });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a PostgreSQL client");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// A client that was told why it is turned away.
struct Turned;

async fn connection(
    state: AppState,
    config: Arc<PostgresConfig>,
    sessions: Sessions,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let logged_in = tokio::time::timeout(LOGIN_TIMEOUT, log_in(&state, &config, &sessions, tcp, peer)).await;
    let Ok(Ok(login)) = logged_in else { return };
    let key = login.key;
    session::run(state, config, login).await;
    sessions.remove(key);
}

/// A client that has logged in, and its connection to the database.
pub(crate) struct Login {
    /// The id its audit events share.
    pub session: String,
    pub client: Stream,
    pub client_buf: BytesMut,
    pub principal: Principal,
    pub credential: String,
    pub upstream: upstream::Upstream,
    pub cancel: Arc<Cancel>,
    pub key: (i32, i32),
    pub peer: SocketAddr,
    /// Held for as long as the session is open.
    pub slot: Slot,
}

async fn log_in(
    state: &AppState,
    config: &PostgresConfig,
    sessions: &Sessions,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Result<Login, Turned> {
    let mut tcp = tcp;
    let mut buf = BytesMut::with_capacity(1024);
    let (mut client, message, tls): (Stream, Bytes, bool) = loop {
        let message = read_untagged(&mut tcp, &mut buf).await?;
        match wire::request_code(&message) {
            // Bytes sent after an SSL request, before the answer, would
            // be read as if they had come over TLS: refuse them.
            wire::SSL_REQUEST if buf.is_empty() => match &config.server_tls {
                Some(server) => {
                    tcp.write_all(b"S").await.map_err(|_| Turned)?;
                    let acceptor = tokio_rustls::TlsAcceptor::from(server.clone());
                    let mut client: Stream = Box::new(acceptor.accept(tcp).await.map_err(|_| Turned)?);
                    let message = read_untagged(&mut client, &mut buf).await?;
                    break (client, message, true);
                }
                None => tcp.write_all(b"N").await.map_err(|_| Turned)?,
            },
            wire::GSSENC_REQUEST if buf.is_empty() => tcp.write_all(b"N").await.map_err(|_| Turned)?,
            _ => break (Box::new(tcp), message, false),
        }
    };
    let startup = match wire::request_code(&message) {
        wire::CANCEL_REQUEST => {
            if let Some(key) = wire::decode_cancel(&message) {
                cancel(config, sessions, key).await;
            }
            return Err(Turned);
        }
        wire::SSL_REQUEST | wire::GSSENC_REQUEST => {
            Err(wire::WireError::Malformed('0', "an encryption request out of turn".to_owned()))
        }
        _ => wire::decode_startup(&message),
    };
    let startup = match startup {
        Ok(startup) => startup,
        Err(e) => return Err(fatal(&mut client, "08P01", &e.to_string()).await),
    };
    let unsupported: Vec<String> =
        startup.parameters.iter().filter(|(k, _)| k.starts_with("_pq_.")).map(|(k, _)| k.clone()).collect();
    if startup.minor > 0 || !unsupported.is_empty() {
        client.write_all(&wire::negotiate_protocol_version(&unsupported)).await.map_err(|_| Turned)?;
    }
    if !cleartext_allowed(tls, peer.ip()) {
        let message = "countersign takes credentials only over TLS from this address: connect with sslmode=require";
        return Err(fatal(&mut client, "28000", message).await);
    }
    let param = |name: &str| startup.parameters.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(user) = param("user").filter(|u| !u.is_empty()) else {
        return Err(fatal(&mut client, "28000", "no PostgreSQL user name specified in startup packet").await);
    };
    let database = param("database").filter(|d| !d.is_empty()).unwrap_or_else(|| user.clone());
    if database != config.database {
        let message = format!("database `{database}` is not served here; this endpoint serves `{}`", config.database);
        return Err(fatal(&mut client, "3D000", &message).await);
    }

    let source = Source::from_ip(peer.ip());
    if let Err(limited) = state.admit(source) {
        let message = format!("too many failed logins from this address; retry in {} s", limited.retry_after_secs);
        state
            .refuse(source, None, limited.code(), false, || {
                call_record(None, "postgres", &config.resource, Some(&user), limited.code(), &message)
            })
            .await;
        return Err(fatal(&mut client, "53300", &message).await);
    }
    client.write_all(&wire::authentication(3)).await.map_err(|_| Turned)?;
    let frame = read_tagged(&mut client, &mut buf).await?;
    let password = match wire::decode_password(&frame) {
        Ok(password) => password,
        Err(e) => return Err(fatal(&mut client, "08P01", &e.to_string()).await),
    };
    let principal = match state.authenticate(password.trim()).await {
        Ok(principal) if principal.name == user => principal,
        Ok(_) | Err(_) => {
            // PostgreSQL's own words, whichever part was wrong.
            let message = format!("password authentication failed for user \"{user}\"");
            state
                .refuse(source, None, "unauthenticated", true, || {
                    call_record(None, "postgres", &config.resource, Some(&user), "unauthenticated", &message)
                })
                .await;
            return Err(fatal(&mut client, "28P01", &message).await);
        }
    };

    let Some(slot) = sessions.claim(&principal.name, config.max_sessions_per_principal) else {
        let message = format!(
            "too many connections for `{user}`: {} sessions are open (`max_sessions_per_principal`)",
            config.max_sessions_per_principal
        );
        tracing::warn!(resource = %config.resource, principal = %principal.reference(), "{message}");
        let actor = principal.reference().to_string();
        state
            .refuse(source, Some(&actor), TOO_MANY_SESSIONS, false, || {
                call_record(Some(&actor), "postgres", &config.resource, Some(&user), TOO_MANY_SESSIONS, &message)
            })
            .await;
        return Err(fatal(&mut client, "53300", &message).await);
    };
    let mut settings: Vec<(String, String)> = startup
        .parameters
        .iter()
        .filter(|(k, _)| PASSED_SETTINGS.contains(&k.to_ascii_lowercase().as_str()))
        .filter(|(k, _)| !k.eq_ignore_ascii_case("application_name"))
        .cloned()
        .collect();
    // The database's own view (`pg_stat_activity`, its logs) names who is
    // behind each session; a client cannot pass itself off as another
    // principal or as the gateway's preview.
    settings.push(("application_name".to_owned(), application_name(&principal.name, param("application_name"))));
    let upstream = match upstream::connect(config, &settings).await {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::warn!(resource = %config.resource, error = %e, "cannot log in to the database");
            let message = format!("countersign cannot reach the database `{}`: {e}", config.resource);
            return Err(fatal(&mut client, "08006", &message).await);
        }
    };
    let cancel = Arc::new(Cancel { notify: Notify::new(), upstream: upstream.key });
    let key = sessions.register(cancel.clone());
    let mut hello = BytesMut::new();
    hello.extend_from_slice(&wire::authentication(0));
    for (name, value) in &upstream.parameters {
        wire::parameter_status(&mut hello, name, value);
    }
    wire::backend_key_data(&mut hello, key.0, key.1);
    wire::ready_for_query(&mut hello, b'I');
    if client.write_all(&hello).await.is_err() {
        sessions.remove(key);
        return Err(Turned);
    }
    let session = uuid::Uuid::now_v7().to_string();
    let opened = countersign_core::events::SessionOpened {
        session: session.clone(),
        resource: config.resource.clone(),
        protocol: "postgres".to_owned(),
        peer: peer.to_string(),
        tls,
    };
    let draft = countersign_audit::AuditDraft::new(
        principal.reference().to_string(),
        countersign_core::events::Event::DatabaseSessionOpened(opened),
    );
    if let Err(e) = state.audit(vec![draft]).await {
        // Unaudited, nothing runs.
        sessions.remove(key);
        tracing::warn!(error = %e, "cannot audit a database session");
        let message = "countersign cannot record this session, so it is not opened".to_owned();
        return Err(fatal(&mut client, "08006", &message).await);
    }
    tracing::info!(resource = %config.resource, principal = %principal.reference(), peer = %peer, "PostgreSQL session opened");
    Ok(Login {
        session,
        client,
        client_buf: buf,
        principal,
        credential: password.trim().to_owned(),
        upstream,
        cancel,
        key,
        peer,
        slot,
    })
}

/// `bot: psql` for principal `bot` whose client says `psql`, within
/// PostgreSQL's 63 bytes.
fn application_name(principal: &str, client: Option<String>) -> String {
    let mut name = match client.filter(|c| !c.is_empty()) {
        Some(client) => format!("{principal}: {client}"),
        None => principal.to_owned(),
    };
    while name.len() > 63 {
        name.pop();
    }
    name
}

/// Whether a client may send its credential on this connection: over
/// TLS, or in clear text from this machine only.
fn cleartext_allowed(tls: bool, peer: IpAddr) -> bool {
    tls || peer.is_loopback()
}

async fn cancel(config: &PostgresConfig, sessions: &Sessions, key: (i32, i32)) {
    let Some(found) = sessions.find(key) else { return };
    found.notify.notify_waiters();
    if let Err(e) = upstream::cancel(config, found.upstream).await {
        tracing::debug!(error = %e, "cannot pass a cancel request on to the database");
    }
}

/// Tells the client why it is turned away, then lets it go.
async fn fatal<S: Io>(client: &mut S, code: &str, message: &str) -> Turned {
    let report = Report { severity: "FATAL", code, message: message.to_owned(), detail: None, hint: None };
    let _ = client.write_all(&wire::error(&report)).await;
    let _ = client.shutdown().await;
    Turned
}

async fn read_untagged<S: Io>(client: &mut S, buf: &mut BytesMut) -> Result<Bytes, Turned> {
    loop {
        match wire::take_untagged(buf) {
            Ok(Some(message)) => return Ok(message),
            Ok(None) => {}
            Err(e) => return Err(fatal(client, "08P01", &e.to_string()).await),
        }
        if client.read_buf(buf).await.map_err(|_| Turned)? == 0 {
            return Err(Turned);
        }
    }
}

async fn read_tagged<S: Io>(client: &mut S, buf: &mut BytesMut) -> Result<Bytes, Turned> {
    loop {
        match wire::take_frame(buf, wire::MAX_STARTUP_BYTES) {
            Ok(Some(frame)) => return Ok(frame),
            Ok(None) => {}
            Err(e) => return Err(fatal(client, "08P01", &e.to_string()).await),
        }
        if client.read_buf(buf).await.map_err(|_| Turned)? == 0 {
            return Err(Turned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_application_name_names_the_principal_first() {
        assert_eq!(application_name("bot", Some("psql".into())), "bot: psql");
        assert_eq!(application_name("bot", None), "bot");
        let long = application_name("bot", Some("é".repeat(100)));
        assert!(long.len() <= 63 && long.starts_with("bot: é"), "{long}");
    }

    #[test]
    fn off_loopback_a_credential_needs_tls() {
        for peer in ["127.0.0.1", "127.8.9.10", "::1"] {
            let peer: IpAddr = peer.parse().unwrap();
            assert!(cleartext_allowed(false, peer), "{peer}");
            assert!(cleartext_allowed(true, peer), "{peer}");
        }
        for peer in ["192.0.2.2", "10.0.0.1", "0.0.0.0", "2001:db8::1", "fe80::1", "::"] {
            let peer: IpAddr = peer.parse().unwrap();
            assert!(!cleartext_allowed(false, peer), "{peer}");
            assert!(cleartext_allowed(true, peer), "{peer}");
        }
    }
}
