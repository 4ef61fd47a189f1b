//! An action body as a client sends it: parse, validate, fingerprint.
#![no_main]

use countersign_core::{Action, Fingerprint, PrincipalRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(action) = serde_json::from_slice::<Action>(data) {
        if action.validate().is_ok() {
            let _ = Fingerprint::of(&action, &PrincipalRef::agent("fuzz"));
        }
    }
});
