//! Folding the audit log, event by event in sequence order, into a
//! [`Report`]. The caller feeds the whole log (from seq 1), so that the
//! chain is verified end to end and identities created before the period
//! are known; only events inside the period count.

use std::collections::{BTreeMap, HashMap};

use countersign_audit::{AuditEvent, ChainVerifier};
use countersign_core::events::{AttemptRefused, Event, Parsed, Rejection, VoteAccepted};
use countersign_core::{OutcomeStatus, Status, Timestamp};

use crate::controls;
use crate::report::{
    ActionRecord, Bucket, CheckpointEvidence, Closure, Distribution, IdentityRevocation, Period, PolicyChange,
    Refusals, Report, Segregation, Totals, Verification, Violation, VoteRecord,
};

/// The format name in every JSON report.
const FORMAT: &str = "countersign-evidence/1";

/// Actions listed in full by default; a longer period still counts them all.
const DEFAULT_MAX_ACTIONS: usize = 50_000;

/// A request submitted in the period, as much as the checks need even when
/// it is not listed.
#[derive(Debug)]
struct Tracked {
    requester: String,
    on_behalf_of: Option<String>,
    submitted_at: Timestamp,
    /// Its row in `actions`, when listed.
    row: Option<usize>,
    held: bool,
    waited_until: Option<Timestamp>,
    approvers: Vec<String>,
}

/// Builds a [`Report`] from the log's events.
#[derive(Debug)]
pub struct Collector {
    period: Period,
    max_actions: usize,
    verifier: ChainVerifier,
    chain_error: Option<String>,
    unreadable: u64,
    /// Identity key of a user name → the person (lower-cased email).
    people: HashMap<String, String>,
    /// Agent name → the user who owns it.
    owners: HashMap<String, String>,
    requests: HashMap<String, Tracked>,
    actions: Vec<ActionRecord>,
    omitted: u64,
    totals: Totals,
    segregation: Segregation,
    refusals: Refusals,
    waits: Vec<i64>,
    closures: Vec<Closure>,
    revocations: Vec<IdentityRevocation>,
    policy_changes: Vec<PolicyChange>,
}

impl Collector {
    pub fn new(period: Period) -> Self {
        Self {
            period,
            max_actions: DEFAULT_MAX_ACTIONS,
            verifier: ChainVerifier::new(),
            chain_error: None,
            unreadable: 0,
            people: HashMap::new(),
            owners: HashMap::new(),
            requests: HashMap::new(),
            actions: Vec::new(),
            omitted: 0,
            totals: Totals::default(),
            segregation: Segregation::default(),
            refusals: Refusals::default(),
            waits: Vec::new(),
            closures: Vec::new(),
            revocations: Vec::new(),
            policy_changes: Vec::new(),
        }
    }

    /// Lists at most `max` actions in full (the rest are counted).
    pub fn with_max_actions(mut self, max: usize) -> Self {
        self.max_actions = max;
        self
    }

    /// Takes the next event of the log.
    pub fn push(&mut self, event: &AuditEvent) {
        if self.chain_error.is_none() {
            if let Err(broken) = self.verifier.push(event) {
                self.chain_error = Some(broken.to_string());
            }
        }
        let parsed = match event.parsed() {
            Parsed::Known(parsed) => parsed,
            Parsed::Unknown(_) => {
                self.unreadable += 1;
                return;
            }
        };
        self.learn_identities(&parsed);
        if self.period.contains(event.time) {
            self.count(event, &parsed);
        }
    }

    /// Users' and agents' facts, whenever they were recorded: a vote in the
    /// period may come from a user created long before it.
    fn learn_identities(&mut self, event: &Event) {
        match event {
            Event::UserCreated(u) => {
                self.people.insert(identity_key(&u.name), u.email.trim().to_lowercase());
            }
            Event::UserUpdated(u) => {
                self.people.insert(identity_key(&u.name), u.email.trim().to_lowercase());
            }
            Event::AgentCreated(a) => {
                if let Some(owner) = &a.owner {
                    self.owners.insert(identity_key(&a.name), identity_key(owner));
                }
            }
            Event::ActionSubmitted(_)
            | Event::ActionDecided(_)
            | Event::ApprovalAccepted(_)
            | Event::DenialAccepted(_)
            | Event::ActionApproved(_)
            | Event::ActionDenied(_)
            | Event::ActionReleased(_)
            | Event::OutcomeReported(_)
            | Event::ActionCancelled(_)
            | Event::ActionExpired(_)
            | Event::ActionRevoked(_)
            | Event::VotesWithdrawn(_)
            | Event::ActionEscalated(_)
            | Event::CommentAdded(_)
            | Event::AttemptRefused(_)
            | Event::PolicyLoaded(_)
            | Event::PolicyLoadFailed(_)
            | Event::PolicyAdopted(_)
            | Event::UserRevoked(_)
            | Event::AgentRevoked(_)
            | Event::IdentityBound(_)
            | Event::IdentityBindingRefused(_)
            | Event::ConsoleLogin(_)
            | Event::ConsoleLogout(_)
            | Event::RequestRejected(_)
            | Event::IntegrationRejected(_)
            | Event::RefusalsAggregated(_)
            | Event::McpUpstreamMessageDropped(_)
            | Event::ChannelStarted(_)
            | Event::ChannelClick(_)
            | Event::WebhookDelivery(_)
            | Event::DatabaseSessionOpened(_)
            | Event::DatabaseSessionClosed(_) => {}
        }
    }

    fn count(&mut self, event: &AuditEvent, parsed: &Event) {
        let at = event.time;
        match parsed {
            Event::ActionSubmitted(s) => {
                self.totals.submitted += 1;
                let row = (self.actions.len() < self.max_actions).then_some(self.actions.len());
                match row {
                    Some(_) => self.actions.push(ActionRecord {
                        id: s.id.clone(),
                        seq: event.seq,
                        submitted_at: at,
                        requester: event.actor.clone(),
                        on_behalf_of: s.on_behalf_of.clone(),
                        kind: s.kind.clone(),
                        resource: s.resource.clone(),
                        fingerprint: s.fingerprint.to_string(),
                        justification: s.justification.clone(),
                        decision: None,
                        decision_reason: None,
                        policies: Vec::new(),
                        policy_hash: None,
                        requirements: Vec::new(),
                        approvals: Vec::new(),
                        denials: Vec::new(),
                        state: None,
                        concluded_at: None,
                        released_at: None,
                        outcome: None,
                    }),
                    None => self.omitted += 1,
                }
                self.requests.insert(
                    s.id.clone(),
                    Tracked {
                        requester: event.actor.clone(),
                        on_behalf_of: s.on_behalf_of.clone(),
                        submitted_at: at,
                        row,
                        held: false,
                        waited_until: None,
                        approvers: Vec::new(),
                    },
                );
            }
            Event::ActionDecided(d) => {
                let status = d.status.as_str();
                let held = match d.status {
                    Status::Allowed => {
                        self.totals.allowed += 1;
                        false
                    }
                    Status::Pending => {
                        self.totals.held += 1;
                        true
                    }
                    // A decision is one of the three above; anything else
                    // in a decision event counts as the policy refusing.
                    Status::Denied
                    | Status::Approved
                    | Status::Released
                    | Status::Expired
                    | Status::Cancelled
                    | Status::Revoked => {
                        self.totals.denied_by_policy += 1;
                        false
                    }
                };
                if let Some(tracked) = self.requests.get_mut(&d.id) {
                    tracked.held = held;
                }
                if let Some(row) = self.row(&d.id) {
                    row.decision = Some(status.to_owned());
                    row.decision_reason = Some(d.reason.clone());
                    row.policies = d.policies.clone();
                    row.policy_hash = Some(d.policy_hash.clone());
                    row.requirements =
                        d.requirements.iter().map(|r| format!("{}×{}", r.groups.join("|"), r.quorum)).collect();
                    if !held {
                        row.state = Some(status.to_owned());
                    }
                }
            }
            Event::ApprovalAccepted(v) => self.vote(event, v, true),
            Event::DenialAccepted(v) => self.vote(event, v, false),
            Event::ActionApproved(c) => {
                self.totals.approved += 1;
                self.conclude(&c.id, "approved", at);
            }
            Event::ActionDenied(c) => {
                self.totals.denied_by_approver += 1;
                self.conclude(&c.id, "denied", at);
            }
            Event::ActionReleased(r) => {
                self.totals.released += 1;
                if let Some(row) = self.row(&r.id) {
                    row.state = Some("released".to_owned());
                    row.released_at = Some(at);
                }
            }
            Event::OutcomeReported(o) => {
                match o.outcome.status {
                    OutcomeStatus::Succeeded => self.totals.outcomes_succeeded += 1,
                    OutcomeStatus::Failed => self.totals.outcomes_failed += 1,
                }
                if let Some(row) = self.row(&o.id) {
                    row.outcome = Some(o.outcome.clone());
                }
            }
            Event::ActionCancelled(c) => {
                self.totals.cancelled += 1;
                self.conclude(&c.id, "cancelled", at);
            }
            Event::ActionExpired(c) => {
                self.totals.expired += 1;
                self.conclude(&c.id, "expired", at);
                self.closures.push(Closure { id: c.id.clone(), kind: "expired", at, reason: c.reason.clone() });
            }
            Event::ActionRevoked(c) => {
                self.totals.revoked += 1;
                self.conclude(&c.id, "revoked", at);
                self.closures.push(Closure { id: c.id.clone(), kind: "revoked", at, reason: c.reason.clone() });
            }
            Event::AttemptRefused(AttemptRefused::Move(m)) => {
                self.refuse("attempt.refused", Some(&m.code), 1);
            }
            Event::AttemptRefused(AttemptRefused::Record(f)) => self.refuse("attempt.refused", f.code(), 1),
            Event::RequestRejected(Rejection::Call(f)) => self.refuse("request.rejected", f.code(), 1),
            Event::RequestRejected(Rejection::Message(m)) => self.refuse("request.rejected", Some(&m.code), 1),
            Event::IntegrationRejected(f) => self.refuse("integration.rejected", f.code(), 1),
            Event::McpUpstreamMessageDropped(m) => self.refuse("mcp.upstream_message_dropped", Some(&m.code), 1),
            Event::IdentityBindingRefused(_) => self.refuse("identity.binding_refused", None, 1),
            Event::RefusalsAggregated(a) => {
                for (reason, count) in &a.reasons {
                    self.refuse("refusals.aggregated", Some(reason), *count);
                }
            }
            Event::UserRevoked(r) => self.revocations.push(IdentityRevocation {
                identity: format!("user:{}", r.name),
                by: event.actor.clone(),
                at,
            }),
            Event::AgentRevoked(r) => self.revocations.push(IdentityRevocation {
                identity: format!("agent:{}", r.name),
                by: event.actor.clone(),
                at,
            }),
            Event::PolicyLoaded(p) => self.policy_change(event, "loaded", Some(&p.hash)),
            Event::PolicyAdopted(p) => self.policy_change(event, "adopted", Some(&p.hash)),
            Event::PolicyLoadFailed(p) => self.policy_change(event, "load_failed", p.hash.as_deref()),
            Event::VotesWithdrawn(_)
            | Event::ActionEscalated(_)
            | Event::CommentAdded(_)
            | Event::UserCreated(_)
            | Event::UserUpdated(_)
            | Event::AgentCreated(_)
            | Event::IdentityBound(_)
            | Event::ConsoleLogin(_)
            | Event::ConsoleLogout(_)
            | Event::ChannelStarted(_)
            | Event::ChannelClick(_)
            | Event::WebhookDelivery(_)
            | Event::DatabaseSessionOpened(_)
            | Event::DatabaseSessionClosed(_) => {}
        }
    }

    fn row(&mut self, id: &str) -> Option<&mut ActionRecord> {
        let row = self.requests.get(id)?.row?;
        self.actions.get_mut(row)
    }

    fn conclude(&mut self, id: &str, state: &str, at: Timestamp) {
        if let Some(tracked) = self.requests.get_mut(id) {
            if tracked.held && tracked.waited_until.is_none() {
                tracked.waited_until = Some(at);
                self.waits.push(at.as_millis().saturating_sub(tracked.submitted_at.as_millis()));
            }
            if state == "approved" {
                let mut people = tracked.approvers.clone();
                people.sort();
                people.dedup();
                if people.len() == tracked.approvers.len() {
                    self.segregation.approved_with_distinct_approvers += 1;
                }
            }
        }
        if let Some(row) = self.row(id) {
            row.state = Some(state.to_owned());
            row.concluded_at = Some(at);
        }
    }

    fn vote(&mut self, event: &AuditEvent, vote: &VoteAccepted, approve: bool) {
        self.segregation.votes_checked += 1;
        let person = vote.person.as_str().to_owned();
        let broken = self.requests.get(&vote.id).and_then(|tracked| {
            let rule = self.forbidden(tracked, &event.actor, &person);
            match (rule, approve && tracked.approvers.contains(&person)) {
                (Some(rule), _) => Some(rule),
                (None, true) => Some("one person counted twice toward a quorum"),
                (None, false) => None,
            }
        });
        if let Some(rule) = broken {
            self.segregation.violations.push(Violation {
                id: vote.id.clone(),
                seq: event.seq,
                by: event.actor.clone(),
                person: person.clone(),
                rule: rule.to_owned(),
            });
        }
        if approve {
            if let Some(tracked) = self.requests.get_mut(&vote.id) {
                tracked.approvers.push(person.clone());
            }
        }
        let record = VoteRecord {
            by: event.actor.clone(),
            person,
            groups: vote.groups.clone(),
            at: event.time,
            login: vote.login.map(|l| login_name(&l).to_owned()),
        };
        if let Some(row) = self.row(&vote.id) {
            match approve {
                true => row.approvals.push(record),
                false => row.denials.push(record),
            }
        }
    }

    /// Why `voter` (an identity, with `person` behind it) may not vote on
    /// `request`, by the same rules the gateway applies, recomputed from
    /// the log.
    fn forbidden(&self, request: &Tracked, voter: &str, person: &str) -> Option<&'static str> {
        if voter == request.requester {
            return Some("the requester voted on its own action");
        }
        let voter_user = voter.strip_prefix("user:").map(identity_key);
        let requester_user = request.requester.strip_prefix("user:").map(identity_key);
        let requester_agent = request.requester.strip_prefix("agent:").map(identity_key);
        let beneficiary = request.on_behalf_of.as_deref().map(identity_key);
        // A user's person is their email; a name that is an email stands
        // for itself even when no such user exists (yet).
        let is_person = |user: &str| -> bool {
            self.people.get(user).map(String::as_str).or(user.contains('@').then_some(user)) == Some(person)
        };
        if requester_user.is_some()
            && (voter_user == requester_user || requester_user.as_deref().is_some_and(is_person))
        {
            return Some("the requester's own person voted");
        }
        if let Some(beneficiary) = &beneficiary {
            if voter_user.as_deref() == Some(beneficiary.as_str()) || is_person(beneficiary) {
                return Some("the person the action was done for voted");
            }
        }
        if let Some(owner) = requester_agent.and_then(|agent| self.owners.get(&agent)) {
            if voter_user.as_deref() == Some(owner.as_str()) || is_person(owner) {
                return Some("the owner of the requesting agent voted");
            }
        }
        None
    }

    fn refuse(&mut self, kind: &str, code: Option<&str>, count: u64) {
        let code = code.unwrap_or("unspecified");
        self.refusals.total += count;
        *self.refusals.by_code.entry(format!("{kind}/{code}")).or_default() += count;
        match (kind, code) {
            (_, "self_approval") => self.refusals.self_approval += count,
            (_, "rate_limited") => self.refusals.rate_limited += count,
            ("integration.rejected", _) => self.refusals.integration += count,
            (_, "unauthenticated") => self.refusals.bad_credentials += count,
            _ => {}
        }
    }

    fn policy_change(&mut self, event: &AuditEvent, change: &'static str, hash: Option<&str>) {
        self.policy_changes.push(PolicyChange {
            at: event.time,
            seq: event.seq,
            change,
            hash: hash.map(str::to_owned),
            by: event.actor.clone(),
        });
    }

    /// The report, generated at `now`, with the checkpoint the caller
    /// checked the log against (if any).
    pub fn finish(self, now: Timestamp, checkpoint: Option<CheckpointEvidence>) -> Report {
        let verified = self.verifier.finish();
        let verification = Verification {
            chain_ok: self.chain_error.is_none(),
            events: verified.count,
            head_seq: verified.head.seq,
            head_hash: verified.head.hash,
            error: self.chain_error,
            unreadable_events: self.unreadable,
            checkpoint,
        };
        let mut report = Report {
            format: FORMAT,
            period: self.period,
            generated_at: now,
            verification,
            totals: self.totals,
            actions: self.actions,
            actions_omitted: self.omitted,
            segregation: self.segregation,
            refusals: self.refusals,
            time_to_decision: distribution(self.waits),
            closures: self.closures,
            identity_revocations: self.revocations,
            policy_changes: self.policy_changes,
            controls: Vec::new(),
        };
        report.controls = controls::assess(&report);
        report
    }
}

fn identity_key(name: &str) -> String {
    // The gateway's rule for identity names (`countersign_core` names).
    name.trim().to_ascii_lowercase()
}

fn login_name(login: &countersign_core::events::Login) -> &'static str {
    match login {
        countersign_core::events::Login::Credential => "credential",
        countersign_core::events::Login::IdpSession { .. } => "idp_session",
    }
}

/// The bars of the time-to-decision chart.
const BUCKETS: [(&str, Option<i64>); 6] = [
    ("< 1 min", Some(60_000)),
    ("1–5 min", Some(300_000)),
    ("5–15 min", Some(900_000)),
    ("15–60 min", Some(3_600_000)),
    ("1–4 h", Some(14_400_000)),
    ("≥ 4 h", None),
];

fn distribution(mut waits: Vec<i64>) -> Distribution {
    waits.sort_unstable();
    let rank = |p: usize| -> Option<i64> {
        // Nearest rank: the smallest value with at least p% at or below it.
        let n = waits.len();
        (n > 0).then(|| waits[(n * p).div_ceil(100).clamp(1, n) - 1])
    };
    let mut buckets: Vec<Bucket> =
        BUCKETS.iter().map(|(label, below_ms)| Bucket { label, below_ms: *below_ms, count: 0 }).collect();
    let mut tally = BTreeMap::<usize, u64>::new();
    for wait in &waits {
        let index = BUCKETS.iter().position(|(_, below)| below.is_none_or(|b| *wait < b)).unwrap_or(BUCKETS.len() - 1);
        *tally.entry(index).or_default() += 1;
    }
    for (index, count) in tally {
        if let Some(bucket) = buckets.get_mut(index) {
            bucket.count = count;
        }
    }
    Distribution {
        count: waits.len() as u64,
        p50_ms: rank(50),
        p90_ms: rank(90),
        max_ms: waits.last().copied(),
        buckets,
    }
}

#[cfg(test)]
mod tests;
