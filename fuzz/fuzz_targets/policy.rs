//! A policy file: load it and, if it loads, decide one action with it.
#![no_main]

use std::time::Duration;

use countersign_core::{Action, Principal, PrincipalKind};
use countersign_policy::{Defaults, PolicyEngine, PolicySource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let defaults = Defaults { timeout: Duration::from_secs(60), valid_for: Duration::from_secs(60) };
    let source = PolicySource { file: "fuzz.cedar".into(), text: text.into() };
    if let Ok(engine) = PolicyEngine::from_sources(vec![source], None, defaults) {
        let principal = Principal { kind: PrincipalKind::Agent, name: "a".into(), email: None, owner: None, groups: vec!["g".into()] };
        let action = Action {
            kind: "shell.exec".into(),
            resource: "prod".into(),
            payload: serde_json::json!({"argv": ["ls"]}),
            on_behalf_of: None,
            justification: None,
            labels: vec!["pii".into()],
            context: serde_json::Map::new(),
        };
        let _ = engine.decide(&principal, &action);
    }
});
