//! One client's session: every statement it sends is decided before the
//! database sees it.
//!
//! - A simple query's statements are decided together (all run or none
//!   does); the query is then forwarded as it came.
//! - In the extended protocol, `Parse`, `Bind`, `Describe` and `Close`
//!   pass (they run nothing); an `Execute` is decided with the text of
//!   its prepared statement and its bound parameters, as the database
//!   confirmed them (see [`super::relay`]).
//! - A refused statement is replaced by one the database fails, so that
//!   a transaction block is aborted exactly as after any error, and the
//!   client gets the refusal (SQLSTATE `42501`) in place of that error.
//! - A held statement is announced with a `NoticeResponse` and waits;
//!   the client's cancel request withdraws it.
//!
//! Before each decision the client's credential is checked again, so a
//! revoked key ends the session at its next statement.
//!
//! Some statements are refused before any policy sees them, because what
//! would run is not what was decided (SQL `EXECUTE`, `FETCH` of a portal
//! bound through the protocol), because they change how the database
//! reads later text (`SET client_encoding`), or because they read
//! credentials (`pg_authid`): see `refused_outright`.

use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use countersign_core::Principal;
use countersign_gateway::refusals::{call_record, Source};
use countersign_gateway::AppState;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use sqlparser::tokenizer::Token;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};

use super::config::PostgresConfig;
use super::listener::{Cancel, Login};
use super::relay::{self, Portal, Shared, Tracked, Tracker, Unit};
use super::wire::{self, ClientMessage, Report};
use super::{preview, split, Stream};
use crate::gate::{self, Interruption, Statement, Submitted, Target, Verdict};

/// The most prepared statements and portals one session may hold.
const MAX_PREPARED: usize = 10_000;
/// The most statements one simple query may hold.
const MAX_STATEMENTS: usize = 1_000;
/// The refusal code of a statement refused before any policy saw it.
const UNREAD: &str = "statement_refused_unread";
/// Text parameters up to this size are shown whole; larger ones by digest.
const SHOWN_TEXT: usize = 4096;
/// Binary parameters up to this size are shown in hex.
const SHOWN_BINARY: usize = 256;

/// Runs a logged-in session until the client or the database leaves.
pub(crate) async fn run(state: AppState, config: Arc<PostgresConfig>, login: Login) {
    let Login {
        session: session_id,
        client,
        client_buf,
        principal,
        credential,
        upstream,
        cancel,
        key: _,
        peer,
        slot: _slot,
    } = login;
    let (client_r, client_w) = tokio::io::split(client);
    let (upstream_r, upstream_w) = tokio::io::split(upstream.stream);
    let outcome_state = state.clone();
    let outcomes = gate::Outcomes::new(&state, &principal);
    let shared = Arc::new(Shared {
        tracker: std::sync::Mutex::new(Tracker::default()),
        progress: tokio::sync::Notify::new(),
        client: tokio::sync::Mutex::new(client_w),
        status: AtomicU8::new(b'I'),
        outcomes: Box::new(move |id, succeeded, summary| {
            outcomes.report(&outcome_state, id, succeeded, summary);
        }),
    });
    let relay_shared = shared.clone();
    let leftover = upstream.leftover;
    let mut relay = tokio::spawn(async move { relay::run(&relay_shared, upstream_r, leftover).await });
    let target = Target { resource: config.resource.clone(), database: config.database.clone(), dialect: "postgres" };
    let mut session = Session {
        state,
        config,
        target,
        principal,
        credential,
        shared: shared.clone(),
        cancel,
        client: client_r,
        buf: client_buf,
        upstream: upstream_w,
        out: BytesMut::new(),
        previewer: preview::Previewer::default(),
        forwarded: 0,
        peer,
    };
    let ended = tokio::select! {
        ended = session.serve() => ended,
        relay_ended = &mut relay => Err(match relay_ended {
            Ok(relay::Ended::Upstream(why)) => End::Upstream(why),
            Ok(relay::Ended::Unreadable(why)) => End::Fatal {
                code: "08P01",
                message: format!("countersign closed the session: {why}, which it cannot read statements by"),
            },
            Ok(relay::Ended::Client) | Err(_) => End::Quietly,
        }),
    };
    relay.abort();
    let ended_by = match &ended {
        Ok(()) | Err(End::Quietly) => "client",
        Err(End::Fatal { code: "28000", .. }) => "credential",
        Err(End::Fatal { .. }) => "protocol",
        Err(End::Upstream(_)) => "database",
    };
    let closed = countersign_core::events::SessionClosed {
        session: session_id,
        resource: session.target.resource.clone(),
        ended_by: ended_by.to_owned(),
        statements: session.forwarded,
    };
    let draft = countersign_audit::AuditDraft::new(
        session.principal.reference().to_string(),
        countersign_core::events::Event::DatabaseSessionClosed(closed),
    );
    if let Err(e) = session.state.audit(vec![draft]).await {
        tracing::warn!(error = %e, "cannot audit the end of a database session");
    }
    match ended {
        Ok(()) | Err(End::Quietly) => {}
        Err(End::Fatal { code, message }) => session.fatal(code, &message).await,
        Err(End::Upstream(why)) => {
            tracing::warn!(resource = %session.target.resource, error = %why, "lost the database connection");
            let message = format!("countersign lost its connection to the database `{}`", session.target.resource);
            session.fatal("08006", &message).await;
        }
    }
    let _ = session.upstream.write_all(b"X\0\0\0\x04").await;
    let _ = session.upstream.shutdown().await;
    tracing::info!(resource = %session.target.resource, principal = %session.principal.reference(), peer = %peer, "PostgreSQL session closed");
}

/// Why a session ends early.
enum End {
    /// Tell the client, then close.
    Fatal {
        code: &'static str,
        message: String,
    },
    Upstream(String),
    Quietly,
}

struct Session {
    state: AppState,
    config: Arc<PostgresConfig>,
    target: Target,
    principal: Principal,
    credential: String,
    shared: Arc<Shared>,
    cancel: Arc<Cancel>,
    client: ReadHalf<Stream>,
    buf: BytesMut,
    upstream: WriteHalf<Stream>,
    /// Messages for the database not yet written.
    out: BytesMut,
    previewer: preview::Previewer,
    /// Statements decided and forwarded.
    forwarded: u64,
    peer: std::net::SocketAddr,
}

impl Session {
    async fn serve(&mut self) -> Result<(), End> {
        loop {
            while let Some(frame) = self.next_frame()? {
                if !self.handle(frame).await? {
                    return Ok(());
                }
            }
            self.flush().await?;
            match self.client.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            }
        }
    }

    fn next_frame(&mut self) -> Result<Option<Bytes>, End> {
        wire::take_frame(&mut self.buf, self.config.max_message_bytes)
            .map_err(|e| End::Fatal { code: "08P01", message: e.to_string() })
    }

    /// Handles one client message; `false` when the client said goodbye.
    async fn handle(&mut self, frame: Bytes) -> Result<bool, End> {
        let message = wire::decode_client(&frame).map_err(|e| End::Fatal { code: "08P01", message: e.to_string() })?;
        match message {
            ClientMessage::Query(text) => self.query(frame, &text).await?,
            ClientMessage::Parse { name, query } => {
                self.check_room(|t| t.statements.len() + t.units.len())?;
                self.forward(Some(Unit::Parse { name, text: query }), &frame);
            }
            ClientMessage::Bind { portal, statement, formats, parameters } => {
                self.check_room(|t| t.portals.len() + t.units.len())?;
                let parameters = render(&formats, &parameters);
                self.forward(Some(Unit::Bind { portal, statement, parameters }), &frame);
            }
            ClientMessage::Describe => self.forward(Some(Unit::Describe), &frame),
            ClientMessage::Close { portal, name } => self.forward(Some(Unit::Close { portal, name }), &frame),
            ClientMessage::Execute { portal } => self.execute(frame, portal).await?,
            ClientMessage::Sync => self.forward(Some(Unit::Sync), &frame),
            ClientMessage::Flush | ClientMessage::Copy => self.forward(None, &frame),
            ClientMessage::Terminate => return Ok(false),
        }
        Ok(true)
    }

    fn check_room(&self, used: impl Fn(&Tracker) -> usize) -> Result<(), End> {
        if used(&self.shared.tracker()) >= MAX_PREPARED {
            return Err(End::Fatal {
                code: "54000",
                message: format!("more than {MAX_PREPARED} prepared statements or portals in one session"),
            });
        }
        Ok(())
    }

    /// Queues `frame` for the database, after what its reply will confirm.
    fn forward(&mut self, unit: Option<Unit>, frame: &[u8]) {
        if let Some(unit) = unit {
            self.shared.tracker().units.push_back(unit);
        }
        self.out.extend_from_slice(frame);
    }

    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.upstream.write_all(&self.out).await;
        self.out.clear();
        written.map_err(|e| End::Upstream(e.to_string()))?;
        self.upstream.flush().await.map_err(|e| End::Upstream(e.to_string()))
    }

    async fn query(&mut self, frame: Bytes, text: &str) -> Result<(), End> {
        let pieces = split::readable_statements(text);
        if pieces.as_ref().is_some_and(Vec::is_empty) {
            // Nothing to run: the database answers an empty query itself.
            let unit = Unit::Query { tracked: Vec::new(), done: 0, forgets: false };
            self.forward(Some(unit), &wire::query(""));
            return Ok(());
        }
        // Decided once what was sent before has been answered: a setting
        // that changes how the database reads text (see `relay`) is seen
        // before the next text is read here.
        self.settled().await?;
        let outright = match &pieces {
            // An unterminated string or comment, which the database rejects
            // whole too, or a text PostgreSQL's versions split differently
            // (`1e$a$` is a number and a name in 14, an error in 15).
            None => Some("countersign: this text cannot be read as every PostgreSQL version reads it (an unterminated string, comment or dollar quote, or a number run into a name); nothing of it ran".to_owned()),
            // Each is a request of its own: a query of a million `SELECT 1;`
            // would be a million decisions.
            Some(pieces) if pieces.len() > MAX_STATEMENTS => {
                Some(format!("countersign: more than {MAX_STATEMENTS} statements in one query; send them in several"))
            }
            Some(_) => None,
        };
        let pieces = pieces.unwrap_or_default();
        // Each piece is tokenised once, for both what is refused outright
        // and whether it forgets prepared statements.
        let (outright, forgets) = match outright {
            Some(message) => (Some(message), false),
            None => {
                let tracker = self.shared.tracker();
                let mut forgets = false;
                let refused = pieces.iter().find_map(|p| {
                    let screened = screen(p, &tracker);
                    forgets |= screened.forgets;
                    screened.refused
                });
                (refused, forgets)
            }
        };
        if let Some(message) = outright {
            self.record_unread(text, &message).await;
            let nonce = nonce();
            let error = relay::refusal_error("42501", message, None, None);
            self.forward(
                Some(Unit::Refused { nonce: nonce.clone(), error, simple: true }),
                &wire::query(&format!("SELECT {nonce}()")),
            );
            return Ok(());
        }
        let statements: Vec<Statement> =
            pieces.iter().map(|p| Statement { text: (*p).to_owned(), parameters: None, preview: None }).collect();
        match self.decide(statements).await? {
            Verdict::Run(ids) => {
                let started = Instant::now();
                self.forwarded += ids.len() as u64;
                let tracked = ids.into_iter().map(|request| Tracked { request, started }).collect();
                self.forward(Some(Unit::Query { tracked, done: 0, forgets }), &frame);
            }
            Verdict::Refuse(refusal) => {
                let nonce = nonce();
                let error = refusal_error(&refusal);
                self.forward(
                    Some(Unit::Refused { nonce: nonce.clone(), error, simple: true }),
                    &wire::query(&format!("SELECT {nonce}()")),
                );
            }
        }
        Ok(())
    }

    async fn execute(&mut self, frame: Bytes, portal: String) -> Result<(), End> {
        // Decide on what the database has confirmed, not on what was sent.
        let Some(found) = self.confirmed_portal(&portal).await? else {
            // The batch already failed: the database skips this Execute,
            // so nothing is sent at all.
            return Ok(());
        };
        match found {
            Portal { released: true, .. } => self.forward(Some(Unit::Execute { tracked: None }), &frame),
            Portal { text: None, .. } => {
                let error = relay::refusal_error(
                    "42501",
                    format!(
                        "countersign: portal `{portal}` runs a statement it did not see prepared (SQL `PREPARE`, or forgotten after `DEALLOCATE`/`DISCARD`); prepare it with the protocol's Parse"
                    ),
                    None,
                    None,
                );
                self.refuse_execute(error);
            }
            Portal { text: Some(text), parameters, released: false } => {
                let Screened { refused, forgets } = screen(&text, &self.shared.tracker());
                if let Some(message) = refused {
                    self.record_unread(&text, &message).await;
                    self.refuse_execute(relay::refusal_error("42501", message, None, None));
                    return Ok(());
                }
                let statement = Statement { text, parameters: Some(parameters), preview: None };
                match self.decide(vec![statement]).await? {
                    Verdict::Run(ids) => {
                        if let Some(p) = self.shared.tracker().portals.get_mut(&portal) {
                            p.released = true;
                        }
                        let tracked =
                            ids.into_iter().next().map(|request| Tracked { request, started: Instant::now() });
                        self.forward(Some(Unit::Execute { tracked }), &frame);
                        if forgets {
                            relay::forget_all(&mut self.shared.tracker());
                        }
                    }
                    Verdict::Refuse(refusal) => self.refuse_execute(refusal_error(&refusal)),
                }
            }
        }
        Ok(())
    }

    /// Records a statement refused before any policy saw it, as the
    /// gateway records every refusal (counted per source and principal).
    async fn record_unread(&mut self, text: &str, message: &str) {
        tracing::warn!(resource = %self.target.resource, principal = %self.principal.reference(), %message, "statement refused unread");
        let actor = self.principal.reference().to_string();
        let excerpt: String = text.chars().take(SHOWN_TEXT).collect();
        let source = Source::from_ip(self.peer.ip());
        let (state, resource) = (self.state.clone(), self.target.resource.clone());
        state
            .refuse(source, Some(&actor), UNREAD, false, || {
                call_record(Some(&actor), "postgres", &resource, Some(&excerpt), UNREAD, message)
            })
            .await;
    }

    fn refuse_execute(&mut self, error: Bytes) {
        let nonce = nonce();
        self.forward(Some(Unit::Refused { nonce: nonce.clone(), error, simple: false }), &wire::execute(&nonce));
    }

    /// The portal as the database has it, once every reply to what was
    /// sent before has come back. `None` when the batch has failed.
    async fn confirmed_portal(&mut self, name: &str) -> Result<Option<Portal>, End> {
        if !self.settled().await? {
            return Ok(None);
        }
        let tracker = self.shared.tracker();
        Ok(Some(tracker.portals.get(name).cloned().unwrap_or(Portal {
            text: None,
            parameters: Vec::new(),
            released: false,
        })))
    }

    /// Waits until every reply to what was sent before has come back;
    /// `false` when the batch has failed (the database skips what follows
    /// until a Sync).
    async fn settled(&mut self) -> Result<bool, End> {
        if !self.shared.tracker().units.is_empty() {
            // The database holds its replies until a Sync or a Flush.
            self.out.extend_from_slice(b"H\0\0\0\x04");
        }
        self.flush().await?;
        loop {
            let progress = self.shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let tracker = self.shared.tracker();
                if tracker.skipping && !tracker.units.iter().any(|u| matches!(u, Unit::Sync)) {
                    return Ok(false);
                }
                if tracker.units.is_empty() {
                    return Ok(true);
                }
            }
            tokio::select! {
                () = progress => {}
                gone = watch_client(&mut self.client, &mut self.buf, self.config.max_message_bytes) => {
                    let Interruption::Gone = gone else { continue };
                    return Err(End::Quietly);
                }
            }
        }
    }

    /// Checks the credential again, then decides.
    async fn decide(&mut self, mut statements: Vec<Statement>) -> Result<Verdict, End> {
        if self.config.preview {
            for statement in &mut statements {
                if statement.parameters.as_ref().is_none_or(Vec::is_empty)
                    && preview::wanted(&statement.text, side_effect_free)
                {
                    statement.preview =
                        self.previewer.explain(&self.config, &statement.text).await.map(|p| p.to_json());
                }
            }
        }
        match self.state.authenticate(&self.credential).await {
            Ok(principal) if principal.name == self.principal.name => self.principal = principal,
            Ok(_) | Err(_) => {
                return Err(End::Fatal {
                    code: "28000",
                    message: "your countersign credential is no longer accepted (revoked or expired)".to_owned(),
                })
            }
        }
        self.flush().await?;
        let held = match gate::submit(&self.state, &self.principal, &self.target, statements).await {
            Submitted::Decided(verdict) => return Ok(verdict),
            Submitted::Held(held) => held,
        };
        let mut notices = BytesMut::new();
        for hold in &held.holds {
            notices.extend_from_slice(&wire::notice(&Report {
                severity: "NOTICE",
                code: "01000",
                message: hold.message.clone(),
                detail: Some(hold.detail.clone()),
                hint: Some(hold.hint.clone()),
            }));
        }
        {
            let mut client = self.shared.client.lock().await;
            if client.write_all(&notices).await.is_err() || client.flush().await.is_err() {
                return Err(End::Quietly);
            }
        }
        let max = self.config.max_message_bytes;
        let interrupted = interruption(&self.cancel, &mut self.client, &mut self.buf, max);
        Ok(gate::wait(&self.state, &self.principal, &self.target, held, interrupted).await)
    }

    async fn fatal(&mut self, code: &str, message: &str) {
        let report = Report { severity: "FATAL", code, message: message.to_owned(), detail: None, hint: None };
        let mut client = self.shared.client.lock().await;
        let _ = client.write_all(&wire::error(&report)).await;
        let _ = client.shutdown().await;
    }
}

/// Completes when the client cancels or goes away.
async fn interruption(cancel: &Cancel, client: &mut ReadHalf<Stream>, buf: &mut BytesMut, max: usize) -> Interruption {
    tokio::select! {
        () = cancel.notify.notified() => Interruption::Cancelled,
        gone = watch_client(client, buf, max) => gone,
    }
}

/// Reads ahead (the client may pipeline) until the client goes away.
async fn watch_client(client: &mut ReadHalf<Stream>, buf: &mut BytesMut, max: usize) -> Interruption {
    loop {
        if buf.len() > max.saturating_mul(2) {
            // Enough read ahead: stop reading until the statement is decided.
            return std::future::pending().await;
        }
        match client.read_buf(buf).await {
            Ok(0) | Err(_) => return Interruption::Gone,
            Ok(_) => {}
        }
    }
}

fn refusal_error(refusal: &gate::Refusal) -> Bytes {
    relay::refusal_error(refusal.sqlstate, refusal.message.clone(), refusal.detail.clone(), None)
}

/// Whether planning `text` can run nothing with effects: every function
/// it calls is known to be free of them, and it calls no procedure or
/// program.
fn side_effect_free(text: &str) -> bool {
    let facts = countersign_facts::derive_bound("sql.execute", &json!({ "statement": text }), Some("postgres"));
    facts
        .sql
        .is_some_and(|s| !s.parse_error && !s.runs_program && !s.calls_procedure && s.side_effect_functions.is_empty())
}

/// A name no client can guess, for the message that stands in for a refusal.
fn nonce() -> String {
    format!("countersign_refused_{:032x}", rand::random::<u128>())
}

/// Settings that change how the database reads the text of later
/// statements (where strings end, what bytes mean): the proxy reads text
/// as UTF-8 with `standard_conforming_strings` on, and keeps it so.
const READING_SETTINGS: [&str; 2] = ["client_encoding", "standard_conforming_strings"];

/// Catalogs and settings that hold passwords or their hashes: the
/// gateway's role (`pg_authid.rolpassword`, an md5 hash logs in as it),
/// foreign servers' (`pg_user_mapping.umoptions`), a standby's
/// (`primary_conninfo`), a subscription's (`pg_subscription.subconninfo`).
/// Reading them is a read, but not a routine one.
const CREDENTIAL_CATALOGS: [&str; 5] =
    ["pg_authid", "pg_shadow", "pg_user_mapping", "primary_conninfo", "pg_subscription"];

/// What the session must know of a statement before it is decided, from
/// one tokenisation of it.
struct Screened {
    /// Why it is refused before any policy sees it (see [`refused_outright`]).
    refused: Option<String>,
    /// Whether it changes prepared statements behind the protocol (see
    /// [`forgets_prepared`]).
    forgets: bool,
}

fn screen(text: &str, tracker: &Tracker) -> Screened {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, text).tokenize().ok();
    Screened {
        refused: refused_outright(text, tokens.as_deref(), tracker),
        forgets: tokens.as_deref().is_none_or(forgets_prepared_in),
    }
}

/// Why a statement is refused before any policy sees it, if it is:
/// - it names a catalog holding credentials (see [`CREDENTIAL_CATALOGS`]),
///   or spells a name with Unicode escapes, which could hide one;
/// - it changes how later statements are read (`SET client_encoding`,
///   `SET NAMES`, `set_config('standard_conforming_strings', …)`), which
///   would let the next text mean one thing here and another there;
/// - it runs a statement prepared with SQL `PREPARE` (`EXECUTE`, also in
///   `EXPLAIN ANALYZE EXECUTE` and `CREATE TABLE … AS EXECUTE`), whose
///   text the approver would not see, or prepares one;
/// - it fetches from a portal bound through the protocol (`FETCH`/`MOVE`),
///   which runs that portal's statement, never decided.
///
/// `tokens` are `sqlparser`'s tokens of `text` (PostgreSQL dialect), `None`
/// when it cannot tokenise it.
fn refused_outright(text: &str, tokens: Option<&[Token]>, tracker: &Tracker) -> Option<String> {
    let lower = text.to_lowercase();
    if lower.contains("u&\"") {
        return Some(
            "countersign: names with Unicode escapes (`U&\"…\"`) are refused: they could spell a name countersign checks for".to_owned(),
        );
    }
    if let Some(catalog) = CREDENTIAL_CATALOGS.iter().find(|c| lower.contains(*c)) {
        return Some(format!(
            "countersign: a statement naming `{catalog}` is refused: it holds credentials (the gateway's own among them), which agents never get"
        ));
    }
    let shows = lower.trim_start().starts_with("show");
    if let Some(setting) = READING_SETTINGS.iter().find(|s| lower.contains(*s)).filter(|_| !shows) {
        return Some(format!(
            "countersign: a statement naming `{setting}` is refused: it would change how the database reads later statements, and what is decided must be what runs"
        ));
    }
    let tokens = tokens?;
    let words: Vec<(String, bool)> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => Some((w.value.to_lowercase(), false)),
            Token::Word(w) => Some((w.value.clone(), true)),
            _ => None,
        })
        .collect();
    let plain = |i: usize| words.get(i).filter(|(_, quoted)| !quoted).map(|(w, _)| w.as_str());
    let leading: Vec<&str> = (0..3).filter_map(plain).collect();
    if matches!(leading.first(), Some(&("set" | "reset"))) && leading.contains(&"names") {
        return Some(
            "countersign: `SET NAMES` is refused: it would change how the database reads later statements".to_owned(),
        );
    }
    let first = plain(0);
    let executes = matches!(first, Some("prepare" | "execute"))
        || (first == Some("explain") && words.iter().any(|(w, q)| !q && w == "execute"))
        || words.windows(2).any(|w| !w[0].1 && !w[1].1 && w[0].0 == "as" && w[1].0 == "execute");
    if executes {
        return Some(
            "countersign: SQL `PREPARE` and `EXECUTE` are refused: the statement that would run is not the one decided; use the protocol's prepared statements (Parse, Bind, Execute)"
                .to_owned(),
        );
    }
    if matches!(first, Some("fetch" | "move")) {
        // Whatever name the statement spells (`U&"\0070"` is `p`): while
        // any named portal bound through the protocol may exist, a SQL
        // fetch could run it.
        let bound = tracker.portals.keys().find(|name| !name.is_empty()).cloned().or_else(|| {
            tracker.units.iter().find_map(|u| match u {
                Unit::Bind { portal, .. } if !portal.is_empty() => Some(portal.clone()),
                _ => None,
            })
        });
        if let Some(name) = bound {
            return Some(format!(
                "countersign: `{}` is refused while portal `{name}` is bound: SQL `FETCH` and `MOVE` would run a portal's statement, which was bound but never decided; run it with the protocol's Execute",
                first.unwrap_or_default().to_uppercase()
            ));
        }
    }
    None
}

/// Whether a statement changes prepared statements behind the protocol:
/// `DEALLOCATE` and `DISCARD`, and `DO` and `CALL`, whose code can run
/// `DEALLOCATE s1` and `PREPARE s1 AS …` by computed SQL, so that `s1`
/// would run another text than the one the proxy knows.
#[cfg(test)]
fn forgets_prepared(text: &str) -> bool {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;
    Tokenizer::new(&PostgreSqlDialect {}, text).tokenize().ok().as_deref().is_none_or(forgets_prepared_in)
}

/// [`forgets_prepared`] of a statement's tokens.
fn forgets_prepared_in(tokens: &[Token]) -> bool {
    let first = tokens.iter().find(|t| !matches!(t, Token::Whitespace(_)));
    match first {
        Some(Token::Word(w)) => {
            let word = w.value.to_ascii_lowercase();
            matches!(word.as_str(), "deallocate" | "discard" | "do" | "call")
        }
        _ => false,
    }
}

/// Bound parameters as the approver sees them: text as text when short,
/// anything else by size and SHA-256 (binary values in hex when short).
fn render(formats: &[i16], parameters: &[Option<Bytes>]) -> Vec<Value> {
    parameters
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let binary = match formats {
                [] => false,
                [one] => *one == 1,
                many => many.get(i).is_some_and(|f| *f == 1),
            };
            let Some(bytes) = value else { return Value::Null };
            match std::str::from_utf8(bytes) {
                Ok(text) if !binary && text.len() <= SHOWN_TEXT => json!(text),
                _ if binary && bytes.len() <= SHOWN_BINARY => json!({"binary": hex::encode(bytes)}),
                _ => json!({
                    "format": if binary { "binary" } else { "text" },
                    "bytes": bytes.len(),
                    "sha256": hex::encode(Sha256::digest(bytes)),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_shown_or_bound_by_digest() {
        let long = Bytes::from(vec![b'a'; SHOWN_TEXT + 1]);
        let shown = render(
            &[0, 1, 0],
            &[Some(Bytes::from_static(b"42")), Some(Bytes::from_static(&[0, 0, 0, 42])), Some(long)],
        );
        assert_eq!(shown[0], json!("42"));
        assert_eq!(shown[1], json!({"binary": "0000002a"}));
        assert_eq!(shown[2]["bytes"], json!(SHOWN_TEXT + 1));
        assert_eq!(render(&[], &[None]), [Value::Null]);
    }

    #[test]
    fn deallocate_and_discard_forget_prepared_statements() {
        assert!(forgets_prepared("DEALLOCATE s1"));
        assert!(forgets_prepared("  /* x */ discard all"));
        assert!(!forgets_prepared("select 'deallocate'"));
        assert!(forgets_prepared("DO $$ BEGIN EXECUTE 'DEALLOCATE s1'; END $$"));
        assert!(forgets_prepared("call p()"));
    }
}
