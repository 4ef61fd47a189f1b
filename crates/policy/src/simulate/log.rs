//! Reading the log: each `action.submitted` paired with its
//! `action.decided`, with the principal as the log described it then.
//!
//! The gateway writes both events in one transaction, one after the other,
//! so a submission waits for its decision only briefly; those waiting are
//! bounded ([`MAX_AWAITING`]) so that a log of submissions without
//! decisions cannot grow memory. An event that does not read (a body not in
//! the shape this version writes, an actor that names no principal, a
//! decision with a status no decision has) is reported, never fatal.

use std::collections::HashMap;

use countersign_audit::AuditEvent;
use countersign_core::events::{Decided, Event, Parsed, Submitted, Unreadable};
use countersign_core::{Action, Principal, PrincipalKind, PrincipalRef, Requirement, Status, Timestamp};
use serde::Serialize;

use super::Outcome;

/// The most submissions waiting for their decision at once.
pub const MAX_AWAITING: usize = 10_000;
/// Malformed events kept as examples (all are counted).
const MAX_MALFORMED_KEPT: usize = 20;

/// One recorded action with what was decided about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The `action.decided` event's sequence number.
    pub seq: u64,
    pub time: Timestamp,
    /// The request id.
    pub id: String,
    pub principal: Principal,
    /// Whether the log (or the directory) described the principal; if not,
    /// it is decided with no groups, owner or email.
    pub principal_known: bool,
    pub action: Action,
    pub outcome: Outcome,
    pub policies: Vec<String>,
    pub requirements: Vec<Requirement>,
    pub policy_hash: String,
}

/// An event the simulation could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Malformed {
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub why: String,
}

/// Counts over the events read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayStats {
    pub events: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Actions submitted before `since`, not replayed.
    pub before_since: u64,
    /// Events of kinds this version does not know (a newer gateway wrote them).
    pub unknown_kinds: u64,
    pub malformed: u64,
    /// Submissions with no decision (yet, or ever), and decisions with no
    /// submission.
    pub unpaired: u64,
    /// Actions whose principal neither the log nor the directory describes.
    pub unknown_principals: u64,
}

/// A submission waiting for its decision.
#[derive(Debug)]
struct Awaiting {
    principal: PrincipalRef,
    submitted: Submitted,
}

/// Reads stored events in log order; see the [module documentation](self).
#[derive(Debug)]
pub struct Replayer {
    since: Option<Timestamp>,
    /// What the log has said of each identity so far.
    identities: HashMap<PrincipalRef, Principal>,
    /// What the directory says now, for identities the log never described
    /// (created before the log began, or by an identity provider).
    directory: HashMap<PrincipalRef, Principal>,
    awaiting: HashMap<String, Awaiting>,
    malformed: Vec<Malformed>,
    stats: ReplayStats,
}

impl Replayer {
    /// Replays actions submitted at or after `since` (all if `None`);
    /// `directory` describes principals the log does not.
    pub fn new(since: Option<Timestamp>, directory: Vec<Principal>) -> Self {
        Self {
            since,
            identities: HashMap::new(),
            directory: directory.into_iter().map(|p| (p.reference(), p)).collect(),
            awaiting: HashMap::new(),
            malformed: Vec::new(),
            stats: ReplayStats::default(),
        }
    }

    /// Takes in one event (read with [`AuditEvent::parsed`]); a decided
    /// action is appended to `out`.
    pub fn push(&mut self, event: &AuditEvent, parsed: Parsed, out: &mut Vec<Recorded>) {
        self.stats.events += 1;
        self.stats.first_seq.get_or_insert(event.seq);
        self.stats.last_seq = Some(event.seq);
        let known = match parsed {
            Parsed::Known(known) => known,
            Parsed::Unknown(unknown) => {
                match unknown.why {
                    Unreadable::Kind => self.stats.unknown_kinds += 1,
                    Unreadable::Body(why) => self.malformed(event, why),
                }
                return;
            }
        };
        match known {
            Event::ActionSubmitted(submitted) => self.submitted(event, submitted),
            Event::ActionDecided(decided) => {
                if let Some(recorded) = self.decided(event, decided) {
                    out.push(recorded);
                }
            }
            Event::UserCreated(user) => {
                let principal = Principal {
                    kind: PrincipalKind::User,
                    name: user.name,
                    email: Some(user.email),
                    owner: None,
                    groups: user.groups,
                };
                self.identities.insert(principal.reference(), principal);
            }
            Event::UserUpdated(user) => {
                let principal = Principal {
                    kind: PrincipalKind::User,
                    name: user.name,
                    email: Some(user.email),
                    owner: None,
                    groups: user.groups,
                };
                self.identities.insert(principal.reference(), principal);
            }
            Event::AgentCreated(agent) => {
                let principal = Principal {
                    kind: PrincipalKind::Agent,
                    name: agent.name,
                    email: None,
                    owner: agent.owner,
                    groups: agent.groups,
                };
                self.identities.insert(principal.reference(), principal);
            }
            // A revoked identity submits nothing more; what it submitted
            // before was decided with the groups it had.
            Event::UserRevoked(_)
            | Event::AgentRevoked(_)
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

    fn submitted(&mut self, event: &AuditEvent, submitted: Submitted) {
        if self.since.is_some_and(|since| event.time < since) {
            self.stats.before_since += 1;
            return;
        }
        let Some(principal) = principal_ref(&event.actor) else {
            self.malformed(event, format!("the actor `{}` is not `agent:NAME` or `user:NAME`", event.actor));
            return;
        };
        if self.awaiting.len() >= MAX_AWAITING {
            self.stats.unpaired += 1;
            return;
        }
        if self.awaiting.insert(submitted.id.clone(), Awaiting { principal, submitted }).is_some() {
            // A second submission under one id: neither is trustworthy.
            self.stats.unpaired += 1;
        }
    }

    fn decided(&mut self, event: &AuditEvent, decided: Decided) -> Option<Recorded> {
        let Some(Awaiting { principal, submitted }) = self.awaiting.remove(&decided.id) else {
            if self.since.is_none_or(|since| event.time >= since) {
                self.stats.unpaired += 1;
            }
            return None;
        };
        let outcome = match decided.status {
            Status::Allowed => Outcome::Allowed,
            Status::Pending => Outcome::Pending,
            Status::Denied => Outcome::Denied,
            status @ (Status::Approved | Status::Released | Status::Expired | Status::Cancelled | Status::Revoked) => {
                self.malformed(event, format!("a decision cannot be `{}`", status.as_str()));
                return None;
            }
        };
        let (principal, principal_known) = match self
            .identities
            .get(&principal)
            .or_else(|| self.directory.get(&principal))
        {
            Some(known) => (known.clone(), true),
            None => {
                self.stats.unknown_principals += 1;
                let bare =
                    Principal { kind: principal.kind, name: principal.name, email: None, owner: None, groups: vec![] };
                (bare, false)
            }
        };
        let Submitted { id, kind, resource, payload, on_behalf_of, justification, labels, context, fingerprint: _ } =
            submitted;
        Some(Recorded {
            seq: event.seq,
            time: event.time,
            id,
            principal,
            principal_known,
            action: Action { kind, resource, payload, on_behalf_of, justification, labels, context },
            outcome,
            policies: decided.policies,
            requirements: decided.requirements,
            policy_hash: decided.policy_hash,
        })
    }

    fn malformed(&mut self, event: &AuditEvent, why: String) {
        self.stats.malformed += 1;
        if self.malformed.len() < MAX_MALFORMED_KEPT {
            self.malformed.push(Malformed { seq: event.seq, kind: event.kind.clone(), why });
        }
    }

    /// The counts so far, and the first malformed events.
    pub fn finish(mut self) -> (ReplayStats, Vec<Malformed>) {
        self.stats.unpaired += u64::try_from(self.awaiting.len()).unwrap_or(u64::MAX);
        (self.stats, self.malformed)
    }
}

/// `agent:NAME` or `user:NAME`.
fn principal_ref(actor: &str) -> Option<PrincipalRef> {
    let (kind, name) = actor.split_once(':')?;
    if name.is_empty() {
        return None;
    }
    match kind {
        "agent" => Some(PrincipalRef::agent(name)),
        "user" => Some(PrincipalRef::user(name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_audit::{AuditDraft, ChainHead};
    use countersign_core::events::{AgentCreated, Cancelled};
    use serde_json::json;

    /// Seals drafts into a chain, one millisecond apart from `start`.
    fn seal(drafts: Vec<AuditDraft>, start: i64) -> Vec<AuditEvent> {
        let mut head = ChainHead::default();
        drafts
            .iter()
            .enumerate()
            .map(|(i, d)| head.seal(d, Timestamp(start + i64::try_from(i).unwrap())).unwrap())
            .collect()
    }

    fn submitted(id: &str, resource: &str) -> Event {
        Event::ActionSubmitted(
            serde_json::from_value(json!({
                "id": id, "fingerprint": "sha256:00", "kind": "shell.exec", "resource": resource,
                "payload": {"command": "ls"}, "on_behalf_of": null, "justification": null,
                "labels": [], "context": {},
            }))
            .unwrap(),
        )
    }

    fn decided(id: &str, status: &str) -> Event {
        Event::ActionDecided(
            serde_json::from_value(json!({
                "id": id, "status": status, "reason": "r", "policies": ["p"], "errors": [],
                "policy_hash": "sha256:old", "requirements": [], "expires_at": null,
            }))
            .unwrap(),
        )
    }

    fn replay(replayer: &mut Replayer, events: &[AuditEvent]) -> Vec<Recorded> {
        let mut out = Vec::new();
        for event in events {
            replayer.push(event, event.parsed(), &mut out);
        }
        out
    }

    #[test]
    fn pairs_submissions_with_decisions_and_principals_with_their_groups_then() {
        let events = seal(
            vec![
                AuditDraft::new(
                    "cli:root",
                    Event::AgentCreated(AgentCreated {
                        name: "bot".into(),
                        owner: Some("bob".into()),
                        groups: vec!["ci".into()],
                    }),
                ),
                AuditDraft::new("agent:bot", submitted("r1", "prod-web")),
                AuditDraft::new("system", decided("r1", "pending")),
                AuditDraft::new("agent:bot", Event::ActionCancelled(Cancelled { id: "r1".into() })),
                AuditDraft::new("agent:ghost", submitted("r2", "dev-web")),
                AuditDraft::new("system", decided("r2", "allowed")),
            ],
            1000,
        );
        let mut replayer = Replayer::new(None, vec![]);
        let recorded = replay(&mut replayer, &events);
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[0].id, "r1");
        assert_eq!(recorded[0].seq, 3);
        assert_eq!(recorded[0].principal.groups, ["ci"]);
        assert_eq!(recorded[0].principal.owner.as_deref(), Some("bob"));
        assert!(recorded[0].principal_known);
        assert_eq!(recorded[0].outcome, Outcome::Pending);
        assert_eq!(recorded[0].action.resource, "prod-web");
        assert_eq!(recorded[0].policy_hash, "sha256:old");
        assert_eq!(recorded[1].principal.name, "ghost");
        assert!(!recorded[1].principal_known);
        assert!(recorded[1].principal.groups.is_empty());
        let (stats, malformed) = replayer.finish();
        assert_eq!(stats.events, 6);
        assert_eq!(stats.unknown_principals, 1);
        assert_eq!((stats.first_seq, stats.last_seq), (Some(1), Some(6)));
        assert!(malformed.is_empty());
    }

    #[test]
    fn the_directory_describes_principals_the_log_does_not() {
        let events = seal(
            vec![
                AuditDraft::new("user:ann", submitted("r1", "db")),
                AuditDraft::new("system", decided("r1", "denied")),
            ],
            0,
        );
        let ann = Principal {
            kind: PrincipalKind::User,
            name: "ann".into(),
            email: Some("ann@example.com".into()),
            owner: None,
            groups: vec!["dba".into()],
        };
        let mut replayer = Replayer::new(None, vec![ann.clone()]);
        let recorded = replay(&mut replayer, &events);
        assert_eq!(recorded[0].principal, ann);
        assert_eq!(recorded[0].outcome, Outcome::Denied);
    }

    #[test]
    fn actions_before_since_are_skipped_but_identities_are_read() {
        let events = seal(
            vec![
                AuditDraft::new(
                    "cli:root",
                    Event::AgentCreated(AgentCreated { name: "bot".into(), owner: None, groups: vec!["ci".into()] }),
                ),
                AuditDraft::new("agent:bot", submitted("old", "web")),
                AuditDraft::new("system", decided("old", "allowed")),
                AuditDraft::new("agent:bot", submitted("new", "web")),
                AuditDraft::new("system", decided("new", "allowed")),
            ],
            0,
        );
        let mut replayer = Replayer::new(Some(Timestamp(3)), vec![]);
        let recorded = replay(&mut replayer, &events);
        assert_eq!(recorded.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["new"]);
        assert_eq!(recorded[0].principal.groups, ["ci"]);
        let (stats, _) = replayer.finish();
        assert_eq!(stats.before_since, 1);
        assert_eq!(stats.unpaired, 0);
    }

    #[test]
    fn malformed_events_are_reported_and_the_rest_replays() {
        let mut events = seal(
            vec![
                AuditDraft::raw("agent:bot", "action.submitted", json!({"id": 5})),
                AuditDraft::raw("agent:bot", "action.decided", json!("nope")),
                AuditDraft::raw("agent:bot", "something.new", json!({})),
                AuditDraft::new("robot", submitted("r0", "web")),
                AuditDraft::new("agent:bot", submitted("r1", "web")),
                AuditDraft::new("system", decided("r1", "released")),
                AuditDraft::new("agent:bot", submitted("r2", "web")),
                AuditDraft::new("system", decided("r2", "allowed")),
                AuditDraft::new("system", decided("r9", "allowed")),
                AuditDraft::new("agent:bot", submitted("r3", "web")),
            ],
            0,
        );
        // A body that is not JSON at all (a hand-edited store).
        events[0].body = "{not json".into();
        let mut replayer = Replayer::new(None, vec![]);
        let recorded = replay(&mut replayer, &events);
        assert_eq!(recorded.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r2"]);
        let (stats, malformed) = replayer.finish();
        assert_eq!(stats.malformed, 4, "{malformed:?}");
        assert_eq!(malformed.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 4, 6]);
        assert!(malformed[2].why.contains("`robot`"), "{malformed:?}");
        assert!(malformed[3].why.contains("`released`"), "{malformed:?}");
        assert_eq!(stats.unknown_kinds, 1);
        // r9 decided without a submission; r3 submitted without a decision.
        assert_eq!(stats.unpaired, 2);
    }

    #[test]
    fn waiting_submissions_are_bounded() {
        let drafts =
            (0..MAX_AWAITING + 5).map(|i| AuditDraft::new("agent:bot", submitted(&format!("r{i}"), "web"))).collect();
        let events = seal(drafts, 0);
        let mut replayer = Replayer::new(None, vec![]);
        assert!(replay(&mut replayer, &events).is_empty());
        assert_eq!(replayer.awaiting.len(), MAX_AWAITING);
        let (stats, _) = replayer.finish();
        assert_eq!(stats.unpaired, u64::try_from(MAX_AWAITING + 5).unwrap());
    }
}
