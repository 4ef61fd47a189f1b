//! The one token verifier against a stand-in issuer on loopback that
//! publishes its metadata at a URL of its own under another issuer's name
//! (as the Bot Framework does) and counts how often its key set is read:
//! the policy's algorithms and `kid` rule, issuer, audience, expiry with
//! leeway, endorsements, and the one refetch policy — an unknown `kid`
//! fetches the set once more (so a rotation is picked up on the first
//! token), and made-up `kid`s cannot make it fetch more than about once a
//! second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use base64::Engine as _;
use countersign_core::Timestamp;
use countersign_identity::jwt::TokenError;
use countersign_identity::verifier::{Policy, Verifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const KEY: &str = include_str!("fixtures/test-rsa.pem");
const MODULUS_HEX: &str = include_str!("fixtures/test-rsa.modulus.hex");
const ISSUER: &str = "https://api.example.test";
const AUDIENCE: &str = "app-1";
/// As the Teams channel holds Bot Framework tokens.
const STRICT: Policy = Policy { algorithms: &[Algorithm::RS256], require_kid: true, leeway_secs: 300 };

#[derive(Default)]
struct Issuer {
    keys: Mutex<Vec<Value>>,
    fetches: AtomicUsize,
}

impl Issuer {
    fn publish(&self, kid: &str, endorsements: &[&str]) {
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex::decode(MODULUS_HEX.trim()).unwrap());
        let key = json!({"kty": "RSA", "use": "sig", "kid": kid, "n": n, "e": "AQAB", "endorsements": endorsements});
        self.keys.lock().unwrap().push(key);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// Starts the stand-in; returns its metadata URL.
async fn start(issuer: Arc<Issuer>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metadata = json!({"issuer": ISSUER, "jwks_uri": format!("{base}/keys")});
    let app = axum::Router::new()
        .route("/v1/.well-known/openidconfiguration", get(move || async move { Json(metadata) }))
        .route(
            "/keys",
            get(|State(issuer): State<Arc<Issuer>>| async move {
                issuer.fetches.fetch_add(1, Ordering::SeqCst);
                Json(json!({"keys": issuer.keys.lock().unwrap().clone()}))
            }),
        )
        .with_state(issuer);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("{base}/v1/.well-known/openidconfiguration")
}

fn now() -> i64 {
    Timestamp::now().as_millis() / 1000
}

fn sign(kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(KEY.as_bytes()).unwrap()).unwrap()
}

fn claims(overrides: Value) -> Value {
    let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600});
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

/// What the verifier says of `token`, issued by the metadata's issuer.
async fn verdict(verifier: &Verifier, token: &str) -> Result<Value, TokenError> {
    let issuer = verifier.metadata().await.unwrap().issuer.clone();
    verifier.verify(token, &issuer, &[AUDIENCE.to_owned()]).await.map(Value::Object)
}

fn verifier(url: String, policy: Policy) -> Verifier {
    countersign_identity::install_crypto_provider();
    Verifier::from_metadata_url(reqwest::Client::new(), url, policy)
}

#[tokio::test]
async fn tokens_are_held_to_the_issuer_audience_expiry_and_the_policy() {
    let issuer = Arc::new(Issuer::default());
    issuer.publish("k1", &["msteams"]);
    let verifier = verifier(start(issuer.clone()).await, STRICT);

    let good = sign(Some("k1"), claims(json!({})));
    assert_eq!(verdict(&verifier, &good).await.unwrap()["aud"], AUDIENCE);
    let header = verifier.header(&good).unwrap();
    assert!(verifier.key(&header).await.unwrap().endorses("msteams"));

    let refused = [
        ("no kid", sign(None, claims(json!({}))), TokenError::MissingKeyId),
        ("another issuer", sign(Some("k1"), claims(json!({"iss": "https://evil.test"}))), TokenError::Issuer),
        ("another audience", sign(Some("k1"), claims(json!({"aud": "app-2"}))), TokenError::Audience),
        ("expired beyond the leeway", sign(Some("k1"), claims(json!({"exp": now() - 400}))), TokenError::Expired),
        (
            "not valid for longer than the leeway",
            sign(Some("k1"), claims(json!({"nbf": now() + 400}))),
            TokenError::NotYetValid,
        ),
        (
            "no exp",
            sign(Some("k1"), json!({"iss": ISSUER, "aud": AUDIENCE})),
            TokenError::Claims("`exp` is missing".to_owned()),
        ),
        ("not a JWT", "a.b".to_owned(), TokenError::Malformed),
    ];
    for (name, token, error) in refused {
        assert_eq!(verdict(&verifier, &token).await, Err(error), "{name}");
    }
    // Within the leeway either way.
    let skewed = sign(Some("k1"), claims(json!({"exp": now() - 200, "nbf": now() + 200})));
    assert!(verdict(&verifier, &skewed).await.is_ok());

    // HMAC is refused whatever a policy lists, and RS384 by this one.
    let hmac = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims(json!({})), &EncodingKey::from_secret(b"guess")).unwrap()
    };
    assert_eq!(verdict(&verifier, &hmac).await, Err(TokenError::Algorithm));
    let lax = verifier_with(&issuer, Policy { algorithms: &[Algorithm::HS256, Algorithm::RS256], ..STRICT }).await;
    assert_eq!(verdict(&lax, &hmac).await, Err(TokenError::Algorithm));
    let rs384 = {
        let mut header = Header::new(Algorithm::RS384);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims(json!({})), &EncodingKey::from_rsa_pem(KEY.as_bytes()).unwrap()).unwrap()
    };
    assert_eq!(verdict(&verifier, &rs384).await, Err(TokenError::Algorithm));
    let openid = verifier_with(&issuer, Policy::OPENID).await;
    assert!(verdict(&openid, &rs384).await.is_ok());
    // Without a `kid`, the OpenID policy takes the one key there is.
    assert!(verdict(&openid, &sign(None, claims(json!({})))).await.is_ok());
}

async fn verifier_with(issuer: &Arc<Issuer>, policy: Policy) -> Verifier {
    verifier(start(issuer.clone()).await, policy)
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_keys_once_more_and_no_faster_than_once_a_second() {
    let issuer = Arc::new(Issuer::default());
    issuer.publish("k1", &[]);
    let verifier = Arc::new(verifier(start(issuer.clone()).await, STRICT));
    assert!(verdict(&verifier, &sign(Some("k1"), claims(json!({})))).await.is_ok());
    assert_eq!(issuer.fetches(), 1);
    // Known keys are not fetched again.
    assert!(verdict(&verifier, &sign(Some("k1"), claims(json!({})))).await.is_ok());
    assert_eq!(issuer.fetches(), 1);

    // The issuer rotates: the first token signed with the new key is
    // accepted, after one more fetch.
    issuer.publish("k2", &[]);
    assert!(verdict(&verifier, &sign(Some("k2"), claims(json!({})))).await.is_ok());
    assert_eq!(issuer.fetches(), 2);

    // Made-up kids: each is looked for once more, but a burst of them
    // shares one fetch, and fetches stay a second apart.
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (verifier, token) = (verifier.clone(), sign(Some(&format!("made-up-{n}")), claims(json!({}))));
            tokio::spawn(async move { verdict(&verifier, &token).await })
        })
        .collect();
    let mut verdicts = Vec::new();
    for task in tasks {
        verdicts.push(task.await.unwrap());
    }
    assert!(verdicts.iter().all(|v| *v == Err(TokenError::UnknownKey)), "{verdicts:?}");
    let elapsed = started.elapsed();
    let fetched = issuer.fetches() - 2;
    assert!(fetched >= 1, "an unknown kid is looked for");
    let allowed = 1 + usize::try_from(elapsed.as_secs()).unwrap();
    assert!(fetched <= allowed, "{fetched} fetches in {elapsed:?}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (count, age, error) = verifier.keys_status().await.unwrap();
    assert_eq!((count, error), (2, None));
    assert!(age.is_some());
}
