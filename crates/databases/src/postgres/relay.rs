//! What the database answers, passed to the client as it came, and read
//! on the way for what the proxy must know: which prepared statements and
//! portals really exist (confirmed by the database's own replies, so
//! messages it skipped after an error never count), how each forwarded
//! statement ended (its outcome), the transaction status, and the errors
//! the proxy provoked to stand in for a refusal.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::Notify;

use super::upstream::MAX_BACKEND_MESSAGE;
use super::wire::{self, Report};
use super::Stream;

/// A prepared statement or portal the proxy may not know the text of
/// (one made with SQL `PREPARE`, which only the database knows).
#[derive(Debug, Clone)]
pub(crate) struct Portal {
    pub text: Option<String>,
    pub parameters: Vec<Value>,
    /// An `Execute` of it was decided and forwarded: a later one only
    /// fetches more rows of the same run.
    pub released: bool,
}

/// A forwarded statement whose outcome is to be recorded.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub request: String,
    pub started: Instant,
}

/// What a message sent upstream waits for, in the order sent.
#[derive(Debug)]
pub(crate) enum Unit {
    Parse {
        name: String,
        text: String,
    },
    Bind {
        portal: String,
        statement: String,
        parameters: Vec<Value>,
    },
    Close {
        portal: bool,
        name: String,
    },
    Describe,
    Execute {
        tracked: Option<Tracked>,
    },
    Sync,
    Query {
        tracked: Vec<Tracked>,
        done: usize,
        forgets: bool,
    },
    /// A message sent in place of a refused statement, so that the
    /// database fails it as it fails any statement (the transaction is
    /// aborted as after any error); its error is replaced by `error`.
    Refused {
        nonce: String,
        error: Bytes,
        simple: bool,
    },
}

impl Unit {
    /// Whether the database answers this unit with its own message(s).
    fn ends_at_z(&self) -> bool {
        matches!(self, Self::Sync | Self::Query { .. } | Self::Refused { simple: true, .. })
    }
}

/// What the proxy knows of the database session.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    pub units: VecDeque<Unit>,
    pub statements: HashMap<String, String>,
    pub portals: HashMap<String, Portal>,
    /// An error ended the current extended-protocol batch: the database
    /// skips everything up to the next `Sync`.
    pub skipping: bool,
}

/// What the two halves of a session share.
pub(crate) struct Shared {
    pub tracker: Mutex<Tracker>,
    /// Woken whenever the relay consumed a unit.
    pub progress: Notify,
    pub client: tokio::sync::Mutex<WriteHalf<Stream>>,
    /// `I`, `T` or `E`, from the last `ReadyForQuery`.
    pub status: AtomicU8,
    pub outcomes: Box<dyn Fn(String, bool, String) + Send + Sync>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    pub fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the relay stopped.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The database closed the connection or broke the protocol.
    Upstream(String),
    /// The client cannot be written to.
    Client,
    /// A setting changed how the database reads statements (a computed
    /// `SET client_encoding` in an approved function): nothing more is
    /// forwarded, since it would not be read here as it is there.
    Unreadable(String),
}

/// Passes the database's messages on until either side goes away.
pub(crate) async fn run(shared: &Shared, mut upstream: ReadHalf<Stream>, mut buf: BytesMut) -> Ended {
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        loop {
            match wire::take_frame(&mut buf, MAX_BACKEND_MESSAGE) {
                Ok(Some(frame)) => {
                    if let Err(why) = on_frame(shared, frame, &mut out) {
                        return Ended::Unreadable(why);
                    }
                }
                Ok(None) => break,
                Err(e) => return Ended::Upstream(e.to_string()),
            }
        }
        if !out.is_empty() {
            let mut client = shared.client.lock().await;
            if client.write_all(&out).await.is_err() || client.flush().await.is_err() {
                return Ended::Client;
            }
            out.clear();
        }
        shared.progress.notify_waiters();
        match upstream.read_buf(&mut buf).await {
            Ok(0) => return Ended::Upstream("the database closed the connection".to_owned()),
            Ok(_) => {}
            Err(e) => return Ended::Upstream(e.to_string()),
        }
    }
}

/// Whether a setting the database reports leaves statements read as the
/// proxy reads them: UTF-8, `standard_conforming_strings` on.
pub(crate) fn reads_as_decided(name: &[u8], value: &[u8]) -> bool {
    match name {
        b"client_encoding" => value.eq_ignore_ascii_case(b"UTF8"),
        b"standard_conforming_strings" => value == b"on",
        _ => true,
    }
}

/// Reads one message from the database into `out`; an error when the
/// session can no longer be read as the database reads it.
fn on_frame(shared: &Shared, frame: Bytes, out: &mut BytesMut) -> Result<(), String> {
    let mut tracker = shared.tracker();
    let tag = frame[0];
    let mut pass = Some(frame);
    match tag {
        b'1' | b'2' | b'3' => confirm(&mut tracker),
        b'T' | b'n' => {
            if matches!(tracker.units.front(), Some(Unit::Describe)) {
                tracker.units.pop_front();
            }
        }
        b'C' | b'I' | b's' => {
            let tag_text = pass.as_deref().map(wire::command_tag).unwrap_or_default();
            let described = if tag == b'C' {
                tag_text
            } else if tag == b'I' {
                "EMPTY".to_owned()
            } else {
                "SUSPENDED".to_owned()
            };
            match tracker.units.front_mut() {
                Some(Unit::Execute { .. }) => {
                    if let Some(Unit::Execute { tracked: Some(t), .. }) = tracker.units.pop_front() {
                        (shared.outcomes)(t.request, true, summary(&described, t.started));
                    }
                }
                Some(Unit::Query { tracked, done, .. }) => {
                    if let Some(t) = tracked.get(*done) {
                        (shared.outcomes)(t.request.clone(), true, summary(&described, t.started));
                    }
                    *done += 1;
                }
                _ => {}
            }
        }
        b'E' => {
            let frame = pass.take().unwrap_or_default();
            let state = wire::sqlstate(&frame).unwrap_or_default();
            let front_refused = match tracker.units.front() {
                Some(Unit::Refused { nonce, .. }) => Some(contains(&frame, nonce.as_bytes())),
                _ => None,
            };
            match front_refused {
                Some(ours) => {
                    let simple = matches!(tracker.units.front(), Some(Unit::Refused { simple: true, .. }));
                    if ours {
                        if let Some(Unit::Refused { error, .. }) = tracker.units.front() {
                            pass = Some(error.clone());
                        }
                    } else {
                        // Failed for another reason first (an aborted
                        // transaction): that is what the client sees.
                        pass = Some(frame);
                    }
                    if !simple {
                        tracker.units.pop_front();
                        tracker.skipping = true;
                    }
                }
                None => {
                    pass = Some(frame);
                    match tracker.units.front_mut() {
                        Some(Unit::Query { tracked, done, .. }) => {
                            if let Some(t) = tracked.get(*done) {
                                (shared.outcomes)(
                                    t.request.clone(),
                                    false,
                                    summary(&format!("ERROR {state}"), t.started),
                                );
                            }
                            *done = tracked.len();
                        }
                        Some(Unit::Sync) | None => {}
                        Some(_) => {
                            if let Some(Unit::Execute { tracked: Some(t), .. }) = tracker.units.pop_front() {
                                (shared.outcomes)(t.request, false, summary(&format!("ERROR {state}"), t.started));
                            }
                            tracker.skipping = true;
                        }
                    }
                }
            }
        }
        b'S' => {
            let frame = pass.as_deref().unwrap_or_default();
            let mut parts = frame.get(5..).unwrap_or_default().split(|&b| b == 0);
            let (name, value) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            if !reads_as_decided(name, value) {
                drop(tracker);
                return Err(format!(
                    "the database now reads statements with `{}` = `{}`",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(value)
                ));
            }
        }
        b'Z' => {
            if let Some(&status) = pass.as_deref().and_then(|f| f.get(5)) {
                shared.status.store(status, Ordering::SeqCst);
                if status == b'I' {
                    // Out of a transaction, the database has dropped every
                    // portal (none bound through the protocol is holdable).
                    tracker.portals.clear();
                }
            }
            // Everything before the unit this answers was skipped.
            while let Some(unit) = tracker.units.pop_front() {
                let ends = unit.ends_at_z();
                match unit {
                    Unit::Execute { tracked: Some(t), .. } => {
                        (shared.outcomes)(
                            t.request,
                            false,
                            "not run: an earlier message of its batch failed".to_owned(),
                        );
                    }
                    Unit::Query { tracked, done, forgets } => {
                        for t in tracked.into_iter().skip(done) {
                            (shared.outcomes)(t.request, false, "not run: an earlier statement failed".to_owned());
                        }
                        // A simple query drops the unnamed statement and portal.
                        tracker.statements.remove("");
                        tracker.portals.remove("");
                        if forgets {
                            forget_all(&mut tracker);
                        }
                    }
                    _ => {}
                }
                if ends {
                    break;
                }
            }
            tracker.skipping = false;
        }
        _ => {}
    }
    drop(tracker);
    if let Some(frame) = pass {
        out.extend_from_slice(&frame);
    }
    Ok(())
}

/// The front unit succeeded (`ParseComplete`, `BindComplete`, `CloseComplete`).
fn confirm(tracker: &mut Tracker) {
    match tracker.units.pop_front() {
        Some(Unit::Parse { name, text }) => {
            tracker.statements.insert(name, text);
        }
        Some(Unit::Bind { portal, statement, parameters }) => {
            let text = tracker.statements.get(&statement).cloned();
            tracker.portals.insert(portal, Portal { text, parameters, released: false });
        }
        Some(Unit::Close { portal: true, name }) => {
            tracker.portals.remove(&name);
        }
        Some(Unit::Close { portal: false, name }) => {
            tracker.statements.remove(&name);
        }
        Some(other) => {
            // Out of step with the database: know nothing rather than something wrong.
            tracing::warn!(unit = ?other, "a reply the proxy did not expect; forgetting prepared statements");
            forget_all(tracker);
        }
        None => forget_all(tracker),
    }
}

/// After `DEALLOCATE` or `DISCARD` (which change prepared statements
/// behind the protocol's back), or when out of step: nothing is known, so
/// executing a named statement is refused until it is prepared again.
pub(crate) fn forget_all(tracker: &mut Tracker) {
    tracker.statements.clear();
    tracker.portals.clear();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn summary(tag: &str, started: Instant) -> String {
    format!("{tag} in {:.2} ms", started.elapsed().as_secs_f64() * 1000.0)
}

/// An error the client is sent in place of a refused statement.
pub(crate) fn refusal_error(code: &str, message: String, detail: Option<String>, hint: Option<String>) -> Bytes {
    wire::error(&Report { severity: "ERROR", code, message, detail, hint })
}
