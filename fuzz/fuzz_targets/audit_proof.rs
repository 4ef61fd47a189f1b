//! The signed-log formats read from outside, three ways (the first byte
//! picks one): a C2SP signed note, a checkpoint body, and a tlog-proof
//! file. None may panic; whatever parses must print back as itself, and
//! nothing unsigned by the key may verify.
#![no_main]

use countersign_audit::checkpoint::Checkpoint;
use countersign_audit::note::{self, NoteSigner};
use countersign_audit::proof::{parse_proofs, verify_audit_proofs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    // A fixed key: a note the fuzzer wrote cannot carry its signature.
    let Ok(signer) = NoteSigner::new("fuzz.example/audit", [7; 32]) else { return };
    let verifier = signer.verifier();
    match mode % 3 {
        0 => {
            if let Ok(parsed) = note::parse(text) {
                assert!(text.starts_with(parsed.text));
                assert!(!parsed.signatures.is_empty());
            }
            assert!(verifier.open(text).is_err(), "an unsigned note verified");
        }
        1 => {
            if let Ok(checkpoint) = Checkpoint::parse(text) {
                assert_eq!(checkpoint.to_text(), text, "a checkpoint prints back as itself");
                // Signing what parsed gives a note that opens to the same checkpoint.
                if checkpoint.origin == signer.name() {
                    if let Ok(note) = checkpoint.sign(&signer) {
                        assert_eq!(Checkpoint::open(&note, &verifier).ok(), Some(checkpoint));
                    }
                }
            }
        }
        _ => {
            if let Ok(proofs) = parse_proofs(text) {
                let printed: String = proofs.iter().map(|p| p.to_text()).collect();
                assert_eq!(parse_proofs(&printed).ok(), Some(proofs), "a proof file reads back as itself");
            }
            assert!(verify_audit_proofs(text, &verifier).is_err(), "a proof with an unsigned checkpoint verified");
        }
    }
});
