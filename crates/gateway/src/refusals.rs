//! What refused callers cost: per-source rate limiting of failed
//! authentication, and counting (rather than recording one by one) the
//! refusals from one source within a window.
//!
//! A source is the client's address (an IPv6 client's /64 network, since
//! one host may hold all of it); the HTTP layer says which address that is
//! behind proxies. For each
//! (source, actor) pair the first few refusals in a window
//! (`server.refusals_recorded_per_window`) are recorded at once, each with
//! its details; later ones are counted by reason, and the count is recorded as one
//! `refusals.aggregated` event when the window ends, when the pair is
//! evicted to make room, or at shutdown. Nothing is dropped: the counts are
//! exact. Memory is bounded by `server.tracked_sources` (least recently
//! seen pairs are evicted first, their counts flushed).
//!
//! The limiter only charges failed authentication: a succeeding caller
//! never touches it, so an authenticated agent is not slowed by a flood
//! from its own address. State is split into shards, each behind its own
//! short-held lock, so refusals from different sources do not contend.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use countersign_audit::{AuditDraft, RefusalKind, RefusalRecord};
use countersign_core::events::{Event, RefusalsAggregated};
use countersign_core::{Clock, Timestamp};

use crate::config::LimitsConfig;
use crate::error::{RateLimited, RATE_LIMITED};

/// Where a call came from, as far as the gateway can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// An IPv4 address, or an IPv6 address with all but its /64 cleared.
    Ip(IpAddr),
    /// No peer address is known (an in-process call).
    Unknown,
}

impl Source {
    /// The source of a client at `ip`: IPv6 clients by their /64.
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::Ip(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & (u128::MAX << 64);
                Self::Ip(IpAddr::V6(Ipv6Addr::from(network)))
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Self::Ip(IpAddr::V6(ip)) => write!(f, "{ip}/64"),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// Whether a refusal's own record is to be written now.
#[derive(Debug, PartialEq)]
pub struct Noted {
    /// The first refusal of its (source, actor) in the window: record it.
    pub record_now: bool,
    /// Counts that became due while noting (a window that ended, a pair
    /// evicted): record them too.
    pub flushed: Vec<AuditDraft>,
}

/// Refusals counted but not yet recorded, for one (source, actor).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counted {
    count: u64,
    reasons: BTreeMap<&'static str, u64>,
    first: Timestamp,
    last: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: Source,
    /// `None`: not authenticated.
    actor: Option<Box<str>>,
}

#[derive(Debug)]
struct Entry {
    /// Failed authentications still allowed (token bucket); only
    /// unauthenticated entries use it.
    tokens: f64,
    refilled_at: Timestamp,
    window_start: Timestamp,
    /// Refusals recorded one by one in this window.
    recorded: u32,
    last_seen: Timestamp,
    counted: Counted,
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<Key, Entry>,
}

const SHARDS: usize = 16;

/// The limiter and the refusal counter of one gateway process.
#[derive(Debug)]
pub struct Refusals {
    limits: LimitsConfig,
    clock: Arc<dyn Clock>,
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl Refusals {
    pub fn new(limits: LimitsConfig, clock: Arc<dyn Clock>) -> Self {
        let per_shard = limits.tracked_sources.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        Self { limits, clock, shards, per_shard }
    }

    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, Shard> {
        let mut hasher = DefaultHasher::new();
        key.source.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % self.shards.len() as u64).unwrap_or(0);
        // A poisoned shard only means another thread panicked mid-update of
        // plain counters; its data is still usable.
        match self.shards[index].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn rate_per_ms(&self) -> f64 {
        f64::from(self.limits.unauthenticated_per_minute) / 60_000.0
    }

    /// Whether `source` may try to authenticate now; if not, how long until
    /// it may (for `Retry-After`).
    pub fn admit(&self, source: Source) -> Result<(), Duration> {
        let key = Key { source, actor: None };
        let now = self.now();
        let mut shard = self.shard(&key);
        let Some(entry) = shard.entries.get_mut(&key) else {
            return Ok(());
        };
        self.refill(entry, now);
        if entry.tokens >= 1.0 {
            return Ok(());
        }
        let wait_ms = ((1.0 - entry.tokens) / self.rate_per_ms()).ceil();
        Err(Duration::from_millis(wait_ms as u64).max(Duration::from_secs(1)))
    }

    fn refill(&self, entry: &mut Entry, now: Timestamp) {
        let elapsed = now.as_millis().saturating_sub(entry.refilled_at.as_millis()).max(0) as f64;
        let burst = f64::from(self.limits.unauthenticated_burst);
        entry.tokens = (entry.tokens + elapsed * self.rate_per_ms()).min(burst);
        entry.refilled_at = now;
    }

    /// Notes a refusal of `actor` (`None`: unauthenticated) from `source`
    /// for `reason`. `charge`: a failed authentication, taken from the
    /// source's allowance.
    pub fn note(&self, source: Source, actor: Option<&str>, reason: &'static str, charge: bool) -> Noted {
        let key = Key { source, actor: actor.map(Box::from) };
        let now = self.now();
        let window = i64::try_from(self.limits.refusal_window.as_millis()).unwrap_or(i64::MAX);
        let mut flushed = Vec::new();
        let mut shard = self.shard(&key);
        if !shard.entries.contains_key(&key) && shard.entries.len() >= self.per_shard {
            self.evict_one(&mut shard, &mut flushed);
        }
        let mut fresh = false;
        let entry = shard.entries.entry(key.clone()).or_insert_with(|| {
            fresh = true;
            Entry {
                tokens: f64::from(self.limits.unauthenticated_burst),
                refilled_at: now,
                window_start: now,
                recorded: 0,
                last_seen: now,
                counted: Counted::default(),
            }
        });
        if charge {
            self.refill(entry, now);
            entry.tokens = (entry.tokens - 1.0).max(0.0);
        }
        entry.last_seen = now;
        let window_over = now.as_millis().saturating_sub(entry.window_start.as_millis()) >= window;
        if window_over && !fresh {
            if let Some(draft) = aggregated(&key, std::mem::take(&mut entry.counted), self.limits.refusal_window) {
                flushed.push(draft);
            }
            entry.window_start = now;
            entry.recorded = 0;
        }
        let record_now = if entry.recorded < self.limits.recorded_per_window {
            entry.recorded += 1;
            true
        } else {
            let counted = &mut entry.counted;
            if counted.count == 0 {
                counted.first = now;
            }
            counted.count += 1;
            *counted.reasons.entry(reason).or_insert(0) += 1;
            counted.last = now;
            false
        };
        Noted { record_now, flushed }
    }

    fn evict_one(&self, shard: &mut Shard, flushed: &mut Vec<AuditDraft>) {
        let oldest = shard.entries.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| k.clone());
        if let Some(key) = oldest {
            if let Some(entry) = shard.entries.remove(&key) {
                flushed.extend(aggregated(&key, entry.counted, self.limits.refusal_window));
            }
        }
    }

    /// The counts whose window has ended (all of them when `all`), as
    /// events to record; entries with nothing left to remember are dropped.
    pub fn take_due(&self, all: bool) -> Vec<AuditDraft> {
        let now = self.now();
        let window = i64::try_from(self.limits.refusal_window.as_millis()).unwrap_or(i64::MAX);
        let burst = f64::from(self.limits.unauthenticated_burst);
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = match shard.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            shard.entries.retain(|key, entry| {
                let over = now.as_millis().saturating_sub(entry.window_start.as_millis()) >= window;
                if all || over {
                    out.extend(aggregated(key, std::mem::take(&mut entry.counted), self.limits.refusal_window));
                }
                if !over {
                    return true;
                }
                // Forget a pair once its window is over and its allowance
                // has refilled: remembering it would change nothing.
                self.refill(entry, now);
                entry.tokens < burst
            });
        }
        out
    }

    /// How many (source, actor) pairs are remembered.
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.entries.len())).sum()
    }
}

fn aggregated(key: &Key, counted: Counted, window: Duration) -> Option<AuditDraft> {
    if counted.count == 0 {
        return None;
    }
    let actor = key.actor.as_deref().unwrap_or("anonymous");
    // The actor is an authenticated principal's reference or `anonymous`;
    // reasons are the gateway's own codes: nothing here is client text.
    let aggregated = RefusalsAggregated {
        source: key.source.to_string(),
        count: counted.count,
        reasons: counted.reasons.into_iter().map(|(reason, n)| (reason.to_owned(), n)).collect(),
        first: counted.first,
        last: counted.last,
        window_seconds: window.as_secs(),
    };
    Some(AuditDraft::new(actor, Event::RefusalsAggregated(aggregated)))
}

impl crate::AppState {
    /// Whether `source` may try to authenticate now; if not, how long it
    /// is to wait. Only callers that have not (yet) authenticated ask.
    pub fn admit(&self, source: Source) -> Result<(), RateLimited> {
        self.0.refusals.admit(source).map_err(|wait| {
            self.0.metrics.rate_limited.inc();
            RateLimited { retry_after_secs: wait.as_secs().max(1) }
        })
    }

    /// Records a refusal of `actor` (`None`: not authenticated) from
    /// `source`: its bounded record at once if it is the first of the
    /// pair in the window, else only counted. `charge`: it was a failed
    /// authentication, which uses up the source's allowance.
    ///
    /// The record is built only when it is kept: building it hashes what
    /// the client sent (a 65 KB path costs more to hash than the rest of
    /// the refusal), and a flood is almost all counted refusals.
    pub async fn refuse(
        &self,
        source: Source,
        actor: Option<&str>,
        code: &'static str,
        charge: bool,
        record: impl FnOnce() -> RefusalRecord,
    ) {
        self.0.metrics.count_refusal(code);
        let noted = self.0.refusals.note(source, actor, code, charge);
        let mut events = noted.flushed;
        if noted.record_now {
            events.push(record().text("source", &source.to_string()).into_draft());
        } else {
            self.0.metrics.refusals_counted.inc();
        }
        self.record_refusals(events).await;
        if code == RATE_LIMITED {
            // Every entry point answers a limited source through here: its
            // connection is held, so it cannot send the next call at once.
            // A held call costs a timer; an answered one costs reading it.
            tokio::time::sleep(self.0.config.limits.rate_limited_delay).await;
        }
    }

    /// Records the counts whose window has ended, or all of them (at
    /// shutdown).
    pub async fn flush_refusals(&self, all: bool) {
        let due = self.0.refusals.take_due(all);
        self.0.metrics.refusal_sources.set(i64::try_from(self.0.refusals.tracked()).unwrap_or(i64::MAX));
        self.record_refusals(due).await;
    }

    async fn record_refusals(&self, events: Vec<AuditDraft>) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.0.store.append_audit(events).await {
            // The caller still gets its refusal; nothing was changed.
            tracing::error!(error = %e, "could not audit refused calls");
        }
    }

    /// Flushes due counts until the gateway shuts down, then all of them.
    pub async fn run_refusal_flusher(self) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.is_shutting_down() {
            tick.tick().await;
            self.flush_refusals(false).await;
        }
    }
}

/// The record of a refused HTTP call, as every entry point writes it: the
/// method, the path and query, the gateway's code and message, all bounded.
pub fn call_record(
    actor: Option<&str>,
    method: &str,
    path: &str,
    query: Option<&str>,
    code: &'static str,
    message: &str,
) -> RefusalRecord {
    RefusalRecord::new(RefusalKind::RequestRejected, actor.unwrap_or("anonymous"))
        .text("method", method)
        .text("path", path)
        .text_opt("query", query)
        .code("code", code)
        .text("message", message)
}

/// How often ended windows are looked for.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::clock::ManualClock;

    fn limits(burst: u32, per_minute: u32, tracked: usize) -> LimitsConfig {
        LimitsConfig {
            unauthenticated_burst: burst,
            unauthenticated_per_minute: per_minute,
            refusal_window: Duration::from_secs(60),
            recorded_per_window: 1,
            tracked_sources: tracked,
            rate_limited_delay: Duration::ZERO,
            trusted_proxies: Vec::new(),
        }
    }

    fn ip(text: &str) -> Source {
        Source::from_ip(text.parse().unwrap())
    }

    #[test]
    fn the_first_refusal_is_recorded_and_the_rest_counted_exactly() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let r = Refusals::new(limits(1000, 60, 1000), clock.clone());
        let a = ip("192.0.2.1");
        assert!(r.note(a, None, "unauthenticated", true).record_now);
        for n in 0..999 {
            let reason = if n % 3 == 0 { "rate_limited" } else { "unauthenticated" };
            assert!(!r.note(a, None, reason, true).record_now);
            clock.advance(Duration::from_millis(10));
        }
        assert!(r.take_due(false).is_empty(), "the window is still open");
        clock.advance(Duration::from_secs(60));
        let due = r.take_due(false);
        assert_eq!(due.len(), 1);
        let body = &due[0].body().unwrap();
        assert_eq!(due[0].kind(), "refusals.aggregated");
        assert_eq!(due[0].actor(), "anonymous");
        assert_eq!(body["source"], "192.0.2.1");
        assert_eq!(body["count"], 999);
        assert_eq!(body["reasons"]["rate_limited"], 333);
        assert_eq!(body["reasons"]["unauthenticated"], 666);
        assert_eq!(body["first"], Timestamp(1_000_000).to_rfc3339());
        assert!(r.take_due(true).is_empty(), "counts are flushed once");
        // A new window records its first refusal again.
        assert!(r.note(a, None, "unauthenticated", true).record_now);
    }

    #[test]
    fn the_first_few_are_recorded_each() {
        let mut limits = limits(1000, 60, 1000);
        limits.recorded_per_window = 3;
        let clock = Arc::new(ManualClock::at(0));
        let r = Refusals::new(limits, clock.clone());
        let a = ip("192.0.2.1");
        let recorded: Vec<bool> = (0..5).map(|_| r.note(a, None, "unauthenticated", true).record_now).collect();
        assert_eq!(recorded, [true, true, true, false, false]);
        clock.advance(Duration::from_secs(60));
        let noted = r.note(a, None, "unauthenticated", true);
        assert!(noted.record_now, "a new window");
        assert_eq!(noted.flushed.len(), 1, "the old window's count comes out with it");
        assert_eq!(noted.flushed[0].body().unwrap()["count"], 2);
    }

    #[test]
    fn shutdown_flushes_open_windows() {
        let r = Refusals::new(limits(10, 60, 1000), Arc::new(ManualClock::at(0)));
        for n in 0..5 {
            r.note(ip(&format!("198.51.100.{n}")), Some("agent:bot"), "not_found", false);
            r.note(ip(&format!("198.51.100.{n}")), Some("agent:bot"), "not_found", false);
        }
        let flushed = r.take_due(true);
        assert_eq!(flushed.len(), 5);
        assert!(flushed.iter().all(|d| d.body().unwrap()["count"] == 1 && d.actor() == "agent:bot"));
    }

    #[test]
    fn the_allowance_runs_out_and_refills() {
        let clock = Arc::new(ManualClock::at(0));
        let r = Refusals::new(limits(3, 60, 1000), clock.clone());
        let a = ip("203.0.113.9");
        for _ in 0..3 {
            assert_eq!(r.admit(a), Ok(()));
            r.note(a, None, "unauthenticated", true);
        }
        let wait = r.admit(a).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1), "one a second at 60 a minute");
        assert_eq!(r.admit(ip("203.0.113.10")), Ok(()), "other sources are not affected");
        // Refusals of authenticated callers do not charge the source.
        r.note(ip("203.0.113.11"), Some("agent:bot"), "not_found", false);
        assert_eq!(r.admit(ip("203.0.113.11")), Ok(()));
        clock.advance(Duration::from_millis(1000));
        assert_eq!(r.admit(a), Ok(()));
    }

    #[test]
    fn memory_is_bounded_and_evicted_counts_are_kept() {
        let clock = Arc::new(ManualClock::at(0));
        let r = Refusals::new(limits(10, 60, 16), clock.clone());
        let mut total = 0u64;
        for n in 0..2000u32 {
            let source = Source::from_ip(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n % 500)));
            let noted = r.note(source, None, "unauthenticated", true);
            total += u64::from(noted.record_now);
            total += noted.flushed.iter().map(|d| d.body().unwrap()["count"].as_u64().unwrap()).sum::<u64>();
            clock.advance(Duration::from_millis(1));
            assert!(r.tracked() <= 16 + SHARDS, "{}", r.tracked());
        }
        total += r.take_due(true).iter().map(|d| d.body().unwrap()["count"].as_u64().unwrap()).sum::<u64>();
        assert_eq!(total, 2000, "every refusal is recorded or counted");
    }

    #[test]
    fn ipv6_sources_are_networks() {
        assert_eq!(ip("2001:db8::1"), ip("2001:db8::ffff:1"));
        assert_ne!(ip("2001:db8::1"), ip("2001:db8:0:1::1"));
        assert_eq!(ip("2001:db8::1").to_string(), "2001:db8::/64");
        assert_eq!(ip("::ffff:192.0.2.1").to_string(), "192.0.2.1");
    }
}
