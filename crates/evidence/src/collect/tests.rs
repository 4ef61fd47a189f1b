//! The collector on hand-built logs shaped as the gateway writes them.

use countersign_audit::{AuditDraft, AuditEvent, ChainHead};
use countersign_core::Timestamp;
use serde_json::{json, Value};

use super::*;
use crate::controls::Status as ControlStatus;

const MIN: i64 = 60_000;

struct Log {
    head: ChainHead,
    events: Vec<AuditEvent>,
}

impl Log {
    fn new() -> Self {
        let mut log = Self { head: ChainHead::default(), events: Vec::new() };
        log.add(
            0,
            "cli:root",
            "identity.user_created",
            json!({"name": "alice", "email": "Alice@Example.com", "groups": ["sre"]}),
        );
        log.add(
            0,
            "cli:root",
            "identity.user_created",
            json!({"name": "bob", "email": "bob@example.com", "groups": ["sre"]}),
        );
        log.add(
            0,
            "cli:root",
            "identity.user_created",
            json!({"name": "olga", "email": "olga@example.com", "groups": ["sre"]}),
        );
        log.add(0, "cli:root", "identity.agent_created", json!({"name": "bot", "owner": "olga", "groups": []}));
        log
    }

    fn add(&mut self, minute: i64, actor: &str, kind: &str, body: Value) {
        let event = self.head.seal(&AuditDraft::raw(actor, kind, body), Timestamp(minute * MIN)).unwrap();
        self.events.push(event);
    }

    fn submit(&mut self, minute: i64, id: &str, actor: &str, on_behalf_of: Option<&str>) {
        self.add(minute, actor, "action.submitted", json!({"context": {}, "fingerprint": format!("sha256:{}", "ab".repeat(32)),
            "id": id, "justification": "<script>alert(1)</script>", "kind": "shell.exec", "labels": [], "on_behalf_of": on_behalf_of,
            "payload": {"argv": ["systemctl", "restart", "web"]}, "resource": "prod-web"}));
    }

    fn decide(&mut self, minute: i64, id: &str, status: &str) {
        self.add(
            minute,
            "gateway",
            "action.decided",
            json!({"id": id, "status": status, "reason": "r", "policies": ["p1"],
            "errors": [], "policy_hash": "sha256:ff", "requirements": [], "expires_at": null}),
        );
    }

    fn vote(&mut self, minute: i64, id: &str, actor: &str, email: &str, kind: &str) {
        self.add(
            minute,
            actor,
            kind,
            json!({"id": id, "fingerprint": format!("sha256:{}", "ab".repeat(32)),
            "person": email, "groups": ["sre"], "comment": null}),
        );
    }

    fn report(&self, period: Period) -> Report {
        let mut collector = Collector::new(period);
        for event in &self.events {
            collector.push(event);
        }
        let report = collector.finish(Timestamp(0), None);
        assert_eq!(report.verification.unreadable_events, 0, "every event is in the gateway's shape");
        report
    }
}

fn all() -> Period {
    Period { since: None, until: None }
}

#[test]
fn an_approved_action_is_told_with_its_approvers_and_wait() {
    let mut log = Log::new();
    log.submit(10, "r1", "agent:bot", None);
    log.decide(10, "r1", "pending");
    log.vote(13, "r1", "user:alice", "alice@example.com", "approval.accepted");
    log.vote(16, "r1", "user:bob", "bob@example.com", "approval.accepted");
    log.add(16, "gateway", "action.approved", json!({"id": "r1", "reason": "met", "release_by": null}));
    log.add(
        17,
        "agent:bot",
        "action.released",
        json!({"id": "r1", "fingerprint": format!("sha256:{}", "ab".repeat(32))}),
    );
    log.add(
        18,
        "agent:bot",
        "outcome.reported",
        json!({"id": "r1", "fingerprint": format!("sha256:{}", "ab".repeat(32)),
        "outcome": {"status": "succeeded", "exit_code": 0, "reported_at": "2026-12-07T00:21:26.892Z"}}),
    );
    let report = log.report(all());
    assert!(report.verification.chain_ok);
    assert_eq!(report.totals.submitted, 1);
    assert_eq!(report.totals.held, 1);
    assert_eq!(report.totals.approved, 1);
    assert_eq!(report.totals.outcomes_succeeded, 1);
    let action = &report.actions[0];
    assert_eq!(action.requester, "agent:bot");
    assert_eq!(
        action.approvals.iter().map(|v| v.person.as_str()).collect::<Vec<_>>(),
        ["alice@example.com", "bob@example.com"]
    );
    assert_eq!(action.state.as_deref(), Some("released"));
    assert_eq!(action.policy_hash.as_deref(), Some("sha256:ff"));
    assert!(report.segregation.violations.is_empty());
    assert_eq!(report.segregation.approved_with_distinct_approvers, 1);
    assert_eq!(report.time_to_decision.count, 1);
    assert_eq!(report.time_to_decision.p50_ms, Some(6 * MIN));
    assert_eq!(report.time_to_decision.buckets[2].count, 1, "6 minutes falls in 5–15 min");
    let segregation = report.controls.iter().find(|c| c.control == "AC-5").unwrap();
    assert_eq!(segregation.status, ControlStatus::Met);
}

#[test]
fn votes_segregation_forbids_are_exceptions() {
    let mut log = Log::new();
    // The agent's owner approves.
    log.submit(1, "r1", "agent:bot", None);
    log.decide(1, "r1", "pending");
    log.vote(2, "r1", "user:olga", "olga@example.com", "approval.accepted");
    // The person it acts for approves, through another identity with the same email.
    log.submit(3, "r2", "agent:other", Some("alice"));
    log.decide(3, "r2", "pending");
    log.vote(4, "r2", "user:alice-admin", "alice@example.com", "approval.accepted");
    // One person fills a quorum of two.
    log.submit(5, "r3", "agent:other", None);
    log.decide(5, "r3", "pending");
    log.vote(6, "r3", "user:bob", "bob@example.com", "approval.accepted");
    log.vote(7, "r3", "user:bob2", "bob@example.com", "approval.accepted");
    log.add(7, "gateway", "action.approved", json!({"id": "r3", "reason": "met", "release_by": null}));
    // A user approves its own request.
    log.submit(8, "r4", "user:bob", None);
    log.decide(8, "r4", "pending");
    log.vote(9, "r4", "user:BOB", "bob@example.com", "denial.accepted");
    let report = log.report(all());
    let rules: Vec<(&str, &str)> =
        report.segregation.violations.iter().map(|v| (v.id.as_str(), v.rule.as_str())).collect();
    assert_eq!(
        rules,
        [
            ("r1", "the owner of the requesting agent voted"),
            ("r2", "the person the action was done for voted"),
            ("r3", "one person counted twice toward a quorum"),
            ("r4", "the requester's own person voted"),
        ]
    );
    assert_eq!(report.segregation.approved_with_distinct_approvers, 0);
    for control in ["AC-5", "A.5.3"] {
        let c = report.controls.iter().find(|c| c.control == control).unwrap();
        assert_eq!(c.status, ControlStatus::Exception, "{control}");
    }
}

#[test]
fn refusals_are_counted_by_kind_and_code() {
    let mut log = Log::new();
    log.add(
        1,
        "user:bob",
        "attempt.refused",
        json!({"id": "r1", "attempt": "approve", "code": "self_approval", "message": "m"}),
    );
    log.add(
        1,
        "anonymous",
        "request.rejected",
        json!({"code": "unauthenticated", "method": "GET", "path": "/v1/actions"}),
    );
    log.add(1, "anonymous", "integration.rejected", json!({"code": "bad_signature", "integration": "slack"}));
    log.add(2, "gateway", "refusals.aggregated", json!({"source": "10.0.0.1", "count": 30,
        "reasons": {"unauthenticated": 20, "rate_limited": 10}, "first": "2026-12-07T00:21:26.892Z", "last": "2026-12-07T00:21:27.892Z", "window_seconds": 60}));
    let report = log.report(all());
    let r = &report.refusals;
    assert_eq!((r.total, r.self_approval, r.bad_credentials, r.integration, r.rate_limited), (33, 1, 21, 1, 10));
    assert_eq!(r.by_code["refusals.aggregated/unauthenticated"], 20);
    assert_eq!(r.by_code["integration.rejected/bad_signature"], 1);
}

#[test]
fn the_period_bounds_what_counts_but_not_what_is_known() {
    let mut log = Log::new();
    log.submit(1, "before", "agent:bot", None);
    log.decide(1, "before", "allowed");
    log.submit(10, "inside", "agent:bot", None);
    log.decide(10, "inside", "pending");
    log.vote(11, "inside", "user:olga", "olga@example.com", "approval.accepted");
    log.add(30, "gateway", "action.expired", json!({"id": "inside", "reason": "deadline"}));
    log.submit(61, "after", "agent:bot", None);
    let report = log.report(Period { since: Some(Timestamp(5 * MIN)), until: Some(Timestamp(60 * MIN)) });
    assert_eq!(report.totals.submitted, 1);
    assert_eq!(report.actions.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["inside"]);
    // The owner, created before the period, is still known.
    assert_eq!(report.segregation.violations.len(), 1);
    assert_eq!(report.closures.len(), 1);
    assert_eq!(report.time_to_decision.max_ms, Some(20 * MIN));
    // The chain is verified whole.
    assert_eq!(report.verification.events, log.events.len() as u64);
}

#[test]
fn a_broken_chain_makes_the_integrity_controls_exceptions() {
    let mut log = Log::new();
    log.submit(1, "r1", "agent:bot", None);
    log.events[1].body = log.events[1].body.replace("bob", "eve");
    let report = log.report(all());
    assert!(!report.verification.chain_ok);
    assert!(report.verification.error.as_deref().unwrap().contains("sequence 2"), "{:?}", report.verification.error);
    for control in ["AU-9", "A.8.15", "CC8.1"] {
        let c = report.controls.iter().find(|c| c.control == control).unwrap();
        assert_eq!(c.status, ControlStatus::Exception, "{control}");
    }
}

#[test]
fn listing_is_bounded_and_counting_is_not() {
    let mut log = Log::new();
    for i in 0..10 {
        log.submit(i, &format!("r{i}"), "agent:bot", None);
    }
    let mut collector = Collector::new(all()).with_max_actions(3);
    for event in &log.events {
        collector.push(event);
    }
    let report = collector.finish(Timestamp(0), None);
    assert_eq!((report.actions.len(), report.actions_omitted, report.totals.submitted), (3, 7, 10));
}

#[test]
fn html_is_self_contained_and_escapes_what_the_log_says() {
    let mut log = Log::new();
    log.submit(1, "r1", "agent:bot", Some("<img src=x onerror=alert(1)>"));
    log.decide(1, "r1", "allowed");
    let html = crate::render_html(&log.report(all()));
    assert!(!html.contains("<script>"), "the justification must be escaped");
    assert!(!html.contains("<img"), "on_behalf_of must be escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for external in ["src=\"http", "href=\"http", "<link", "@import", "<script"] {
        assert!(!html.contains(external), "{external}");
    }
    assert!(html.contains("<svg"), "the chart is inline");
}
