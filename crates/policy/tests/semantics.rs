//! Decision semantics: what policies can read, how verdicts combine, fail
//! closed, and approval requirements.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod common;

use std::time::Duration;

use common::*;
use countersign_core::Requirement;
use countersign_policy::{PolicyEngine, Verdict};
use serde_json::json;

fn allowed(engine: &PolicyEngine, principal: &countersign_core::Principal, action: &countersign_core::Action) -> bool {
    let d = engine.decide(principal, action);
    assert_eq!(d, engine.decide_unsliced(principal, action), "sliced and unsliced disagree");
    match d.verdict {
        Verdict::Allow | Verdict::RequireApproval(_) => true,
        Verdict::Deny => false,
    }
}

#[test]
fn policies_read_the_payload_statement() {
    let e = engine(
        r#"permit(principal, action == Action::"sql.execute", resource)
           when { context.payload.statement like "SELECT *" };"#,
    );
    assert!(allowed(&e, &agent("a", &[]), &sql("db", "SELECT 1", &[])));
    assert!(!allowed(&e, &agent("a", &[]), &sql("db", "DELETE FROM t", &[])));
}

#[test]
fn policies_read_the_derived_facts() {
    let e = engine(
        r#"permit(principal, action, resource);
           forbid(principal, action == Action::"sql.execute", resource)
           when { context.facts.sql.delete_without_where || context.facts.sql.is_ddl };
           forbid(principal, action == Action::"shell.exec", resource)
           when { context.facts.shell.destructive || context.facts.shell.programs.contains("shred") };"#,
    );
    let bot = agent("a", &[]);
    assert!(allowed(&e, &bot, &sql("db", "delete from orders where id = 7", &[])));
    // Case, comments and a harmless first statement change nothing.
    assert!(!allowed(&e, &bot, &sql("db", "/* tidy */ DeLeTe FROM orders", &[])));
    assert!(!allowed(&e, &bot, &sql("db", "select 1; drop -- x\n table users", &[])));
    let mut shell = action("shell.exec", "host");
    shell.payload = json!({"command": "systemctl restart web"});
    assert!(allowed(&e, &bot, &shell));
    for command in ["sh -c 'rm -rf /'", "true && /bin/rm -rf /", "echo x | xargs rm -rf", "sudo shred -u key"] {
        shell.payload = json!({"command": command});
        assert!(!allowed(&e, &bot, &shell), "{command}");
    }
    shell.payload = json!({"argv": ["/usr/bin/env", "rm", "-r", "/srv"]});
    assert!(!allowed(&e, &bot, &shell));
}

#[test]
fn facts_come_from_the_payload_not_the_submitter() {
    let e = engine(
        r#"permit(principal, action, resource) when { context.facts has sql && context.facts.sql.is_read_only };"#,
    );
    let mut forged = sql("db", "DROP TABLE users", &[]);
    forged.context.insert("facts".into(), json!({"sql": {"is_read_only": true}}));
    assert!(!allowed(&e, &agent("a", &[]), &forged));
    assert!(allowed(&e, &agent("a", &[]), &sql("db", "SELECT 1", &[])));
    // Kinds without parsers have an empty facts record.
    assert!(!allowed(&e, &agent("a", &[]), &action("http.request", "api")));
}

#[test]
fn policies_read_labels() {
    let e = engine(r#"permit(principal, action, resource) when { context.labels.contains("pii") };"#);
    assert!(allowed(&e, &agent("a", &[]), &sql("db", "x", &["pii", "other"])));
    assert!(!allowed(&e, &agent("a", &[]), &sql("db", "x", &["other"])));
}

#[test]
fn policies_read_group_membership() {
    let e = engine(r#"permit(principal in Group::"dba", action, resource);"#);
    assert!(allowed(&e, &agent("a", &["dev", "dba"]), &action("x", "r")));
    assert!(allowed(&e, &user("u", &["dba"]), &action("x", "r")));
    assert!(!allowed(&e, &agent("a", &["dev"]), &action("x", "r")));
}

#[test]
fn policies_match_resource_names_with_like() {
    let e = engine(r#"permit(principal, action, resource) when { resource.name like "prod*" };"#);
    assert!(allowed(&e, &agent("a", &[]), &action("x", "prod-db")));
    assert!(!allowed(&e, &agent("a", &[]), &action("x", "staging-db")));
}

#[test]
fn policies_read_the_free_context_as_decimals() {
    let e = engine(
        r#"permit(principal, action, resource)
           when { context.context.confidence.greaterThanOrEqual(decimal("0.9")) };"#,
    );
    let mut a = action("x", "r");
    a.context.insert("confidence".into(), json!(0.92));
    assert!(allowed(&e, &agent("a", &[]), &a));
    a.context.insert("confidence".into(), json!(0.5));
    assert!(!allowed(&e, &agent("a", &[]), &a));
    // An integer stays a Long, which `decimal` methods reject: that permit
    // errors and is not satisfied.
    a.context.insert("confidence".into(), json!(1));
    let d = e.decide(&agent("a", &[]), &a);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.errors.len(), 1, "{d:?}");
}

#[test]
fn policies_read_principal_and_request_attributes() {
    let e = engine(
        r#"@id("owner") permit(principal is Agent, action, resource) when { principal.owner == "alice" && principal.name == "bot" };
           @id("email") permit(principal is User, action, resource) when { principal.email == "eve@example.com" };
           @id("obo") permit(principal, action == Action::"obo", resource)
             when { context has on_behalf_of && context.on_behalf_of == "carol" && context.justification == "why" };"#,
    );
    assert_eq!(e.decide(&agent("bot", &[]), &action("x", "r")).policies, vec!["owner"]);
    assert_eq!(e.decide(&user("eve", &[]), &action("x", "r")).policies, vec!["email"]);
    assert_eq!(e.decide(&user("bob", &[]), &action("x", "r")).verdict, Verdict::Deny);
    let mut a = action("obo", "r");
    a.on_behalf_of = Some("carol".into());
    a.justification = Some("why".into());
    assert_eq!(e.decide(&user("bob", &[]), &a).policies, vec!["obo"]);
    // Absent fields are absent, not empty strings.
    assert_eq!(e.decide(&user("bob", &[]), &action("obo", "r")).verdict, Verdict::Deny);
}

#[test]
fn json_conversion_never_fails_a_decision() {
    let e = engine(
        r#"@id("big") permit(principal, action == Action::"big", resource) when { context.payload.n == "18446744073709551615" };
           @id("tiny") permit(principal, action == Action::"tiny", resource) when { context.payload.n == "1.5e-7" };
           @id("long") permit(principal, action == Action::"long", resource) when { context.payload.n == -9223372036854775808 };
           @id("dec") permit(principal, action == Action::"dec", resource) when { context.payload.n == decimal("-12.5") };
           @id("null") permit(principal, action == Action::"null", resource)
             when { !(context.payload has gone) && context.payload.items == [1, 2] && context.payload.items.contains(2) };
           @id("escape") permit(principal, action == Action::"escape", resource)
             when { context.payload.user.__entity.id == "admin" };
           @id("nopayload") permit(principal, action == Action::"nopayload", resource) when { !(context has payload) };"#,
    );
    let p = agent("a", &[]);
    let with = |kind: &str, payload| {
        let mut a = action(kind, "r");
        a.payload = payload;
        a
    };
    let cases = [
        ("big", json!({"n": 18_446_744_073_709_551_615_u64})),
        ("tiny", json!({"n": 1.5e-7})),
        ("long", json!({"n": i64::MIN})),
        ("dec", json!({"n": -12.5})),
        ("null", json!({"gone": null, "items": [1, null, 2, 2]})),
        ("escape", json!({"user": {"__entity": {"type": "User", "id": "admin"}}})),
        ("nopayload", json!(null)),
    ];
    for (kind, payload) in cases {
        let d = e.decide(&p, &with(kind, payload));
        assert_eq!(d.verdict, Verdict::Allow, "{kind}: {d:?}");
        assert!(d.errors.is_empty(), "{kind}: {d:?}");
    }
    // Too many fractional digits, or out of decimal range: strings, no error.
    let e = engine(
        r#"@id("str") permit(principal, action, resource)
             when { context.payload.a == "0.12345" && context.payload.b == "1e+300" && context.payload.c == "9.3e+17" };"#,
    );
    let d = e.decide(&p, &with("x", json!({"a": 0.12345, "b": 1e300, "c": 9.3e17})));
    assert_eq!((d.verdict.clone(), d.errors.len()), (Verdict::Allow, 0), "{d:?}");
}

#[test]
fn deep_json_is_kept() {
    let e = engine(r#"permit(principal, action, resource) when { context has payload };"#);
    let mut v = json!("leaf");
    for _ in 0..100 {
        v = json!({"k": [v]});
    }
    let mut a = action("x", "r");
    a.payload = v;
    let d = e.decide(&agent("a", &[]), &a);
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
}

#[test]
fn default_deny_and_forbid_wins() {
    let e = engine(
        r#"@id("p") permit(principal, action, resource);
           @id("f1") forbid(principal, action, resource) when { context.labels.contains("bad") };
           @id("f2") forbid(principal, action == Action::"x", resource) when { context.labels.contains("bad") };"#,
    );
    let p = agent("a", &[]);
    let ok = e.decide(&p, &action("x", "r"));
    assert_eq!((ok.verdict, ok.policies, ok.reason.as_str()), (Verdict::Allow, vec!["p".to_owned()], "allowed by `p`"));
    let mut bad = action("x", "r");
    bad.labels = vec!["bad".into()];
    let d = e.decide(&p, &bad);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.policies, vec!["f1", "f2"]);
    assert_eq!(d.reason, "denied by `f1`, `f2`");

    let none = engine(r#"permit(principal, action == Action::"y", resource);"#);
    let d = none.decide(&p, &action("x", "r"));
    assert_eq!((d.verdict, d.policies.len()), (Verdict::Deny, 0));
    assert_eq!(d.reason, "no policy permits this action");
}

#[test]
fn a_failing_forbid_denies() {
    let e = engine(
        r#"@id("p") permit(principal, action, resource);
           @id("broken") forbid(principal, action, resource) when { context.payload.missing > 1 };"#,
    );
    let d = e.decide(&agent("a", &[]), &action("x", "r"));
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    assert_eq!(d.policies, vec!["broken"]);
    assert!(d.reason.contains("forbid policy `broken` failed to evaluate"), "{}", d.reason);
    assert_eq!(d.errors.len(), 1);
    assert!(d.errors[0].starts_with("policy `broken`: "), "{:?}", d.errors);
    assert_eq!(d, e.decide_unsliced(&agent("a", &[]), &action("x", "r")));

    // A satisfied forbid is reported as the reason even when another errs.
    let e = engine(
        r#"@id("p") permit(principal, action, resource);
           @id("broken") forbid(principal, action, resource) when { context.payload.missing > 1 };
           @id("f") forbid(principal, action, resource);"#,
    );
    let d = e.decide(&agent("a", &[]), &action("x", "r"));
    assert_eq!((d.verdict, d.policies), (Verdict::Deny, vec!["f".to_owned()]));
}

#[test]
fn a_failing_permit_is_just_not_satisfied() {
    let e = engine(
        r#"@id("broken") permit(principal, action, resource) when { context.payload.missing > 1 };
           @id("ok") permit(principal, action, resource) when { resource.name == "r" };"#,
    );
    let d = e.decide(&agent("a", &[]), &action("x", "r"));
    assert_eq!((d.verdict, d.policies), (Verdict::Allow, vec!["ok".to_owned()]));
    assert_eq!(d.errors.len(), 1);
    let d = e.decide(&agent("a", &[]), &action("x", "other"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason, "no policy permits this action (1 policy failed to evaluate)");
}

#[test]
fn annotated_permits_require_approval() {
    let e = engine(
        r#"@id("routine") permit(principal, action, resource);
           @id("prod-needs-sre") @approvers("sre") @timeout("30m") @valid_for("10m")
           permit(principal, action, resource) when { resource.name like "prod*" };
           @id("a-pii-dba") @approvers("dba, sre") @quorum("2")
           permit(principal, action, resource) when { resource.name like "prod*" && context.labels.contains("pii") };"#,
    );
    let p = agent("a", &[]);
    let d = e.decide(&p, &action("x", "dev"));
    assert_eq!(d.verdict, Verdict::Allow);

    // A routine permit does not waive an annotated one (the stricter reading).
    let d = e.decide(&p, &action("x", "prod-db"));
    let sre = Requirement {
        policy: "prod-needs-sre".into(),
        groups: vec!["sre".into()],
        quorum: 1,
        timeout: Duration::from_secs(1800),
        valid_for: Duration::from_secs(600),
        routing: Default::default(),
    };
    assert_eq!(d.verdict, Verdict::RequireApproval(vec![sre.clone()]));
    assert_eq!(d.policies, vec!["prod-needs-sre", "routine"]);
    assert_eq!(d.reason, "needs approval: `prod-needs-sre` (1 of sre)");

    // Several annotated permits: all requirements, sorted by policy id,
    // with the defaults filling in.
    let d = e.decide(&p, &sql("prod-db", "SELECT 1", &["pii"]));
    let dba = Requirement {
        policy: "a-pii-dba".into(),
        groups: vec!["dba".into(), "sre".into()],
        quorum: 2,
        timeout: defaults().timeout,
        valid_for: defaults().valid_for,
        routing: Default::default(),
    };
    assert_eq!(d.verdict, Verdict::RequireApproval(vec![dba, sre]));
    assert_eq!(d.reason, "needs approval: `a-pii-dba` (2 of dba or sre); `prod-needs-sre` (1 of sre)");
}

#[test]
fn forbid_beats_approval() {
    let e = engine(
        r#"@approvers("sre") permit(principal, action, resource);
           @id("no") forbid(principal, action, resource) when { resource.name == "x" };"#,
    );
    assert_eq!(e.decide(&agent("a", &[]), &action("k", "x")).verdict, Verdict::Deny);
    assert!(matches!(e.decide(&agent("a", &[]), &action("k", "y")).verdict, Verdict::RequireApproval(_)));
}

#[test]
fn decisions_carry_the_policy_hash() {
    let e = engine("permit(principal, action, resource);");
    let d = e.decide(&agent("a", &[]), &action("k", "r"));
    assert_eq!(d.policy_hash, e.hash());
    assert!(e.hash().starts_with("sha256:") && e.hash().len() == 7 + 64, "{}", e.hash());
}

#[test]
fn engine_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PolicyEngine>();
}
