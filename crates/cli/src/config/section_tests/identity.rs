use super::super::testing::load;
use super::super::*;

#[test]
fn identity_defaults_to_local_tokens_only() {
    let c = load("", &[]).unwrap();
    assert!(c.identity.oidc.is_none());
    assert!(c.identity.local_tokens_for_humans);
    assert!(c.identity.console.enabled);
    assert_eq!(c.identity.step_up_max_age(), None);
}

#[test]
fn oidc_defaults_follow_the_public_url() {
    let c = load(
        "[server]\npublic_url = \"https://cs.example.com/\"\n[oidc]\nissuer = \"https://idp.example.com/\"\nclient_id = \"cs\"\n",
        &[("COUNTERSIGN_OIDC_CLIENT_SECRET", "s3cret")],
    )
    .unwrap();
    let oidc = c.identity.oidc.unwrap();
    assert_eq!(oidc.issuer, "https://idp.example.com");
    assert_eq!(oidc.redirect_url, "https://cs.example.com/console/callback");
    assert_eq!(oidc.audiences, vec!["cs".to_owned()]);
    assert_eq!(oidc.client_secret.unwrap().expose(), "s3cret");
    assert_eq!(oidc.groups_claim, "groups");
    assert_eq!(oidc.step_up_max_age, Duration::from_secs(300));
}

#[test]
fn plain_http_issuers_only_on_loopback() {
    let bad = load("[oidc]\nissuer = \"http://idp.example.com\"\nclient_id = \"cs\"\n", &[]).unwrap_err();
    assert!(bad.to_string().starts_with("`oidc.issuer`"), "{bad}");
    assert!(load("[oidc]\nissuer = \"http://127.0.0.1:9000/oidc\"\nclient_id = \"cs\"\n", &[]).is_ok());
}

#[test]
fn local_tokens_can_be_switched_off_only_with_an_idp() {
    let err = load("[oidc]\nlocal_tokens_for_humans = false\n", &[]).unwrap_err();
    assert!(err.to_string().contains("oidc.issuer"), "{err}");
    let c = load(
        "[oidc]\nissuer = \"https://idp.example.com\"\nclient_id = \"cs\"\nlocal_tokens_for_humans = false\n",
        &[],
    )
    .unwrap();
    assert!(!c.identity.local_tokens_for_humans);
}

#[test]
fn workload_rules_must_match_something() {
    let text = "[[workload_identity]]\nissuer = \"https://token.actions.githubusercontent.com\"\naudience = \"cs\"\n\
                [[workload_identity.rules]]\nagent = \"gha\"\n";
    let err = load(text, &[]).unwrap_err();
    assert!(err.to_string().starts_with("`workload_identity.rules.claims`"), "{err}");
    let text = "[[workload_identity]]\nissuer = \"https://token.actions.githubusercontent.com\"\naudience = \"cs\"\n\
                [[workload_identity.rules]]\nagent = \"gha-{repository_owner}\"\nclaims = { repository = \"acme/*\" }\n";
    let c = load(text, &[]).unwrap();
    assert_eq!(c.identity.workload_identity[0].rules[0].agent, "gha-{repository_owner}");
    assert_eq!(c.identity.workload_identity[0].name, "https://token.actions.githubusercontent.com");
}

#[test]
fn console_sessions_are_checked() {
    assert!(load("[console]\nsession_ttl = \"5s\"\n", &[]).is_err());
    let c = load("[console]\nsession_ttl = \"1h\"\nsecure_cookies = false\n", &[]).unwrap();
    assert_eq!(c.identity.console.session_ttl, Duration::from_secs(3600));
    assert!(!c.identity.console.secure_cookies);
}
