use super::super::testing::load;
use super::super::*;
use countersign_audit::note::NoteSigner;

#[test]
fn defaults_and_values() {
    let c = load("[server]\npublic_url = \"https://gw.example.com\"\n", &[]).unwrap();
    assert_eq!(c.audit.default_origin, "gw.example.com/audit");
    assert_eq!((c.audit.key.clone(), c.audit.checkpoints), (KeySource::DataDir, true));
    let c = load("[audit]\norigin = \"x.example/log\"\nkey_file = \"/k\"\ncheckpoints = false\ncheckpoint_interval = \"200ms\"\n", &[])
        .unwrap();
    assert_eq!(c.audit.origin.as_deref(), Some("x.example/log"));
    assert_eq!(c.audit.key, KeySource::File("/k".into()));
    assert!(!c.audit.checkpoints);
    assert_eq!(c.audit.checkpoint_interval, Duration::from_millis(200));
}

#[test]
fn the_key_comes_from_the_environment_and_is_masked() {
    let key = NoteSigner::new("gw.example/audit", [1; 32]).unwrap().private_key();
    let c = load("", &[("COUNTERSIGN_AUDIT_KEY", &key)]).unwrap();
    assert_eq!(c.audit.key, KeySource::Inline(Secret::new(key.clone())));
    assert!(!format!("{c:?}").contains(&key[key.len() - 20..]));
}

#[test]
fn unknown_or_bad_keys_are_errors() {
    assert!(load("[audit]\nkey_fil = \"/k\"\n", &[]).is_err());
    let err = load("", &[("COUNTERSIGN_AUDIT_KEY", "PRIVATE+KEY+nope")]).unwrap_err().to_string();
    assert!(err.contains("audit.key"), "{err}");
}
