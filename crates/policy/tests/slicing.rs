//! Slicing never changes a decision: for random policy sets and requests,
//! `decide` (sliced) and `decide_unsliced` agree on verdict, policies,
//! errors and reason.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod common;

use common::*;
use countersign_core::{Action, Principal, PrincipalKind};
use countersign_policy::{PolicyEngine, PolicySource, Verdict};
use proptest::prelude::*;
use serde_json::json;

const KINDS: [&str; 5] = ["k0", "k1", "k2", "k3", "k4"];
const RESOURCES: [&str; 5] = ["r0", "r1", "r2", "r3", "r4"];

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        (0..4_u8).prop_map(|g| format!("principal in Group::\"g{g}\"")),
        (0..3_u8).prop_map(|a| format!("principal == Agent::\"a{a}\"")),
        Just("principal is User".to_owned()),
        (0..4_u8).prop_map(|g| format!("principal is Agent in Group::\"g{g}\"")),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just("action".to_owned()),
        4 => (0..5_usize).prop_map(|k| format!("action == Action::\"{}\"", KINDS[k])),
        2 => (0..5_usize, 0..5_usize).prop_map(|(a, b)| format!("action in [Action::\"{}\", Action::\"{}\"]", KINDS[a], KINDS[b])),
        1 => Just("action == Ns::Action::\"k0\"".to_owned()),
        1 => Just("action in [Ns::Action::\"k1\", Action::\"k1\"]".to_owned()),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("resource".to_owned()),
        4 => (0..5_usize).prop_map(|r| format!("resource == Resource::\"{}\"", RESOURCES[r])),
        2 => (0..5_usize).prop_map(|r| format!("resource in Resource::\"{}\"", RESOURCES[r])),
        1 => Just("resource is Resource".to_owned()),
        1 => Just("resource is Other".to_owned()),
        1 => (0..5_usize).prop_map(|r| format!("resource is Resource in Resource::\"{}\"", RESOURCES[r])),
        1 => Just("resource == Other::\"r0\"".to_owned()),
        1 => Just("resource in Group::\"g0\"".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        2 => (0..3_u8).prop_map(|l| format!(" when {{ context.labels.contains(\"l{l}\") }}")),
        1 => Just(" when { resource.name like \"r1*\" }".to_owned()),
        // Errors for every request: the attribute never exists.
        2 => Just(" when { context.payload.missing > 1 }".to_owned()),
        // Errors unless the payload has `n`.
        2 => Just(" when { context.payload.n > 2 }".to_owned()),
        1 => Just(" unless { principal.name == \"a1\" }".to_owned()),
        // Errors when `x` is a Long or absent.
        1 => Just(" when { context.context.x.lessThan(decimal(\"0.5\")) }".to_owned()),
        1 => Just(" when { context has justification && context.justification like \"*ok*\" }".to_owned()),
        // Risk facts: present (empty) for every request here; reading a
        // record these kinds lack errors.
        1 => Just(" when { context.facts has sql }".to_owned()),
        1 => Just(" when { context.facts.shell.destructive }".to_owned()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.3),
        principal_scope(),
        action_scope(),
        resource_scope(),
        condition(),
    )
        .prop_map(|(forbid, approval, p, a, r, c)| {
            let effect = if forbid { "forbid" } else { "permit" };
            let annotation = if approval && !forbid { "@approvers(\"sre\") " } else { "" };
            format!("{annotation}{effect}({p}, {a}, {r}){c};")
        })
}

fn principal() -> impl Strategy<Value = Principal> {
    (prop::bool::ANY, 0..3_u8, prop::collection::vec(0..4_u8, 0..3)).prop_map(|(user, n, groups)| Principal {
        kind: if user { PrincipalKind::User } else { PrincipalKind::Agent },
        name: format!("a{n}"),
        email: None,
        owner: None,
        groups: groups.into_iter().map(|g| format!("g{g}")).collect(),
    })
}

fn request_action() -> impl Strategy<Value = Action> {
    (
        0..7_usize,
        0..7_usize,
        prop::collection::vec(0..3_u8, 0..3),
        prop_oneof![Just(json!(null)), Just(json!({})), (0..5_i64).prop_map(|n| json!({"n": n}))],
        prop_oneof![Just(json!({})), Just(json!({"x": 0.25})), Just(json!({"x": 1}))],
        prop::option::of(prop_oneof![Just("ok then".to_owned()), Just("no".to_owned())]),
    )
        .prop_map(|(k, r, labels, payload, context, justification)| {
            let mut a = action(
                KINDS.get(k).copied().unwrap_or(if k == 5 { "unnamed" } else { "k1x" }),
                RESOURCES.get(r).copied().unwrap_or(if r == 5 { "unnamed" } else { "r1-more" }),
            );
            a.labels = labels.into_iter().map(|l| format!("l{l}")).collect();
            a.payload = payload;
            a.context = context.as_object().cloned().unwrap_or_default();
            a.justification = justification;
            a
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sliced_and_unsliced_decisions_agree(
        policies in prop::collection::vec(policy(), 0..14),
        requests in prop::collection::vec((principal(), request_action()), 1..12),
    ) {
        let text = policies.join("\n");
        let engine = PolicyEngine::from_sources(vec![PolicySource { file: "p.cedar".into(), text: text.clone() }], None, defaults());
        let engine = match engine {
            Ok(engine) => engine,
            Err(e) => panic!("generated policies must load: {}\n{text}", e.problems().join("\n")),
        };
        for (principal, action) in &requests {
            let sliced = engine.decide(principal, action);
            let unsliced = engine.decide_unsliced(principal, action);
            prop_assert_eq!(&sliced, &unsliced, "policies:\n{}\nrequest: {:?} {:?}", text, principal, action);
        }
    }
}

#[test]
fn the_coarse_fallback_agrees_too() {
    // Hundreds of any-action policies each naming its own resource, times
    // many named kinds, exceed the fine-slice budget.
    let mut text = String::new();
    for k in 0..30 {
        text.push_str(&format!(
            "permit(principal, action == Action::\"k{k}\", resource) when {{ context.labels.contains(\"l{k}\") }};\n"
        ));
    }
    for r in 0..300 {
        text.push_str(&format!(
            "forbid(principal, action, resource == Resource::\"r{r}\") when {{ context.payload.n > {r} }};\n"
        ));
    }
    let engine =
        PolicyEngine::from_sources(vec![PolicySource { file: "big.cedar".into(), text }], None, defaults()).unwrap();
    assert!(engine.slice_count() <= 31, "expected per-action slices, got {}", engine.slice_count());
    let mut a = action("k3", "r7");
    a.labels = vec!["l3".into()];
    a.payload = json!({"n": 3});
    let d = engine.decide(&agent("a", &[]), &a);
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(d, engine.decide_unsliced(&agent("a", &[]), &a));
    a.payload = json!({"n": 30});
    let d = engine.decide(&agent("a", &[]), &a);
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    assert_eq!(d, engine.decide_unsliced(&agent("a", &[]), &a));
    a.payload = json!(null);
    let d = engine.decide(&agent("a", &[]), &a);
    assert_eq!((d.verdict.clone(), d.policies.clone()), (Verdict::Deny, vec!["big.37".to_owned()]), "{d:?}");
    assert_eq!(d, engine.decide_unsliced(&agent("a", &[]), &a));
}

#[test]
fn fine_slices_are_shared_and_small() {
    let mut text = String::new();
    for k in 0..20 {
        for r in 0..10 {
            text.push_str(&format!("permit(principal, action == Action::\"k{k}\", resource == Resource::\"r{r}\");\n"));
        }
    }
    let engine =
        PolicyEngine::from_sources(vec![PolicySource { file: "grid.cedar".into(), text }], None, defaults()).unwrap();
    // One slice per (kind, resource) pair plus the shared empty fallback.
    assert_eq!(engine.slice_count(), 201);
    let d = engine.decide(&agent("a", &[]), &action("k3", "r4"));
    assert_eq!(d.policies, vec!["grid.34"]);
}
