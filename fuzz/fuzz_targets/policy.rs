//! A policy file: load it and, if it loads, decide a few actions with it,
//! by the sliced evaluation the gateway uses and by the whole set, which
//! must agree.
#![no_main]

use std::time::Duration;

use countersign_core::{Action, Principal, PrincipalKind};
use countersign_policy::{Defaults, PolicyEngine, PolicySource};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn action(kind: &str, resource: &str, payload: serde_json::Value, labels: &[&str]) -> Action {
    Action {
        kind: kind.into(),
        resource: resource.into(),
        payload,
        on_behalf_of: None,
        justification: None,
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        context: serde_json::Map::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let defaults = Defaults { timeout: Duration::from_secs(60), valid_for: Duration::from_secs(60) };
    let source = PolicySource { file: "fuzz.cedar".into(), text: text.into() };
    let Ok(engine) = PolicyEngine::from_sources(vec![source], None, defaults) else { return };
    let agent = Principal {
        kind: PrincipalKind::Agent,
        name: "a".into(),
        email: None,
        owner: Some("alice".into()),
        groups: vec!["g".into()],
    };
    let user = Principal {
        kind: PrincipalKind::User,
        name: "ann".into(),
        email: Some("ann@example.com".into()),
        owner: None,
        groups: vec!["sre".into(), "dba".into()],
    };
    let actions = [
        action("shell.exec", "prod", json!({"argv": ["ls"]}), &["pii"]),
        action("sql.execute", "prod-db", json!({"statement": "DELETE FROM t"}), &[]),
        action("k8s.apply", "staging-cluster", json!({"args": ["apply", "-f", "x.yaml"]}), &["destructive"]),
        action("terraform.apply", "a", json!({"plan": {"format_version": "1"}}), &[]),
    ];
    for principal in [&agent, &user] {
        for action in &actions {
            let sliced = engine.decide(principal, action);
            let whole = engine.decide_unsliced(principal, action);
            assert_eq!(sliced, whole, "slicing changed the decision of {} on {}", action.kind, action.resource);
        }
    }
});
