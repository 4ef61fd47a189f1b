//! The peers of the HTTP proxy's tests: the real FastAPI upstream
//! (tests/peers/http/upstream.py under uvicorn, installed by
//! scripts/setup.d/http.sh into .venv-http) on a loopback port, and the
//! test kit's gateway (a real SQLite store) serving `/http/items/…` in
//! front of it, under [`POLICY`], with the upstream's own OpenAPI document.
//!
//! A test whose peer is not installed is skipped with a message, so that
//! `cargo test` works before the setup step has run; with
//! `REQUIRE_TEST_PEERS` set (CI, after the setup step) it fails.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use countersign_core::{Request, Status};
use countersign_store::RequestFilter;
use countersign_testkit::fixtures::standard_cast;
use countersign_testkit::{Builder, Served};
use serde_json::Value;

/// The gateway's credential for the upstream; the agent must never see it.
pub const UPSTREAM_TOKEN: &str = "upstream-secret-7f3a9c";

/// Reads are routine; documented writes wait for an SRE; the OpenAPI
/// operation `deleteItem` on the item `protected` is forbidden, however
/// the path spells it; WebSockets (never read-only) are allowed at
/// `/ws/echo`, wait for an SRE at `/ws/held`, and are forbidden at
/// `/ws/admin`; nothing else is allowed.
pub const POLICY: &str = r#"
@id("items-reads-routine")
permit (principal, action == Action::"http.request", resource == Resource::"items")
when { context.facts has http && context.facts.http.read_only };

@id("items-writes-need-sre")
@approvers("sre")
permit (principal, action == Action::"http.request", resource == Resource::"items")
when { context.facts has http && context.facts.http.documented && !context.facts.http.read_only };

@id("items-websocket-echo")
permit (principal, action == Action::"http.request", resource == Resource::"items")
when { context.facts has http && context.facts.http.websocket && context.facts.http.path == "/ws/echo" };

@id("items-websocket-held")
@approvers("sre")
permit (principal, action == Action::"http.request", resource == Resource::"items")
when { context.facts has http && context.facts.http.websocket && context.facts.http.path == "/ws/held" };

@id("never-websocket-admin")
forbid (principal, action == Action::"http.request", resource == Resource::"items")
when { context.facts has http && context.facts.http.websocket && context.facts.http.path == "/ws/admin" };

@id("never-delete-protected")
forbid (principal, action == Action::"http.request", resource == Resource::"items")
when {
  context.facts has http && context.facts.http.operation == "deleteItem" &&
  context.facts.http.path_params has item_id && context.facts.http.path_params.item_id == "protected"
};
"#;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn python() -> PathBuf {
    repo().join(".venv-http/bin/python")
}

/// Whether `what` is installed; otherwise says so and tells the caller to
/// skip, or fails when peers are required.
pub fn present(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    let why = format!("{what} is not installed: run scripts/setup.d/http.sh (or scripts/setup-test-deps)");
    assert!(std::env::var_os("REQUIRE_TEST_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    false
}

/// The Python peers (FastAPI, uvicorn, httpx, requests) are installed.
pub fn python_peers() -> bool {
    let found = Command::new(python())
        .args(["-c", "import fastapi, uvicorn, sse_starlette, httpx, requests, websockets"])
        .output()
        .is_ok_and(|o| o.status.success());
    present("the HTTP peers (.venv-http: fastapi, uvicorn, httpx, requests, websockets)", found)
}

/// The upstream API, killed when dropped.
pub struct Upstream {
    child: Child,
    pub url: String,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Upstream {
    /// Stops the API (it is not restarted).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts upstream.py and waits until it answers.
    pub fn start() -> Self {
        let script = repo().join("tests/peers/http/upstream.py");
        let mut child = Command::new(python())
            .arg(script)
            .env("UPSTREAM_TOKEN", UPSTREAM_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().strip_prefix("port ").unwrap().parse().unwrap();
        let upstream = Self { child, url: format!("http://127.0.0.1:{port}") };
        countersign_testkit::wait::until(Duration::from_secs(20), Duration::from_millis(100), || {
            raw(&upstream.addr(), b"GET /_seen HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .map_err(|e| e.to_string())
                .and_then(|r| if r.starts_with("HTTP/1.1 200") { Ok(()) } else { Err(r) })
        });
        upstream
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// What the API saw last, and how often each `METHOD /path` reached it.
    pub async fn seen(&self) -> Value {
        reqwest::get(format!("{}/_seen", self.url)).await.unwrap().json().await.unwrap()
    }

    /// How often `METHOD /path` reached the API.
    pub async fn calls(&self, key: &str) -> u64 {
        self.seen().await["calls"][key].as_u64().unwrap_or(0)
    }

    /// The API's OpenAPI document, asked with the gateway's credential.
    pub async fn openapi(&self) -> String {
        countersign_testkit::client()
            .get(format!("{}/openapi.json", self.url))
            .bearer_auth(UPSTREAM_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// One raw HTTP/1.1 exchange on a new connection: the whole answer as
/// text (the server closes, or stops after 5 s).
pub fn raw(addr: &str, request: &[u8]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The gateway in front of the upstream, with the standard cast (`bot`
/// the agent, `alice` an SRE).
pub struct Proxy {
    pub kit: countersign_testkit::Gateway,
    _served: Served,
    /// The gateway's base URL.
    pub base: String,
    /// `bot`'s key.
    pub key: String,
    pub upstream: Upstream,
}

impl Proxy {
    /// The proxy for `[[http]] items`, holding a pending request up to
    /// `hold`, bodies up to 256 KiB.
    pub async fn start(hold: &str) -> Self {
        Self::start_with(POLICY, hold).await
    }

    /// [`Proxy::start`] under `policy` instead of [`POLICY`].
    pub async fn start_with(policy: &str, hold: &str) -> Self {
        let upstream = Upstream::start();
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("items-token");
        std::fs::write(&token_file, UPSTREAM_TOKEN).unwrap();
        let openapi_file = dir.path().join("items.openapi.json");
        std::fs::write(&openapi_file, upstream.openapi().await).unwrap();
        let config = format!(
            "[[http]]\nname = \"items\"\nbase_url = \"{}\"\nbearer_token_file = \"{}\"\nopenapi_file = \"{}\"\nhold = \"{hold}\"\nmax_body_bytes = 262144\n",
            upstream.url,
            token_file.display(),
            openapi_file.display(),
        );
        let kit = Builder::new(policy).dir(dir).config(&config).cast(standard_cast()).start().await;
        let served = kit.serve(countersign_http::router(kit.state.clone(), kit.config.http.clone())).await;
        Self { base: served.url.clone(), key: kit.token("bot"), _served: served, kit, upstream }
    }

    /// `/http/items<path>` on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}/http/items{path}", self.base)
    }

    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// The one pending request there is, once it is there.
    pub async fn pending(&self) -> Request {
        for _ in 0..200 {
            let filter = RequestFilter { status: Some(Status::Pending), ..RequestFilter::default() };
            let pending = self.kit.store.list_requests(&filter).await.unwrap();
            if let Some(request) = pending.into_iter().next() {
                return request;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no request became pending");
    }

    /// Request `id` as stored, once its outcome is recorded.
    pub async fn with_outcome(&self, id: &str) -> Request {
        for _ in 0..200 {
            let request = self.kit.store.request(id).await.unwrap().unwrap();
            if request.outcome.is_some() {
                return request;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("request {id} has no outcome");
    }

    /// Every audit event (the chain checked) as JSON text.
    pub async fn audit_text(&self) -> String {
        self.kit.audit().await.iter().map(|e| format!("{} {}\n", e.kind, e.body_value())).collect()
    }
}
