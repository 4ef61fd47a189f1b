//! What an agent might try: reading the API's credential back (in
//! headers, errors, the audit log, or through a redirect to its own
//! host), passing its own credential or hop-by-hop headers on, request
//! smuggling, huge and deep bodies, and names that look like the API's.

use std::io::Read as _;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{python_peers, raw, Proxy, UPSTREAM_TOKEN};

/// A listener that counts the connections it gets (a host the agent owns).
fn trap() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut stream) = stream {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
            }
        }
    });
    (addr, count)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_never_reads_the_upstream_credential_back() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    countersign_testkit::install_crypto_provider();
    // The agent's own client does not follow redirects either: what it is
    // told is what is checked.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut answers = String::new();
    // The API got the gateway's credential, and neither the agent's key nor its cookie.
    let response = client
        .get(proxy.url("/items/1"))
        .bearer_auth(&proxy.key)
        .header("cookie", "session=agent")
        .header("proxy-authorization", format!("Bearer {}", proxy.key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    answers.push_str(&format!("{:?}", response.headers()));
    answers.push_str(&response.text().await.unwrap());
    let seen = proxy.upstream.seen().await;
    assert_eq!(seen["credential_ok"], true, "{seen}");
    assert_eq!(seen["agent_key_seen"], false, "{seen}");
    assert_eq!(seen["cookie_seen"], false, "{seen}");
    assert!(!seen["headers"].as_array().unwrap().iter().any(|h| h == "proxy-authorization"), "{seen}");

    // A redirect to the agent's own host goes back to the agent, unfollowed.
    let (trap_addr, trapped) = trap();
    let to = format!("http://{trap_addr}/steal");
    let response = client.get(proxy.url(&format!("/elsewhere?to={to}"))).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], to.as_str());
    answers.push_str(&format!("{:?}", response.headers()));
    answers.push_str(&response.text().await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(trapped.load(Ordering::SeqCst), 0, "the gateway followed the redirect");

    // Errors: an unknown API, a bad path, a body too large, the API down.
    for (method, path, body) in [
        ("GET", "/http/nope/x", String::new()),
        ("GET", "/http/items/a/../b", String::new()),
        ("POST", "/http/items/items", "x".repeat(300_000)),
    ] {
        let response = client
            .request(method.parse().unwrap(), format!("{}{path}", proxy.base))
            .bearer_auth(&proxy.key)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{path}");
        answers.push_str(&format!("{:?}", response.headers()));
        answers.push_str(&response.text().await.unwrap());
    }
    assert!(!answers.contains(UPSTREAM_TOKEN), "{answers}");
    let audit = proxy.audit_text().await;
    assert!(!audit.contains(UPSTREAM_TOKEN));
    assert!(!audit.contains(&proxy.key), "the agent's key is in the audit log");
    assert!(!audit.to_ascii_lowercase().contains("authorization"), "{audit}");
}

/// What the gateway logs, kept in memory.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// On one thread, so that every task of the gateway logs to this test's
/// subscriber, at `trace` for every crate (stricter than any deployment).
#[tokio::test(flavor = "current_thread")]
async fn nothing_the_gateway_logs_holds_a_credential() {
    if !python_peers() {
        return;
    }
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut proxy = Proxy::start("1s").await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (trap_addr, _) = trap();
    for (method, path) in [
        ("GET", "/items/1"),
        ("GET", "/chunks?count=2"),
        ("DELETE", "/items/protected"),
        ("POST", "/items"),
        ("GET", &format!("/elsewhere?to=http://{trap_addr}/x") as &str),
    ] {
        let response = client
            .request(method.parse().unwrap(), proxy.url(path))
            .bearer_auth(&proxy.key)
            .json(&json!({"id": "l", "name": "log"}))
            .send()
            .await
            .unwrap();
        let _ = response.text().await;
    }
    proxy.upstream.stop();
    let response = client.get(proxy.url("/items/1")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 502);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(text.contains("http"), "nothing was logged: {text}");
    assert!(!text.contains(UPSTREAM_TOKEN), "the API's credential is in the log");
    assert!(!text.contains(&proxy.key), "the agent's key is in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_that_is_down_is_a_502_that_names_no_address() {
    if !python_peers() {
        return;
    }
    let mut proxy = Proxy::start("20s").await;
    let port = proxy.upstream.addr().rsplit(':').next().unwrap().to_owned();
    proxy.upstream.stop();
    let client = countersign_testkit::client();
    let response = client.get(proxy.url("/items/1")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "bad_gateway");
    assert!(!text.contains(&port) && !text.contains("127.0.0.1") && !text.contains(UPSTREAM_TOKEN), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_headers_are_stripped_and_host_is_the_apis() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let request = format!(
        "GET /http/items/items/1 HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {}\r\n\
         Connection: close, x-private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\
         X-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\nAccept: application/json\r\n\
         X-Request-Id: r-1\r\nX-Custom: c\r\n\r\n",
        proxy.key
    );
    let answer = raw(&proxy.addr(), request.as_bytes()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = proxy.upstream.seen().await;
    assert_eq!(seen["host"], proxy.upstream.addr().as_str(), "{seen}");
    let headers: Vec<&str> = seen["headers"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    for dropped in ["x-private", "keep-alive", "te", "upgrade", "x-forwarded-for", "forwarded", "x-custom", "cookie"] {
        assert!(!headers.contains(&dropped), "{dropped} was forwarded: {headers:?}");
    }
    assert!(headers.contains(&"accept") && headers.contains(&"x-request-id"), "{headers:?}");
    assert_eq!(seen["agent_key_seen"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn smuggling_is_refused_with_400_and_never_forwarded() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let key = &proxy.key;
    // If any of these were read as two requests, the second would reach the API.
    let smuggled =
        format!("0\r\n\r\nGET /http/items/items/1 HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {key}\r\n\r\n");
    let head = format!("PUT /http/items/items/1 HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n");
    let refused = [
        format!("{head}Content-Length: 4\r\nContent-Length: 40\r\n\r\n{{}}\r\n{smuggled}"),
        format!("{head}Transfer-Encoding: gzip, chunked\r\n\r\n{smuggled}"),
        format!("{head}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n{smuggled}"),
        format!("{head}Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n{smuggled}"),
        format!("{head}Content-Length: +4\r\n\r\n{{}}\r\n{smuggled}"),
        format!("{head}Content-Length: 4, 5\r\n\r\n{{}}\r\n{smuggled}"),
    ];
    for attempt in &refused {
        let answer = raw(&proxy.addr(), attempt.as_bytes()).unwrap_or_else(|e| panic!("{attempt:?}: {e}"));
        assert!(answer.starts_with("HTTP/1.1 400"), "{attempt:?} → {answer}");
        // One answer only: the smuggled request was not read as a second one.
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    }
    // Both lengths: hyper drops `Content-Length` before the proxy sees the
    // request and reads it as chunked (RFC 9112 6.3), then closes the
    // connection after one answer; either way nothing smuggled is read.
    for attempt in [
        format!("{head}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{smuggled}"),
        format!("{head}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{smuggled}"),
    ] {
        let answer = raw(&proxy.addr(), attempt.as_bytes()).unwrap_or_else(|e| panic!("{attempt:?}: {e}"));
        assert!(answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 403"), "{attempt:?} → {answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    }
    assert_eq!(proxy.upstream.calls("PUT /items/1").await, 0);
    assert_eq!(proxy.upstream.calls("GET /items/1").await, 0);
    // What was decided (the two chunked ones, denied) had an empty body.
    for request in proxy.kit.store.list_requests(&Default::default()).await.unwrap() {
        assert_eq!(request.action.payload["body_bytes"], 0, "{:?}", request.action.payload);
        assert_eq!(request.action.payload["method"], "PUT");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_and_deep_bodies_are_bounded() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let client = countersign_testkit::client();
    // Over `max_body_bytes` (256 KiB): 413.
    let huge = format!("[{}0]", "0,".repeat(200_000));
    let response = client.post(proxy.url("/items")).bearer_auth(&proxy.key).header("content-type", "application/json");
    let response = response.body(huge.clone()).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["connection"], "close", "the unread rest of the body ends the connection");
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "payload_too_large");
    // Deep JSON within the limit: described by its digest, decided, no crash.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let response = client
        .put(proxy.url("/items/1"))
        .bearer_auth(&proxy.key)
        .header("content-type", "application/json")
        .body(deep.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    let request = proxy.kit.store.request(body["error"]["request"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(request.action.payload["body_bytes"], deep.len());
    assert!(request.action.payload.get("body").is_none());
    assert_eq!(request.action.payload["body_sha256"].as_str().unwrap().len(), 64);
    // Many headers, a long path: refused or decided, never a crash.
    let long = format!("/items/{}", "a".repeat(20_000));
    let response = client.get(proxy.url(&long)).bearer_auth(&proxy.key).send().await.unwrap();
    assert!(response.status().as_u16() < 500, "{}", response.status());
    assert_eq!(proxy.upstream.calls("POST /items").await, 0);
    assert_eq!(proxy.upstream.calls("PUT /items/1").await, 0);
    // Still serving.
    let response = client.get(proxy.url("/items/1")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn lookalike_names_and_paths_do_not_reach_the_api() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    // Sent as written (a client library might normalise some of them).
    for path in [
        "/http/Items/items/1",
        "/http/item%D1%95/items/1", // Cyrillic ѕ
        "/http/items%20/items/1",
        "/http/items./items/1",
        "/http/%69tems/items/1",
        "/http/items-/items/1",
        "/http/itemsitems/1",
        "/http/items/items/1/../../_seen",
        "/http/items/items/%2e%2E/openapi.json",
        "/http/items/items%2f1",
        "/http/items/items%5C1",
        "/http/items/items/1%00",
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            proxy.key
        );
        let answer = raw(&proxy.addr(), request.as_bytes()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
    // A WebSocket upgrade is decided as one (never read-only, so the
    // routine-reads rule does not let it through), not forwarded as a plain GET;
    // `h2c` is refused before any decision.
    let upgrade = format!(
        "GET /http/items/undocumented HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {}\r\nConnection: Upgrade\r\n\
         Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        proxy.key
    );
    let answer = raw(&proxy.addr(), upgrade.as_bytes()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403") && answer.contains("\"denied\""), "{answer}");
    let h2c = format!(
        "GET /http/items/items/1 HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {}\r\nConnection: Upgrade, HTTP2-Settings\r\n\
         Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        proxy.key
    );
    let answer = raw(&proxy.addr(), h2c.as_bytes()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 501") && answer.contains("upgrade_not_supported"), "{answer}");
    for method in ["TRACE", "CONNECT"] {
        let answer = raw(
            &proxy.addr(),
            format!("{method} /http/items/items/1 HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", proxy.key)
                .as_bytes(),
        )
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 405") || answer.starts_with("HTTP/1.1 400"), "{method}: {answer}");
    }
    let seen = proxy.upstream.seen().await;
    // Only the test's own fetch of the OpenAPI document reached the API.
    assert_eq!(seen["calls"], json!({"GET /openapi.json": 1}), "{seen}");
    // Turn-aways are audited with who sent them, in bounded size (the first
    // ones of a window as records, the rest counted into one aggregate).
    let events = proxy.kit.store.audit_events(0, 10_000).await.unwrap();
    let rejected: Vec<_> = events.iter().filter(|e| e.kind == "request.rejected").collect();
    for code in ["not_found", "bad_request"] {
        let event = rejected
            .iter()
            .find(|e| serde_json::from_str::<Value>(&e.body).unwrap()["code"] == code)
            .unwrap_or_else(|| panic!("{code}: {rejected:?}"));
        assert_eq!(event.actor, "agent:bot", "{event:?}");
        assert!(event.body.len() < 2048, "{event:?}");
    }
}

/// Reads are routine, but never of `/items/protected`, matched as a path
/// string: what an escape, a path parameter, a doubled slash or a
/// lower-case method could dodge if the policy saw another spelling than
/// the API resolves.
const PATH_POLICY: &str = r#"
@id("items-reads-routine")
permit (principal, action == Action::"http.request", resource == Resource::"items")
when { context.facts has http && context.facts.http.read_only };

@id("never-read-protected")
forbid (principal, action == Action::"http.request", resource == Resource::"items")
when { context.facts has http && context.facts.http.path == "/items/protected" };
"#;

#[tokio::test(flavor = "multi_thread")]
async fn spellings_the_api_reads_otherwise_are_refused_or_decided_as_it_reads_them() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start_with(PATH_POLICY, "20s").await;
    let send = |line: &str| {
        let request =
            format!("{line} HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", proxy.key);
        raw(&proxy.addr(), request.as_bytes()).unwrap()
    };
    // An escaped letter is the same path to the API: decided as such.
    for path in ["/items/%70rotected", "/items/prot%65cted", "/items/%70%72%6F%74%65%63%74%65%64"] {
        let answer = send(&format!("GET /http/items{path}"));
        assert!(answer.starts_with("HTTP/1.1 403") && answer.contains("never-read-protected"), "{path}: {answer}");
    }
    // Spellings a server could resolve to another path, and methods that
    // are not what the policy would see upper-cased.
    for line in [
        "GET /http/items/items/protected;x=1",
        "GET /http/items/items/..;/_seen",
        "GET /http/items//items/protected",
        "GET /http/items/items//protected",
        "GET /http/items/items/%252e%252e/_seen",
        "GET /http/items/items/100%",
        "get /http/items/items/1",
        "Get /http/items/items/1",
    ] {
        let answer = send(line);
        assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("bad_request"), "{line}: {answer}");
    }
    // What was decided is what the API got: the path in its one spelling,
    // the query escaped as it goes (a character that reorders what the
    // approver reads cannot hide in it).
    let answer = send("GET /http/items/items/%31?to=acct\u{202E}1&n='x'");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = proxy.upstream.seen().await;
    assert_eq!(seen["calls"], json!({"GET /openapi.json": 1, "GET /items/1": 1}), "{seen}");
    assert_eq!(seen["query"], "to=acct%E2%80%AE1&n=%27x%27", "{seen}");
    let id = answer.lines().find_map(|l| l.strip_prefix("countersign-request: ")).unwrap().trim().to_owned();
    let request = proxy.kit.store.request(&id).await.unwrap().unwrap();
    assert_eq!(request.action.payload["query"], seen["query"]);
    let decided: Vec<Value> = proxy
        .kit
        .store
        .list_requests(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action.payload["path"].clone())
        .collect();
    assert!(decided.iter().all(|p| p == "/items/protected" || p == "/items/1"), "{decided:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_that_echoes_the_credential_never_hands_it_to_the_agent() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let client = countersign_testkit::client();
    // Streamed back: the header that says it is dropped, the body masked
    // byte for byte (its declared length still holds).
    let response = client.get(proxy.url("/echo")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-echo-authorization").is_none(), "{:?}", response.headers());
    let length: usize = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let body = response.text().await.unwrap();
    assert_eq!(body.len(), length);
    assert!(!body.contains(UPSTREAM_TOKEN), "{body}");
    let masked = "*".repeat(UPSTREAM_TOKEN.len());
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["headers"]["authorization"], format!("Bearer {masked}"));
    // The API did get it (so it was echoed, then masked).
    assert_eq!(proxy.upstream.seen().await["credential_ok"], true);
    // A body that ends with what could begin the credential: held back,
    // then passed on at the end, whole.
    let response = client.get(proxy.url("/echo/text?cut=6")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), format!("Bearer {masked}\n{}", &UPSTREAM_TOKEN[..6]));

    // Kept for a client that did not wait, then collected: masked too.
    let response =
        client.post(proxy.url("/echo")).bearer_auth(&proxy.key).header("prefer", "respond-async").send().await.unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let id = body["request"].as_str().unwrap().to_owned();
    let (status, _) = proxy.kit.approve("alice", &id).await;
    assert_eq!(status, 200);
    let result = format!("{}/v1/http/results/{id}", proxy.base);
    let started = std::time::Instant::now();
    let collected = loop {
        let response = client.get(&result).bearer_auth(&proxy.key).send().await.unwrap();
        if response.status() != 202 {
            break response;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(collected.status(), 200);
    assert!(collected.headers().get("x-echo-authorization").is_none());
    let body = collected.text().await.unwrap();
    assert!(!body.contains(UPSTREAM_TOKEN) && body.contains(&masked), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_and_many_headers_are_refused_and_the_gateway_keeps_serving() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let head = format!("GET /http/items/items/1 HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {}\r\n", proxy.key);
    let many: String = (0..5_000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let huge = format!("X-Huge: {}\r\n", "a".repeat(1024 * 1024));
    for extra in [many, huge] {
        let request = format!("{head}{extra}Connection: close\r\n\r\n");
        // Refused (431/400), or the connection closed on the sender: never answered 200.
        let answer = raw(&proxy.addr(), request.as_bytes()).unwrap_or_default();
        assert!(!answer.starts_with("HTTP/1.1 200"), "{}", answer.lines().next().unwrap_or_default());
    }
    let seen = proxy.upstream.seen().await;
    assert_eq!(seen["calls"], json!({"GET /openapi.json": 1}), "{seen}");
    let response =
        countersign_testkit::client().get(proxy.url("/items/1")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 200);
}
