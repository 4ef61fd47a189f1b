//! kubectl (Debian `kubernetes-client`) through the gateway's `/k8s/<cluster>`
//! to the stand-in API server in `tests/peers/k8s/apiserver.py`, under the
//! starter policy: reads pass, writes wait for approval and then run as
//! approved, namespace deletes by agents are denied with a `Status` kubectl
//! prints, and the agent's credential never reaches the API server.
//!
//! kubectl sends its bearer token only over TLS, so the gateway is reached
//! through a TLS terminator (as behind an ingress). A test whose peers are
//! not installed is skipped, with a message; with `REQUIRE_TEST_PEERS` set
//! it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign_testkit::fixtures::{standard_cast, STARTER_POLICY};
use countersign_testkit::gateway::{Builder, Gateway};
use countersign_testkit::serve::Served;
use countersign_testkit::tls::pem_pki;
use serde_json::{json, Value};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const API_TOKEN: &str = "gateway-sa-token-7f3a";

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/k8s")
}

/// Whether kubectl and python3 are installed; otherwise skip (or fail
/// under `REQUIRE_TEST_PEERS`).
fn peers_present() -> bool {
    let found = |program: &str| Command::new(program).arg("--help").output().is_ok_and(|o| o.status.success());
    if found("kubectl") && found("python3") {
        return true;
    }
    let why = "kubectl or python3 is not installed: run scripts/setup.d/k8s.sh (or scripts/setup-test-deps)";
    assert!(std::env::var_os("REQUIRE_TEST_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    false
}

/// Terminates TLS on a free port and passes each connection to `backend`.
async fn terminate_tls(config: tokio_rustls::rustls::ServerConfig, backend: u16) -> u16 {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

struct ApiServer(Child);

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Harness {
    gateway: Gateway,
    served: Served,
    _api: ApiServer,
    /// The gateway as kubectl sees it: `https://localhost:<port>`.
    url: String,
    ca_pem: String,
    log: PathBuf,
    tmp: tempfile::TempDir,
}

async fn harness() -> Option<Harness> {
    if !peers_present() {
        return None;
    }
    countersign_testkit::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = tmp.path().join("apiserver.log");
    std::fs::write(&log, "").unwrap();
    let child = Command::new("python3")
        .arg(peers_dir().join("apiserver.py"))
        .args([port.to_string(), API_TOKEN.to_owned(), log.display().to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let api = ApiServer(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "the stand-in API server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token_file = tmp.path().join("k8s-token");
    std::fs::write(&token_file, format!("{API_TOKEN}\n")).unwrap();
    let config = format!(
        r#"
[[kubernetes]]
name = "staging"
resource = "staging-cluster"
server = "http://127.0.0.1:{port}"
token_file = "{token}"
hold = "30s"
max_body_bytes = 65536

[[kubernetes]]
name = "prod"
resource = "prod-cluster"
server = "http://127.0.0.1:{port}"
token_file = "{token}"
hold = "4s"

[[kubernetes]]
name = "production"
resource = "prod-main"
server = "http://127.0.0.1:{port}"
token_file = "{token}"
hold = "60s"
"#,
        token = token_file.display()
    );
    let gateway = Builder::new(STARTER_POLICY).config(&config).cast(standard_cast()).start().await;
    let routes = countersign_k8s::router(gateway.state.clone(), gateway.config.kubernetes.clone());
    let served = gateway.serve(routes).await;
    let backend: u16 = served.url.rsplit(':').next().unwrap().parse().unwrap();
    // A CA whose name differs from the leaf's: OpenSSL (the Python client)
    // takes a leaf issued under its own name for self-signed.
    let pki = pem_pki(&["localhost"]);
    let tls = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(pki.cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(pki.key.as_bytes()).unwrap(),
        )
        .unwrap();
    let ca_pem = pki.ca;
    let url = format!("https://localhost:{}", terminate_tls(tls, backend).await);
    Some(Harness { gateway, served, _api: api, url, ca_pem, log, tmp })
}

impl Harness {
    /// An HTTP client that trusts only the gateway's test CA.
    fn https_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(self.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    }

    /// A kubeconfig for `who` on `cluster`, as `countersign kubeconfig` prints it.
    fn kubeconfig(&self, who: &str, cluster: &str) -> PathBuf {
        let token = self.gateway.token(who);
        let config = countersign_k8s::kubeconfig::kubeconfig(&self.url, cluster, &token, Some(self.ca_pem.as_bytes()));
        let path = self.tmp.path().join(format!("kubeconfig-{who}-{cluster}.json"));
        std::fs::write(&path, config.to_string()).unwrap();
        path
    }

    /// kubectl as `who` on `cluster`, started (waits in the background).
    fn kubectl(&self, who: &str, cluster: &str, args: &[&str]) -> tokio::task::JoinHandle<Output> {
        let kubeconfig = self.kubeconfig(who, cluster);
        let cache = self.tmp.path().join(format!("cache-{who}-{cluster}"));
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let dir = self.tmp.path().to_owned();
        tokio::task::spawn_blocking(move || {
            Command::new("kubectl")
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", &dir)
                .arg("--cache-dir")
                .arg(&cache)
                .args(&args)
                .output()
                .unwrap()
        })
    }

    /// Every request the API server received.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// The one pending request (waits for it to appear).
    async fn pending(&self) -> Value {
        let started = Instant::now();
        loop {
            let (_, body) = self.gateway.call("GET", "/v1/actions?status=pending", Some("alice"), None).await;
            let list = body.get("requests").or_else(|| body.get("actions")).cloned().unwrap_or(body.clone());
            if let Some(first) = list.as_array().and_then(|l| l.first()) {
                return first.clone();
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no request became pending: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn manifest(dir: &Path, value: &str) -> PathBuf {
    let path = dir.join(format!("cm-{value}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: web\ndata:\n  level: \"{value}\"\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_pass_and_the_gateway_credential_alone_reaches_the_api_server() {
    let Some(h) = harness().await else { return };
    let out = h.kubectl("bot", "staging", &["get", "pods", "-n", "web", "-o", "name"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "pod/web-0");
    let out = h.kubectl("bot", "staging", &["get", "pod", "web-0", "-n", "web", "-o", "json"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pod["metadata"]["name"], "web-0");

    let agent_key = h.gateway.token("bot");
    let received = h.received();
    assert!(received.iter().any(|r| r["path"] == "/api/v1/namespaces/web/pods/web-0"), "{received:?}");
    for r in &received {
        assert_eq!(r["authorization"], format!("Bearer {API_TOKEN}"), "{r}");
        assert!(!r.to_string().contains(&agent_key), "the agent's key reached the API server: {r}");
    }
    // Each API request was an action with its facts.
    let audit = h.gateway.audit().await;
    let submitted = audit.iter().map(|e| e.body_value().to_string()).filter(|b| b.contains("k8s.request")).count();
    assert!(submitted >= 2, "no k8s.request in the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_stream_through() {
    let Some(h) = harness().await else { return };
    let out = h.kubectl("bot", "staging", &["logs", "-f", "web-0", "-n", "web"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[4], "log line 4 from web-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_approval_then_runs_as_approved() {
    let Some(h) = harness().await else { return };
    let file = manifest(h.tmp.path(), "debug");
    let apply = h.kubectl("bot", "staging", &["apply", "--validate=false", "-f", file.to_str().unwrap()]);
    let pending = h.pending().await;
    let id = pending["id"].as_str().unwrap().to_owned();
    assert_eq!(pending["kind"], "k8s.request", "{pending}");
    assert_eq!(pending["payload"]["path"], "/api/v1/namespaces/web/configmaps", "{pending}");
    // Only the preview's dry run of the write reached the API server.
    h.only_dry_runs();
    let preview = &pending["context"]["impact_preview"];
    assert!(preview["changes"].as_array().unwrap().contains(&json!("+ data.level: \"debug\"")), "{preview}");
    let (status, body) = h.gateway.approve("alice", &id).await;
    assert!(status.is_success(), "{body}");
    let out = apply.await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("configmap/app created"), "{}", text(&out.stdout));
    let created: Vec<Value> = h.received().into_iter().filter(|r| r["wrote"] == true).collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(created[0]["body"].as_str().unwrap().contains("\"level\":\"debug\""), "{created:?}");
    assert_eq!(h.gateway.status_of(&id).await, "released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_write_is_a_forbidden_status_kubectl_prints() {
    let Some(h) = harness().await else { return };
    let file = manifest(h.tmp.path(), "debug");
    let apply = h.kubectl("bot", "staging", &["apply", "--validate=false", "-f", file.to_str().unwrap()]);
    let id = h.pending().await["id"].as_str().unwrap().to_owned();
    let (status, body) = h.gateway.deny("alice", &id).await;
    assert!(status.is_success(), "{body}");
    let out = apply.await.unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Forbidden") && stderr.contains("countersign") && stderr.contains(&id), "{stderr}");
    h.only_dry_runs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_may_not_delete_namespaces_and_the_policy_is_named() {
    let Some(h) = harness().await else { return };
    let out = h.kubectl("bot", "staging", &["delete", "namespace", "web"]).await.unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Error from server (Forbidden)"), "{stderr}");
    assert!(stderr.contains("no-namespace-deletes-by-agents"), "{stderr}");
    assert!(h.received().iter().all(|r| r["method"] != "DELETE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_held_past_the_hold_is_withdrawn_and_never_runs() {
    let Some(h) = harness().await else { return };
    // On production everything waits for an SRE; `prod` holds for 4s.
    let out = h.kubectl("bot", "prod", &["delete", "pod", "api-0", "-n", "prod", "--wait=false"]).await.unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("withdrawn") && stderr.contains("did not run"), "{stderr}");
    h.only_dry_runs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_lookalike_clusters_and_huge_bodies_are_refused() {
    let Some(h) = harness().await else { return };
    let client = h.https_client();
    let key = h.gateway.token("bot");
    // Paths as sent, byte for byte (an HTTP client library would tidy
    // them), to the gateway behind the TLS terminator.
    let raw = |path: &str| {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        );
        let addr = h.served.url.trim_start_matches("http://").to_owned();
        async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            let status: u16 = answer.split(' ').nth(1).unwrap().parse().unwrap();
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
            (status, serde_json::from_str::<Value>(body).unwrap_or(Value::Null))
        }
    };
    for path in [
        "/k8s/staging/api/v1/namespaces/web/pods/../../kube-system/secrets",
        "/k8s/staging/api/v1/namespaces/web%2F..%2Fkube-system/secrets",
        "/k8s/staging/api/v1/namespaces/web/pods/%2e%2e/secrets",
        "/k8s/staging/api/v1/namespaces/web/./secrets",
        "/k8s/staging/api//v1/secrets",
        "/k8s/staging/api/v1/namespaces/web/pods/x\\..\\secrets",
    ] {
        let (status, body) = raw(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["kind"], "Status", "{path}: {body}");
    }
    for path in
        ["/k8s/staging-x/api", "/k8s/STAGING/api", "/k8s/stag%69ng/api", "/k8s/prod.evil/api", "/k8s/staging%2Fapi"]
    {
        let (status, body) = raw(path).await;
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
        assert_eq!(body["kind"], "Status", "{path}: {body}");
    }
    // The Authorization the agent sends, or an impersonation, never passes.
    let response = client
        .get(format!("{}/k8s/staging/api/v1/namespaces/web/pods", h.url))
        .bearer_auth(&key)
        .header("Impersonate-User", "system:admin")
        .header("Impersonate-Group", "system:masters")
        .header("Cookie", "session=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let huge = "x".repeat(70_000);
    let response = client
        .post(format!("{}/k8s/staging/api/v1/namespaces/web/configmaps", h.url))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    // The gateway answers 413 and closes without reading the body; a
    // client still sending may see the connection reset before the answer.
    match response {
        Ok(response) => assert_eq!(response.status().as_u16(), 413),
        // Reset, broken pipe or closed mid-request, as the race falls; never
        // a hang (the calls below show the gateway still answers).
        Err(e) => assert!(!e.is_timeout() && !e.is_status(), "{e:?}"),
    }
    let unauthenticated = client.get(format!("{}/k8s/staging/api", h.url)).send().await.unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    let forged = client.get(format!("{}/k8s/staging/api", h.url)).bearer_auth(API_TOKEN).send().await.unwrap();
    assert_eq!(forged.status().as_u16(), 401, "the API server's own token is not a countersign key");
    let received = h.received();
    assert!(received.iter().all(|r| r["impersonate"] == json!({}) && r["cookie"].is_null()), "{received:?}");
    assert!(received.iter().all(|r| !r["path"].as_str().unwrap().contains("secrets")), "{received:?}");
    assert!(received.iter().all(|r| r["method"] != "POST"));
}

/// The Python client (PyPI `kubernetes`), from `tests/peers/k8s/.venv`.
fn python_client(h: &Harness, who: &str, step: &str) -> tokio::task::JoinHandle<Value> {
    let python = peers_dir().join(".venv/bin/python");
    let script = peers_dir().join("client.py");
    let ca = h.tmp.path().join("gateway-ca.pem");
    std::fs::write(&ca, &h.ca_pem).unwrap();
    let (url, token, step) = (format!("{}/k8s/staging", h.url), h.gateway.token(who), step.to_owned());
    tokio::task::spawn_blocking(move || {
        let out =
            Command::new(python).arg(script).args([&url, &token, &ca.display().to_string(), &step]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out.stdout)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_reads_streams_waits_and_is_refused() {
    let Some(h) = harness().await else { return };
    let venv = peers_dir().join(".venv/bin/python");
    let installed = Command::new(&venv).args(["-c", "import kubernetes"]).output().is_ok_and(|o| o.status.success());
    if !installed {
        let why = "the Python kubernetes client is not installed: run scripts/setup.d/k8s.sh";
        assert!(std::env::var_os("REQUIRE_TEST_PEERS").is_none(), "{why}");
        eprintln!("skipped: {why}");
        return;
    }
    let listed = python_client(&h, "bot", "list").await.unwrap();
    assert_eq!(listed, json!({"ok": true, "names": ["web-0"]}));
    let watched = python_client(&h, "bot", "watch").await.unwrap();
    assert_eq!(
        watched["events"],
        json!([["ADDED", "web-0"], ["MODIFIED", "web-0"], ["DELETED", "web-0"]]),
        "{watched}"
    );
    let logs = python_client(&h, "bot", "logs").await.unwrap();
    assert_eq!(logs["lines"].as_array().map(Vec::len), Some(5), "{logs}");
    let create = python_client(&h, "bot", "create");
    let id = h.pending().await["id"].as_str().unwrap().to_owned();
    h.gateway.approve("bob", &id).await;
    assert_eq!(create.await.unwrap(), json!({"ok": true, "name": "py"}));
    let refused = python_client(&h, "bot", "delete-namespace").await.unwrap();
    assert_eq!(refused["status"], 403, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("no-namespace-deletes-by-agents"), "{refused}");
}

/// `kubectl exec` over WebSocket: decided once at the upgrade (held for
/// an SRE outside production, then approved), then the stream passes
/// through; a destructive command in a production pod is denied to agents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_is_decided_at_the_upgrade_then_passed_through() {
    let Some(h) = harness().await else { return };
    let exec = h.kubectl("bot", "staging", &["exec", "web-0", "-n", "web", "--", "ls", "/tmp"]);
    let pending = h.pending().await;
    assert_eq!(pending["payload"]["path"], "/api/v1/namespaces/web/pods/web-0/exec", "{pending}");
    assert_eq!(pending["payload"]["upgrade"], "websocket", "{pending}");
    assert!(h.received().iter().all(|r| !r["path"].as_str().unwrap().ends_with("/exec")));
    let id = pending["id"].as_str().unwrap().to_owned();
    h.gateway.approve("alice", &id).await;
    let out = exec.await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ran in web-0: ls /tmp\n");
    let execs: Vec<Value> =
        h.received().into_iter().filter(|r| r["path"].as_str().unwrap().ends_with("/exec")).collect();
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert_eq!(execs[0]["query"].as_str().unwrap().matches("command=").count(), 2, "{execs:?}");

    let exec = h.kubectl("bot", "prod", &["exec", "api-0", "-n", "prod", "--", "sh", "-c", "rm -rf /data"]);
    // kubectl reads the pod first: on production that waits for an SRE.
    let read = h.pending().await;
    assert_eq!(read["payload"]["path"], "/api/v1/namespaces/prod/pods/api-0", "{read}");
    h.gateway.approve("alice", read["id"].as_str().unwrap()).await;
    let out = exec.await.unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no-destructive-agents-in-prod"), "{stderr}");
    assert!(h.received().iter().all(|r| !r["path"].as_str().unwrap().contains("api-0/exec")));
}

/// kubectl as `who` on `cluster`, started with its output piped: the
/// child, to read while it runs.
fn kubectl_piped(h: &Harness, who: &str, cluster: &str, args: &[&str]) -> Child {
    kubectl_piped_with(h, who, cluster, args, &[])
}

/// [`kubectl_piped`] with more environment variables.
fn kubectl_piped_with(h: &Harness, who: &str, cluster: &str, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new("kubectl")
        .envs(env.iter().copied())
        .env("KUBECONFIG", h.kubeconfig(who, cluster))
        .env("HOME", h.tmp.path())
        .arg("--cache-dir")
        .arg(h.tmp.path().join(format!("cache-{who}-{cluster}")))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads `child`'s stdout lines until it has printed `lines` of them
/// (then returns the reader, to go on), in the background.
fn read_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The summaries of every outcome recorded so far.
async fn outcomes(h: &Harness) -> Vec<String> {
    countersign_testkit::audit::bodies(h.gateway.store.as_ref(), "outcome.reported")
        .await
        .iter()
        .filter_map(|b| b["outcome"]["summary"].as_str().map(str::to_owned))
        .collect()
}

/// Waits for an outcome whose summary holds `needle`.
async fn outcome_with(h: &Harness, needle: &str) -> String {
    let started = Instant::now();
    loop {
        if let Some(found) = outcomes(h).await.into_iter().find(|s| s.contains(needle)) {
            return found;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no outcome with {needle:?}: {:?}", outcomes(h).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) for `child` to exit; how long it took.
fn exits_within(child: &mut Child, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "kubectl still runs after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kubectl attach` over WebSocket (the exec channel protocol): decided
/// once at the upgrade (held for an SRE outside production), then the
/// container's output passes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_is_decided_at_the_upgrade_then_passed_through() {
    let Some(h) = harness().await else { return };
    let attach = h.kubectl("bot", "staging", &["attach", "web-0", "-n", "web"]);
    let pending = h.pending().await;
    assert_eq!(pending["payload"]["path"], "/api/v1/namespaces/web/pods/web-0/attach", "{pending}");
    assert_eq!(pending["payload"]["upgrade"], "websocket", "{pending}");
    assert!(h.received().iter().all(|r| !r["path"].as_str().unwrap().ends_with("/attach")));
    h.gateway.approve("alice", pending["id"].as_str().unwrap()).await;
    let out = attach.await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "attached to web-0: line 0\nattached to web-0: line 1\nattached to web-0: line 2\n",
        "{}",
        text(&out.stderr)
    );
    let attaches: Vec<Value> =
        h.received().into_iter().filter(|r| r["path"].as_str().unwrap().ends_with("/attach")).collect();
    assert_eq!(attaches.len(), 1, "{attaches:?}");
    assert_eq!(attaches[0]["authorization"], format!("Bearer {API_TOKEN}"));
    let summary = outcome_with(&h, "stream passed through").await;
    assert!(summary.ends_with("; closed"), "{summary}");
}

/// A key revoked while `kubectl logs -f` streams: the stream is cut
/// within about a second, the cut recorded in the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_cuts_logs_follow() {
    let Some(h) = harness().await else { return };
    let mut logs = kubectl_piped(&h, "bot", "staging", &["logs", "-f", "tail-0", "-n", "stream"]);
    let lines = read_lines(&mut logs);
    // Streaming: the first lines come while the log goes on.
    for _ in 0..3 {
        let line = lines.recv_timeout(Duration::from_secs(15)).unwrap();
        assert!(line.starts_with("log line"), "{line}");
    }
    h.gateway.store.revoke_agent("bot", countersign_core::Timestamp::now(), Vec::new()).await.unwrap();
    let took = tokio::task::block_in_place(|| exits_within(&mut logs, Duration::from_secs(10)));
    assert!(took < Duration::from_secs(4), "cut after {took:?}");
    let seen: Vec<String> = lines.try_iter().collect();
    // 200 lines 0.3 s apart were coming: cut long before the end.
    assert!(seen.len() < 20, "{seen:?}");
    let summary = outcome_with(&h, "cut: the caller's credential is no longer accepted").await;
    assert!(summary.starts_with("HTTP 200;"), "{summary}");
}

/// A key revoked while `kubectl attach` is open: the switched stream is
/// dropped at once (the same check as for responses), and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_cuts_an_open_attach() {
    let Some(h) = harness().await else { return };
    let mut attach = kubectl_piped(&h, "ci-bot", "staging", &["attach", "tail-0", "-n", "stream"]);
    let lines = read_lines(&mut attach);
    let pending = h.pending().await;
    assert_eq!(pending["payload"]["path"], "/api/v1/namespaces/stream/pods/tail-0/attach", "{pending}");
    h.gateway.approve("alice", pending["id"].as_str().unwrap()).await;
    for _ in 0..3 {
        let line = lines.recv_timeout(Duration::from_secs(15)).unwrap();
        assert!(line.starts_with("attached to tail-0"), "{line}");
    }
    h.gateway.store.revoke_agent("ci-bot", countersign_core::Timestamp::now(), Vec::new()).await.unwrap();
    let took = tokio::task::block_in_place(|| exits_within(&mut attach, Duration::from_secs(10)));
    assert!(took < Duration::from_secs(4), "cut after {took:?}");
    assert!(lines.try_iter().count() < 20);
    let summary = outcome_with(&h, "stream passed through").await;
    assert!(summary.ends_with("cut: the caller's credential is no longer accepted"), "{summary}");
}

/// `kubectl port-forward` (1.31+: SPDY tunneled over WebSocket) decided
/// once, at the upgrade: held for an SRE outside production, then every
/// connection to the local port goes through the one approved stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_is_decided_at_the_upgrade_then_passed_through() {
    let Some(h) = harness().await else { return };
    port_forward(&h, &[], "websocket").await;
}

/// The same over a plain SPDY upgrade (older kubectl, or its fallback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_over_spdy_is_decided_at_the_upgrade_then_passed_through() {
    let Some(h) = harness().await else { return };
    port_forward(&h, &[("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")], "SPDY/3.1").await;
}

/// Runs `kubectl port-forward` with `env`, expecting an `upgrade` to
/// `protocol`; approves it and echoes two connections through it.
async fn port_forward(h: &Harness, env: &[(&str, &str)], protocol: &str) {
    use std::io::{Read as _, Write as _};
    let mut forward =
        kubectl_piped_with(h, "bot", "staging", &["port-forward", "pod/web-0", "-n", "web", "0:8080"], env);
    let lines = read_lines(&mut forward);
    let pending = h.pending().await;
    assert_eq!(pending["payload"]["path"], "/api/v1/namespaces/web/pods/web-0/portforward", "{pending}");
    assert_eq!(pending["payload"]["upgrade"], protocol, "{pending}");
    assert!(h.received().iter().all(|r| !r["path"].as_str().unwrap().ends_with("/portforward")));
    h.gateway.approve("alice", pending["id"].as_str().unwrap()).await;
    let line = tokio::task::block_in_place(|| lines.recv_timeout(Duration::from_secs(20)))
        .unwrap_or_else(|e| panic!("kubectl printed nothing: {e}"));
    // "Forwarding from 127.0.0.1:<port> -> 8080"
    let port: u16 = line
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    for message in ["through the gateway\n", "and once more\n"] {
        let echoed = tokio::task::block_in_place(|| {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream.write_all(message.as_bytes()).unwrap();
            let mut buf = vec![0u8; message.len()];
            stream.read_exact(&mut buf).unwrap();
            String::from_utf8(buf).unwrap()
        });
        assert_eq!(echoed, message.to_uppercase());
    }
    // One decision for the whole session: one upgrade reached the API server.
    let forwards: Vec<Value> =
        h.received().into_iter().filter(|r| r["path"].as_str().unwrap().ends_with("/portforward")).collect();
    assert_eq!(forwards.len(), 1, "{forwards:?}");
    assert_eq!(forwards[0]["authorization"], format!("Bearer {API_TOKEN}"));
    let _ = forward.kill();
    let _ = forward.wait();
    let summary = outcome_with(h, "stream passed through").await;
    assert!(summary.contains("bytes to the API server"), "{summary}");
}

/// `kubectl exec` over a plain SPDY upgrade (older kubectl, or
/// `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`): decided at the upgrade like
/// the WebSocket one, then passed through byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_over_spdy_is_decided_at_the_upgrade_then_passed_through() {
    let Some(h) = harness().await else { return };
    let mut exec = kubectl_piped_with(
        &h,
        "bot",
        "staging",
        &["exec", "web-0", "-n", "web", "--", "ls", "/tmp"],
        &[("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")],
    );
    let pending = h.pending().await;
    assert_eq!(pending["payload"]["path"], "/api/v1/namespaces/web/pods/web-0/exec", "{pending}");
    assert_eq!(pending["payload"]["upgrade"], "SPDY/3.1", "{pending}");
    h.gateway.approve("alice", pending["id"].as_str().unwrap()).await;
    let out = tokio::task::block_in_place(|| {
        exits_within(&mut exec, Duration::from_secs(20));
        let mut stdout = String::new();
        let mut stderr = String::new();
        use std::io::Read as _;
        exec.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        exec.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (exec.wait().unwrap(), stdout, stderr)
    });
    assert!(out.0.success(), "{}", out.2);
    assert_eq!(out.1, "ran in web-0 over SPDY: ls /tmp\n", "{}", out.2);
    let summary = outcome_with(&h, "stream passed through").await;
    assert!(summary.ends_with("; closed"), "{summary}");
}

// ---- impact preview ---------------------------------------------------------

impl Harness {
    /// Approves the reads kubectl makes first on production, and returns
    /// the write it then waits on (pending, not yet approved).
    async fn held_write(&self) -> Value {
        let started = Instant::now();
        let mut approved = Vec::new();
        loop {
            let (_, body) = self.gateway.call("GET", "/v1/actions?status=pending", Some("alice"), None).await;
            let list = body.get("requests").or_else(|| body.get("actions")).cloned().unwrap_or(body.clone());
            for r in list.as_array().cloned().unwrap_or_default() {
                let id = r["id"].as_str().unwrap().to_owned();
                if r["payload"]["method"] != "GET" {
                    return r;
                }
                if !approved.contains(&id) {
                    let (status, body) = self.gateway.approve("alice", &id).await;
                    assert!(status.is_success(), "{body}");
                    approved.push(id);
                }
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no write became pending: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The review card's facts for request `id`, as the console and the
    /// chat channels build them.
    async fn card_facts(&self, id: &str) -> Vec<String> {
        let reader = self.gateway.state.request_reader();
        let filter = countersign_store::RequestFilter { limit: 1000, ..Default::default() };
        let request = reader.list_requests(&filter).await.unwrap().into_iter().find(|r| r.id == id).unwrap();
        let redactor = Arc::new(countersign_cards::Redactor::new(&[]).unwrap());
        countersign_cards::CardBuilder::new(reader, "https://gw.example", redactor).without_history(&request).facts
    }

    /// Every write that reached the API server was a dry run (a preview's),
    /// and nothing changed.
    fn only_dry_runs(&self) {
        for r in self.received().iter().filter(|r| r["method"] != "GET") {
            assert!(r["query"].as_str().unwrap().ends_with("dryRun=All"), "a write reached the API server: {r}");
        }
        self.nothing_written();
    }

    /// Nothing reached the API server that changed anything.
    fn nothing_written(&self) {
        let wrote: Vec<Value> = self.received().into_iter().filter(|r| r["wrote"] == true).collect();
        assert!(wrote.is_empty(), "the API server changed something before an approval: {wrote:?}");
    }
}

fn yaml(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_apply_to_production_shows_the_dry_run_diff_on_the_card() {
    let Some(h) = harness().await else { return };
    let deployment = yaml(
        h.tmp.path(),
        "api.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: prod\nspec:\n  replicas: 3\n  \
         selector:\n    matchLabels:\n      app: api\n  template:\n    metadata:\n      labels:\n        app: api\n    \
         spec:\n      containers:\n      - name: api\n        image: registry.example/api:1.1\n        ports:\n        \
         - containerPort: 8080\n",
    );
    let apply = h.kubectl("bot", "production", &["apply", "--validate=false", "-f", deployment.to_str().unwrap()]);
    let write = h.held_write().await;
    let id = write["id"].as_str().unwrap().to_owned();
    assert_eq!(write["payload"]["method"], "PATCH", "{write}");
    let preview = &write["context"]["impact_preview"];
    assert_eq!(preview["verb"], "patch", "{write}");
    assert_eq!(preview["object"], "deployments prod/api", "{write}");
    let changes: Vec<&str> = preview["changes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(
        changes,
        [
            "~ spec.replicas: 2 → 3",
            "~ spec.template.spec.containers[name=api].image: \"registry.example/api:1.0\" → \"registry.example/api:1.1\""
        ],
        "{preview}"
    );
    // The preview was a dry run with the gateway's credential; nothing changed.
    h.nothing_written();
    let dry: Vec<Value> = h.received().into_iter().filter(|r| r["method"] == "PATCH").collect();
    assert_eq!(dry.len(), 1, "{dry:?}");
    assert!(dry[0]["query"].as_str().unwrap().ends_with("dryRun=All"), "{dry:?}");
    assert_eq!(dry[0]["authorization"], format!("Bearer {API_TOKEN}"));
    let facts = h.card_facts(&id).await;
    let at = facts.iter().position(|l| l == "Impact preview (the API server's dry run) of patch deployments prod/api:");
    let at = at.unwrap_or_else(|| panic!("{facts:?}"));
    assert_eq!(facts[at + 1], "  ~ spec.replicas: 2 → 3", "{facts:?}");

    h.gateway.approve("alice", &id).await;
    let out = apply.await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("deployment.apps/api configured"), "{}", text(&out.stdout));
    let writes: Vec<Value> = h.received().into_iter().filter(|r| r["wrote"] == true).collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(!writes[0]["query"].as_str().unwrap().contains("dryRun"), "{writes:?}");

    // A ConfigMap: the change of one value, kubectl's bookkeeping left out.
    let file = yaml(
        h.tmp.path(),
        "app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: prod\ndata:\n  level: debug\n  \
         region: eu-west-1\n",
    );
    let apply = h.kubectl("bot", "production", &["apply", "--validate=false", "-f", file.to_str().unwrap()]);
    let write = h.held_write().await;
    assert_eq!(write["context"]["impact_preview"]["changes"], json!(["~ data.level: \"info\" → \"debug\""]), "{write}");
    h.gateway.deny("alice", write["id"].as_str().unwrap()).await;
    assert!(!apply.await.unwrap().status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_delete_previews_what_would_go_and_nothing_goes_before_approval() {
    let Some(h) = harness().await else { return };
    let delete = h.kubectl("bot", "production", &["delete", "configmap", "app", "-n", "prod", "--wait=false"]);
    let write = h.held_write().await;
    assert_eq!(write["payload"]["method"], "DELETE", "{write}");
    let preview = &write["context"]["impact_preview"];
    assert_eq!(preview["verb"], "delete", "{write}");
    let changes = preview["changes"].to_string();
    for removed in ["- data.level: \\\"info\\\"", "- data.region: \\\"eu-west-1\\\"", "- metadata.name: \\\"app\\\""] {
        assert!(changes.contains(removed), "{removed} in {changes}");
    }
    // The dry run said `dryRun: ["All"]` in its options too (the stand-in,
    // as the API server, ignores the query's when a DELETE has a body).
    h.nothing_written();
    let dry: Vec<Value> = h.received().into_iter().filter(|r| r["method"] == "DELETE").collect();
    assert_eq!(dry.len(), 1, "{dry:?}");
    let options: Value = serde_json::from_str(dry[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(options["dryRun"], json!(["All"]), "{dry:?}");
    let facts = h.card_facts(write["id"].as_str().unwrap()).await;
    assert!(facts.iter().any(|l| l == "  - data.level: \"info\""), "{facts:?}");
    // The requester does not read the preview back: a held delete is not
    // a way to read an object its policy may not let it read.
    let id = write["id"].as_str().unwrap();
    let (status, own) = h.gateway.call("GET", &format!("/v1/actions/{id}"), Some("bot"), None).await;
    assert_eq!(status, 200, "{own}");
    assert!(own["context"].get("impact_preview").is_none(), "{own}");
    let (_, listed) = h.gateway.call("GET", "/v1/actions?status=pending", Some("bot"), None).await;
    assert!(!listed.to_string().contains("eu-west-1"), "{listed}");
    let (_, theirs) = h.gateway.call("GET", &format!("/v1/actions/{id}"), Some("alice"), None).await;
    assert_eq!(theirs["context"]["impact_preview"]["verb"], "delete", "{theirs}");
    h.gateway.deny("alice", write["id"].as_str().unwrap()).await;
    let out = delete.await.unwrap();
    assert!(!out.status.success());
    h.nothing_written();

    // A Secret: what goes is named, its values never shown.
    let delete = h.kubectl("bot", "production", &["delete", "secret", "db", "-n", "prod", "--wait=false"]);
    let write = h.held_write().await;
    let shown = write["context"]["impact_preview"].to_string();
    assert!(shown.contains("- data.password: (secret value hidden)"), "{shown}");
    assert!(!shown.contains("aHVudGVyMi1zM2NyM3Q"), "a Secret's value is on the card: {shown}");
    let facts = h.card_facts(write["id"].as_str().unwrap()).await.join("\n");
    assert!(!facts.contains("aHVudGVyMi1zM2NyM3Q"), "{facts}");
    h.gateway.approve("alice", write["id"].as_str().unwrap()).await;
    let out = delete.await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let writes: Vec<Value> = h.received().into_iter().filter(|r| r["wrote"] == true).collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0]["path"], "/api/v1/namespaces/prod/secrets/db");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_slow_dry_run_leaves_the_preview_unavailable_and_the_write_held() {
    let Some(h) = harness().await else { return };
    let patch = h.kubectl(
        "bot",
        "production",
        &["patch", "configmap", "broken", "-n", "prod", "-p", r#"{"data":{"level":"debug"}}"#],
    );
    let write = h.held_write().await;
    let why = write["context"]["impact_preview"]["unavailable"].as_str().unwrap_or_default().to_owned();
    assert!(why.starts_with("the API server refused the dry run: 500 InternalError: "), "{write}");
    let facts = h.card_facts(write["id"].as_str().unwrap()).await;
    assert!(
        facts.iter().any(
            |l| l.starts_with("Impact preview of patch configmaps prod/broken unavailable: the API server refused")
        ),
        "{facts:?}"
    );
    h.nothing_written();
    h.gateway.approve("alice", write["id"].as_str().unwrap()).await;
    let out = patch.await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The dry run takes 5s; the write is filed after the 2s bound.
    let started = Instant::now();
    let patch = h.kubectl(
        "bot",
        "production",
        &["patch", "configmap", "slow", "-n", "prod", "-p", r#"{"data":{"level":"debug"}}"#],
    );
    let write = h.held_write().await;
    assert!(started.elapsed() < Duration::from_secs(5), "the hold waited for the slow dry run");
    let why = write["context"]["impact_preview"]["unavailable"].as_str().unwrap_or_default().to_owned();
    assert_eq!(why, "the API server did not answer the dry run within 2000ms", "{write}");
    h.gateway.deny("alice", write["id"].as_str().unwrap()).await;
    assert!(!patch.await.unwrap().status.success());
}

/// A client's own `dryRun` spellings (escaped, empty, contradicting the
/// body) never make the preview's request a write: the dry run's query
/// ends with the one `dryRun=All`, a delete's options say it too, and
/// the API server changed nothing before the decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_dry_run_tricks_do_not_make_the_preview_write() {
    let Some(h) = harness().await else { return };
    let client = h.https_client();
    let key = h.gateway.token("bot");
    let base = format!("{}/k8s/production/api/v1/namespaces/prod/configmaps/app", h.url);
    let patch = client
        .patch(format!("{base}?dry%52un=None&dryRun=&fieldManager=bot"))
        .bearer_auth(&key)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"data":{"level":"debug"}}"#)
        .send();
    let patch = tokio::spawn(patch);
    let write = h.held_write().await;
    assert_eq!(write["context"]["impact_preview"]["changes"], json!(["~ data.level: \"info\" → \"debug\""]), "{write}");
    let dry: Vec<Value> = h.received().into_iter().filter(|r| r["method"] == "PATCH").collect();
    assert_eq!(dry.len(), 1, "{dry:?}");
    assert_eq!(dry[0]["query"], "fieldManager=bot&dryRun=All", "{dry:?}");
    h.nothing_written();
    h.gateway.deny("alice", write["id"].as_str().unwrap()).await;
    assert_eq!(patch.await.unwrap().unwrap().status().as_u16(), 403);

    // A delete whose own options say "not a dry run": the preview's say it is.
    let delete = client
        .delete(format!("{base}?dryRun=None"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(r#"{"kind":"DeleteOptions","apiVersion":"v1","dryRun":[]}"#)
        .send();
    let delete = tokio::spawn(delete);
    let write = h.held_write().await;
    assert!(write["context"]["impact_preview"]["changes"].to_string().contains("- data.level"), "{write}");
    let dry: Vec<Value> = h.received().into_iter().filter(|r| r["method"] == "DELETE").collect();
    assert_eq!(dry.len(), 1, "{dry:?}");
    assert_eq!(dry[0]["query"], "dryRun=All", "{dry:?}");
    let options: Value = serde_json::from_str(dry[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(options["dryRun"], json!(["All"]), "{dry:?}");
    h.nothing_written();
    h.gateway.deny("alice", write["id"].as_str().unwrap()).await;
    assert_eq!(delete.await.unwrap().unwrap().status().as_u16(), 403);
    h.nothing_written();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_token_kept_in_a_secret_is_never_handed_to_the_agent() {
    let Some(h) = harness().await else { return };
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    // Reading secrets outside production is routine: the read runs, and
    // the Secret holding the gateway's own token (alone, and inside a
    // kubeconfig) comes back with it masked.
    let out =
        h.kubectl("bot", "staging", &["get", "secret", "gateway-token", "-n", "web", "-o", "json"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret: Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown = secret.to_string();
    let token_b64 = b64.encode(API_TOKEN);
    assert!(!shown.contains(API_TOKEN) && !shown.contains(&token_b64), "{shown}");
    assert!(secret["data"]["token"].as_str().unwrap().contains('*'), "{shown}");
    let kubeconfig = secret["data"]["kubeconfig"].as_str().unwrap();
    let readable: String = kubeconfig
        .as_bytes()
        .chunks(4)
        .filter(|group| !group.contains(&b'*'))
        .map(|group| String::from_utf8_lossy(&b64.decode(group).unwrap_or_default()).into_owned())
        .collect();
    assert!(readable.contains("users:") && !readable.contains("sa-token"), "{readable}");
    // The API server did send it: it was masked on the way.
    let received = h.received();
    assert!(received.iter().any(|r| r["path"] == "/api/v1/namespaces/web/secrets/gateway-token"), "{received:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_header_of_the_agents_borrows_or_strips_the_gateways_identity() {
    let Some(h) = harness().await else { return };
    let key = h.gateway.token("bot");
    // Every impersonation header, the agent's own credentials, and hop-by-hop
    // lists naming the gateway's own `Authorization` (to strip it), sent raw.
    let request = format!(
        "GET /k8s/staging/api/v1/namespaces/web/pods HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Impersonate-User: system:admin\r\nImpersonate-Group: system:masters\r\nImpersonate-Uid: 0\r\n\
         Impersonate-Extra-Scopes: view\r\nImpersonate-Extra-acme.io%2Frole: admin\r\n\
         Proxy-Authorization: Bearer {API_TOKEN}\r\nCookie: session=x\r\nX-Remote-User: system:admin\r\n\
         X-Remote-Group: system:masters\r\nConnection: close, Authorization, Impersonate-User\r\n\r\n"
    );
    let addr = h.served.url.trim_start_matches("http://").to_owned();
    let answer = {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let received = h.received();
    let sent = received.iter().find(|r| r["path"] == "/api/v1/namespaces/web/pods").unwrap();
    assert_eq!(sent["authorization"], format!("Bearer {API_TOKEN}"), "{sent}");
    assert_eq!(sent["impersonate"], json!({}), "{sent}");
    assert!(sent["cookie"].is_null(), "{sent}");
    assert!(!sent.to_string().contains(&key), "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_that_opens_a_stream_is_no_routine_read() {
    let Some(h) = harness().await else { return };
    let key = h.gateway.token("bot");
    // A console (KubeVirt's, or any streaming subresource the verbs do not
    // name) is a GET that switches to a stream both ways: reads outside
    // production are routine, this is not one; it waits for an SRE.
    let path = "/apis/subresources.kubevirt.io/v1/namespaces/web/virtualmachineinstances/vm/console";
    let request = format!(
        "GET /k8s/staging{path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    let addr = h.served.url.trim_start_matches("http://").to_owned();
    let client = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = stream.read(&mut answer).await.unwrap_or(0);
        String::from_utf8_lossy(&answer[..n]).into_owned()
    });
    let pending = h.pending().await;
    assert_eq!(pending["payload"]["path"], path, "{pending}");
    assert_eq!(pending["payload"]["upgrade"], "websocket", "{pending}");
    assert!(!h.received().iter().any(|r| r["path"] == path), "the stream was opened before anyone approved it");
    client.abort();
}
