//! Shared harness of the console's tests: a real gateway on loopback (the
//! test kit's, on a temporary store) with the identity chain and the
//! console wired in as `countersign serve` wires them, and for the
//! end-to-end tests a real OpenID provider (npm `oidc-provider`,
//! `tests/console-peers/idp.mjs`).
//!
//! A missing peer fails the test with what to run; it never skips.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use countersign_gateway::AppState;
use countersign_identity::Identity;
use countersign_store::Store;
use countersign_testkit::{Builder, Cast, Loopback, Served, Tokens};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// `tests/console-peers`, checked to hold what the tests need.
pub fn peers() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/console-peers");
    let missing: Vec<String> = ["node_modules/oidc-provider/package.json", "node_modules/playwright-core/package.json"]
        .iter()
        .filter(|p| !dir.join(p).exists())
        .map(|p| dir.join(p).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "the console's test peers are missing ({}); run scripts/setup-test-deps",
        missing.join(", ")
    );
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing; run scripts/setup-test-deps");
    assert!(Command::new("node").arg("--version").output().is_ok(), "node is missing; run scripts/setup-test-deps");
    dir
}

/// The OpenID provider, stopped when dropped (and when the test process
/// dies: it exits when its stdin closes).
pub struct Idp {
    child: Child,
    pub issuer: String,
}

impl Idp {
    pub fn start(gateway_url: &str) -> Self {
        let dir = peers();
        let mut child = Command::new("node")
            .arg(dir.join("idp.mjs"))
            .arg(gateway_url)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OpenID provider");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the provider's first line");
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("the provider said `{line}`: {e}"));
        let issuer = ready["issuer"].as_str().unwrap().to_owned();
        Self { child, issuer }
    }

    /// A provider-signed ID token for `user`, issued to `client`.
    pub async fn id_token(&self, client: (&str, &str), user: &str) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client.0, Some(client.1))
            .form(&[("grant_type", "urn:countersign:test:id-token"), ("username", user)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "token: {}", response.status());
        let body: serde_json::Value = response.json().await.unwrap();
        body["id_token"].as_str().unwrap().to_owned()
    }

    /// The provider replaces its signing key.
    pub async fn rotate_keys(&self) {
        let response = reqwest::Client::new().post(format!("{}/__test/rotate", self.issuer)).send().await.unwrap();
        assert!(response.status().is_success());
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Policies of the tests: prod needs an sre, vault needs an sre with a
/// fresh login (step-up), everything else is routine.
pub const POLICIES: &str = r#"
@id("prod-needs-sre")
@approvers("sre")
permit (principal, action, resource) when { resource.name like "prod*" };

@id("vault-needs-fresh-sre")
@approvers("sre")
@step_up("true")
permit (principal, action, resource) when { resource.name like "vault*" };

@id("routine")
permit (principal, action, resource) when { !(resource.name like "prod*") && !(resource.name like "vault*") };
"#;

/// A running gateway with its console; stopped when dropped.
pub struct Gateway {
    pub url: String,
    pub state: AppState,
    /// The gateway's store, for tests that look behind the gateway.
    pub store: Arc<dyn Store>,
    pub tokens: Tokens,
    _served: Served,
    pub kit: countersign_testkit::Gateway,
}

/// A gateway with the console wired in as `countersign serve` wires them,
/// on loopback: under `policy`, configured with `config` (TOML: more of
/// `[server]`, then other sections), `cast` enrolled, on `store` (None:
/// its own SQLite store).
pub async fn serve_console(policy: &str, config: &str, cast: Cast, store: Option<Arc<dyn Store>>) -> Gateway {
    serve_console_on(Loopback::bind().await, policy, config, cast, store).await
}

/// As [`serve_console`], on `port`.
async fn serve_console_on(
    port: Loopback,
    policy: &str,
    config: &str,
    cast: Cast,
    store: Option<Arc<dyn Store>>,
) -> Gateway {
    countersign_testkit::install_crypto_provider();
    let text = format!("[server]\nlisten = \"{}\"\npublic_url = \"{}\"\n{config}\n", port.addr, port.url);
    let builder = Builder::new(policy).config(&text).cast(cast);
    let prepared = match store {
        Some(store) => builder.store(store),
        None => builder,
    }
    .prepare()
    .await;
    let identity = Identity::from_config(&prepared.config.identity, prepared.store.clone()).unwrap();
    let kit = prepared.start_with(identity.authenticator()).await;
    let options = countersign_console::Options {
        redact: kit.config.channels.redact.clone(),
        store_target: kit.config.database_path().display().to_string(),
        ..countersign_console::Options::default()
    };
    let console = countersign_console::router(kit.state.clone(), identity, options);
    let served = port.serve(kit.state.clone(), kit.config.server(), console);
    Gateway {
        url: served.url.clone(),
        state: kit.state.clone(),
        store: kit.store.clone(),
        tokens: kit.tokens.clone(),
        _served: served,
        kit,
    }
}

/// Binds a port first (the provider must know the redirect URI), then
/// starts the provider, then the gateway configured for it. bob owns the
/// agent `deploy-bot`, so he may not approve what it asks for.
pub async fn start(extra_config: &str) -> (Idp, Gateway) {
    countersign_testkit::install_crypto_provider();
    let port = Loopback::bind().await;
    let idp = Idp::start(&port.url);
    // `extra_config` may set its own scopes.
    let scopes = if extra_config.contains("scopes") {
        ""
    } else {
        "scopes = [\"openid\", \"email\", \"profile\", \"groups\"]\n"
    };
    let config = format!(
        "[oidc]\nissuer = \"{issuer}\"\nclient_id = \"countersign\"\nclient_secret = \"console-secret\"\n\
         {scopes}{extra_config}",
        issuer = idp.issuer,
    );
    let cast = Cast::new().user("bob", "bob@example.com", &["sre"]).agent("deploy-bot", Some("bob"), &[]);
    let gateway = serve_console_on(port, POLICIES, &config, cast, None).await;
    (idp, gateway)
}

impl Gateway {
    /// `who`'s token.
    pub fn token(&self, who: &str) -> &str {
        self.tokens.get(who)
    }

    /// Submits an action as the agent; returns the request id.
    pub async fn submit(&self, resource: &str, justification: &str) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/actions", self.url))
            .bearer_auth(self.token("deploy-bot"))
            .json(&serde_json::json!({
                "kind": "shell.exec", "resource": resource,
                "payload": {"argv": ["systemctl", "restart", "web"]},
                "justification": justification,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// `GET /v1/whoami` with a bearer token: the status and the body.
    pub async fn whoami(&self, bearer: &str) -> (u16, serde_json::Value) {
        let response =
            reqwest::Client::new().get(format!("{}/v1/whoami", self.url)).bearer_auth(bearer).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    pub async fn status_of(&self, id: &str) -> String {
        let request = self.store.request(id).await.unwrap().unwrap();
        request.status.as_str().to_owned()
    }
}

/// Waits a little for the gateway to answer.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}
