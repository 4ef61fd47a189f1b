//! Workload identity end to end: a stand-in issuer on loopback publishes
//! its discovery document and key set; tokens it signs map to registered
//! agents through the configured rules, and everything else is refused:
//! another audience, an expired token, an unregistered or revoked agent,
//! HMAC and `none` algorithms, an untrusted issuer. Local keys keep working
//! beside it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::routing::get;
use axum::Json;
use base64::Engine as _;
use countersign_core::{PrincipalKind, Timestamp};
use countersign_gateway::identify::AuthError;
use countersign_identity::Identity;
use countersign_testkit::{Builder, Cast};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const KEY: &str = include_str!("fixtures/test-rsa.pem");
const MODULUS_HEX: &str = include_str!("fixtures/test-rsa.modulus.hex");

async fn issuer() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex::decode(MODULUS_HEX.trim()).unwrap());
    let discovery =
        json!({"issuer": url, "authorization_endpoint": format!("{url}/auth"), "jwks_uri": format!("{url}/jwks")});
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "wl-1", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"}]});
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { Json(discovery) }))
        .route("/jwks", get(move || async move { Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn sign(claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("wl-1".into());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(KEY.as_bytes()).unwrap()).unwrap()
}

fn now() -> i64 {
    Timestamp::now().as_millis() / 1000
}

#[tokio::test]
async fn workload_tokens_map_to_registered_agents() {
    let iss = issuer().await;
    let text = format!(
        "[[workload_identity]]\nname = \"ci\"\nissuer = \"{iss}\"\naudience = \"countersign\"\n\
         [[workload_identity.rules]]\nclaims = {{ repository = \"acme/deploy\", ref = \"refs/heads/main\" }}\nagent = \"gha-deploy\"\n\
         [[workload_identity.rules]]\nclaims = {{ repository_owner = \"acme\" }}\nagent = \"gha-{{repository_owner}}\"\n",
    );
    let cast = Cast::new().user("bob", "bob@example.com", &[]).agent("gha-deploy", Some("bob"), &["ci"]);
    let gateway = Builder::new("").config(&text).cast(cast).prepare().await;
    let (store, agent_key) = (gateway.store.clone(), gateway.tokens.get("gha-deploy").to_owned());
    let identity = Identity::from_config(&gateway.config.identity, store.clone()).unwrap();
    let auth = identity.authenticator();

    let claims = |extra: serde_json::Value| {
        let mut base = json!({"iss": iss, "aud": "countersign", "exp": now() + 300, "iat": now(), "sub": "repo:acme/deploy:ref:refs/heads/main",
                              "repository": "acme/deploy", "repository_owner": "acme", "ref": "refs/heads/main"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    };

    // The first matching rule names a registered agent, with its owner.
    let principal = auth.authenticate(&sign(claims(json!({})))).await.unwrap();
    assert_eq!(principal.kind, PrincipalKind::Agent);
    assert_eq!(principal.name, "gha-deploy");
    assert_eq!(principal.owner.as_deref(), Some("bob"));
    assert_eq!(principal.groups, vec!["ci".to_owned()]);

    // The second rule names `gha-acme`, which nobody registered.
    let branch = sign(claims(json!({"ref": "refs/heads/feature"})));
    assert_eq!(auth.authenticate(&branch).await, Err(AuthError::Rejected));
    // No rule matches at all.
    let other = sign(claims(json!({"repository": "evil/deploy", "repository_owner": "evil"})));
    assert_eq!(auth.authenticate(&other).await, Err(AuthError::Rejected));

    // Another audience, an expired token, a tampered one.
    assert_eq!(auth.authenticate(&sign(claims(json!({"aud": "someone-else"})))).await, Err(AuthError::Rejected));
    assert_eq!(auth.authenticate(&sign(claims(json!({"exp": now() - 600})))).await, Err(AuthError::Rejected));
    let good = sign(claims(json!({})));
    let parts: Vec<&str> = good.split('.').collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(engine.decode(parts[1]).unwrap()).unwrap().replace("acme/deploy", "acme/deplo2");
    let tampered = format!("{}.{}.{}", parts[0], engine.encode(payload), parts[2]);
    assert_eq!(auth.authenticate(&tampered).await, Err(AuthError::Rejected));

    // Key confusion: HMAC "signed" with public material, and `none`.
    let hmac = jsonwebtoken::encode(
        &Header { kid: Some("wl-1".into()), ..Header::new(Algorithm::HS256) },
        &claims(json!({})),
        &EncodingKey::from_secret(MODULUS_HEX.as_bytes()),
    )
    .unwrap();
    assert_eq!(auth.authenticate(&hmac).await, Err(AuthError::Rejected));
    let none = format!(
        "{}.{}.",
        engine.encode(r#"{"alg":"none","kid":"wl-1"}"#),
        engine.encode(claims(json!({})).to_string())
    );
    assert!(auth.authenticate(&none).await.is_err());

    // An issuer nobody configured: refused without a network call.
    let foreign = sign(claims(json!({"iss": "https://evil.example"})));
    assert_eq!(auth.authenticate(&foreign).await, Err(AuthError::Rejected));

    // Local keys keep working beside workload identity.
    assert_eq!(auth.authenticate(&agent_key).await.unwrap().name, "gha-deploy");

    // Revocation holds for workload tokens too.
    store.revoke_agent("gha-deploy", Timestamp::now(), vec![]).await.unwrap();
    assert_eq!(auth.authenticate(&sign(claims(json!({})))).await, Err(AuthError::Rejected));

    // The admin page's health line.
    let health = identity.health().await;
    assert_eq!(health.len(), 1);
    assert!(health[0].ok, "{health:?}");
    assert!(health[0].name.contains("ci"));
}
