use super::super::testing::load;
use super::super::RawConfig;
use countersign_siem::config::Destination;

#[test]
fn siem_sinks_are_off_by_default_and_read_from_the_file() {
    assert!(load("", &[]).unwrap().siem.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("hec-token");
    std::fs::write(&token, "t0k3n\n").unwrap();
    let text = format!(
        "[[siem]]\ntype = \"splunk_hec\"\nurl = \"https://splunk.example:8088\"\ntoken_file = {:?}\n\n\
         [[siem]]\nname = \"local\"\ntype = \"ocsf_file\"\npath = \"/var/log/audit.ocsf.jsonl\"\n",
        token.display().to_string()
    );
    let c = load(&text, &[]).unwrap();
    assert_eq!(c.siem.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["siem-0", "siem-local"]);
    match &c.siem[0].destination {
        Destination::SplunkHec { token, .. } => assert_eq!(token.expose(), "t0k3n"),
        other => panic!("{other:?}"),
    }
    assert!(!format!("{:?}", c.siem).contains("t0k3n"));
}

#[test]
fn siem_mistakes_name_their_key() {
    let err = load("[[siem]]\ntype = \"syslog\"\n", &[]).unwrap_err();
    assert!(err.to_string().starts_with("`siem.address`"), "{err}");
    let err = load("[[siem]]\ntype = \"otlp\"\nurl = \"http://c:4318\"\nevents = [\"nope\"]\n", &[]).unwrap_err();
    assert!(err.to_string().starts_with("`siem.events`"), "{err}");
    assert!(RawConfig::parse("c.toml", "[[siem]]\ntype = \"otlp\"\nurll = \"http://c\"\n").is_err());
}
