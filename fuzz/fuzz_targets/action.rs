//! An action body as a client sends it, through what the gateway does
//! with it: the repeated-key check, parsing, validation, the fingerprint,
//! and a decision by the starter policy (which derives the risk facts),
//! on a thread with a worker thread's stack. A valid action always has a
//! fingerprint, and reads back from its own JSON as the same action.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use countersign_core::json::has_duplicate_keys;
use countersign_core::{Action, Fingerprint, Principal, PrincipalKind, PrincipalRef};
use countersign_policy::{Defaults, PolicyEngine, PolicySource, STARTER_POLICY};
use libfuzzer_sys::fuzz_target;

/// The stack of a Tokio worker thread, where the gateway decides.
const WORKER_STACK: usize = 2 * 1024 * 1024;

fn starter() -> Option<&'static PolicyEngine> {
    static ENGINE: OnceLock<Option<PolicyEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let defaults = Defaults { timeout: Duration::from_secs(60), valid_for: Duration::from_secs(60) };
            let source = PolicySource { file: "starter.cedar".into(), text: STARTER_POLICY.into() };
            PolicyEngine::from_sources(vec![source], None, defaults).ok()
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    if has_duplicate_keys(data) {
        return;
    }
    let Ok(action) = serde_json::from_slice::<Action>(data) else { return };
    if action.validate().is_err() {
        return;
    }
    let by = PrincipalRef::agent("fuzz");
    let fingerprint = Fingerprint::of(&action, &by).map(|f| f.as_str().to_owned());
    assert!(fingerprint.is_ok(), "a valid action has a fingerprint: {fingerprint:?}");
    let text = serde_json::to_vec(&action).unwrap_or_default();
    let again: Action = match serde_json::from_slice(&text) {
        Ok(again) => again,
        Err(e) => panic!("an action's own JSON does not read back: {e}"),
    };
    assert_eq!(again, action);
    assert_eq!(Fingerprint::of(&again, &by).map(|f| f.as_str().to_owned()), fingerprint);
    let Some(engine) = starter() else { panic!("the starter policy loads") };
    let principal = Principal {
        kind: PrincipalKind::Agent,
        name: "fuzz".into(),
        email: None,
        owner: None,
        groups: vec!["deployers".into()],
    };
    let worker = std::thread::Builder::new().stack_size(WORKER_STACK).spawn(move || {
        let _ = engine.decide(&principal, &action);
    });
    if let Ok(worker) = worker {
        if worker.join().is_err() {
            std::process::abort();
        }
    }
});
