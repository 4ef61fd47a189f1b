//! The identity provider's JWTs as API bearer tokens, against a real
//! `oidc-provider`: accepted when valid, still accepted after the provider
//! rotates its signing key (the key set is fetched again on the unknown
//! `kid`), and refused when tampered with or minted for another audience.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use countersign_testkit::Cast;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_jwts_are_checked_through_key_rotation() {
    let (idp, gateway) = support::start("").await;

    // A valid token: the person behind it, with the provider's groups.
    let token = idp.id_token(("countersign", "console-secret"), "alice").await;
    let (status, me) = gateway.whoami(&token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["kind"], "user");
    assert!(me["groups"].as_array().unwrap().iter().any(|g| g == "sre"), "{me}");

    // Tampered: one character of the payload changed (email swapped for another user's).
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(engine.decode(parts[1]).unwrap()).unwrap();
    let forged = payload.replace("alice@example.com", "carol@example.com");
    let tampered = format!("{}.{}.{}", parts[0], engine.encode(forged), parts[2]);
    assert_eq!(gateway.whoami(&tampered).await.0, 401, "a tampered token must be refused");
    let mut sig = parts[2].to_owned();
    let last = if sig.ends_with('A') { 'B' } else { 'A' };
    sig.pop();
    sig.push(last);
    assert_eq!(gateway.whoami(&format!("{}.{}.{sig}", parts[0], parts[1])).await.0, 401, "a bad signature");

    // The wrong audience: a real token of the same provider, for another client.
    let other = idp.id_token(("other-app", "other-secret"), "alice").await;
    assert_eq!(gateway.whoami(&other).await.0, 401, "a token for another audience must be refused");

    // Key rotation: a token signed with the new key is checked after the
    // gateway fetches the key set again; the retired key no longer verifies.
    idp.rotate_keys().await;
    let rotated = idp.id_token(("countersign", "console-secret"), "alice").await;
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&rotated), kid(&token), "the provider signs with a new key");
    let (status, me) = gateway.whoami(&rotated).await;
    assert_eq!(status, 200, "the new key is fetched on its unknown kid: {me}");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(gateway.whoami(&token).await.0, 401, "the retired key is gone from the key set");

    // Every refusal is in the audit log.
    let events = gateway.store.audit_events(0, 10_000).await.unwrap();
    let refusals = events.iter().filter(|e| e.kind == "request.rejected").count();
    assert!(refusals >= 4, "refused bearer tokens are audited ({refusals})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_tokens_for_people_can_be_switched_off() {
    let (_idp, gateway) = support::start("local_tokens_for_humans = false").await;
    let dana = Cast::new().user("dana", "dana@example.com", &[]).enrol(gateway.store.as_ref()).await;
    assert_eq!(gateway.whoami(dana.get("dana")).await.0, 401, "people must sign in through the provider");
    assert_eq!(gateway.whoami(gateway.token("deploy-bot")).await.0, 200, "agents keep their keys");
}
