//! The starter policy loads, decides as its comments promise, and its
//! shipped cases pass.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod common;

use std::time::Duration;

use common::*;
use countersign_policy::cases::{parse_cases, run, Expect};
use countersign_policy::{PolicyEngine, PolicySource, Verdict, STARTER_CASES, STARTER_POLICY};

fn starter() -> PolicyEngine {
    PolicyEngine::from_sources(
        vec![PolicySource { file: "starter.cedar".into(), text: STARTER_POLICY.into() }],
        None,
        defaults(),
    )
    .unwrap()
}

#[test]
fn starter_loads_with_named_policies() {
    let e = starter();
    assert_eq!(
        e.policy_ids(),
        vec!["routine-nonprod", "prod-needs-sre", "prod-pii-sql-needs-two-dbas", "no-destructive-agents-in-prod"]
    );
}

#[test]
fn starter_verdicts() {
    let e = starter();
    let bot = agent("deploy-bot", &["deployers"]);
    assert_eq!(e.decide(&bot, &action("shell.exec", "staging-web")).verdict, Verdict::Allow);

    let d = e.decide(&bot, &action("shell.exec", "prod-web"));
    let Verdict::RequireApproval(reqs) = d.verdict else { panic!("{d:?}") };
    assert_eq!(reqs.len(), 1);
    assert_eq!((reqs[0].groups.clone(), reqs[0].quorum), (vec!["sre".to_owned()], 1));
    assert_eq!((reqs[0].timeout, reqs[0].valid_for), (Duration::from_secs(1800), Duration::from_secs(600)));
    assert_eq!(d.reason, "needs approval: `prod-needs-sre` (1 of sre)");

    let d = e.decide(&bot, &sql("prod-db", "SELECT email FROM users", &["pii"]));
    let Verdict::RequireApproval(reqs) = d.verdict else { panic!("{d:?}") };
    let summary: Vec<(String, u32)> = reqs.iter().map(|r| (r.policy.clone(), r.quorum)).collect();
    assert_eq!(summary, vec![("prod-needs-sre".to_owned(), 1), ("prod-pii-sql-needs-two-dbas".to_owned(), 2)]);

    let drop = sql("prod-db", "DROP TABLE users", &["destructive"]);
    let d = e.decide(&bot, &drop);
    assert_eq!((d.verdict, d.reason.as_str()), (Verdict::Deny, "denied by `no-destructive-agents-in-prod`"));
    assert!(matches!(e.decide(&agent("x", &["break-glass"]), &drop).verdict, Verdict::RequireApproval(_)));
    assert!(matches!(e.decide(&user("erin", &[]), &drop).verdict, Verdict::RequireApproval(_)));
    assert_eq!(e.decide(&bot, &sql("staging-db", "DROP TABLE users", &["destructive"])).verdict, Verdict::Allow);
}

#[test]
fn starter_cases_pass() {
    let cases = parse_cases("cases.json", STARTER_CASES).unwrap();
    assert!(cases.len() >= 5);
    let results = run(&starter(), &cases);
    for r in &results {
        assert!(r.passed, "{r:?}");
        assert!(r.errors.is_empty(), "{r:?}");
    }
    for outcome in [Expect::Allowed, Expect::Pending, Expect::Denied] {
        assert!(results.iter().any(|r| r.outcome == outcome), "no case covers {outcome:?}");
    }
}
