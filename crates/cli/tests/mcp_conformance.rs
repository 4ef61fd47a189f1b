//! Transparency: the MCP conformance suite (`@modelcontextprotocol/conformance`,
//! server mode) run against server-everything over Streamable HTTP, once
//! directly and once through the gateway's `/mcp/everything` with a policy
//! that allows every tool call. Every check that passes directly must pass
//! through the proxy. The suite cannot send a bearer token, so a small
//! loopback forwarder adds the agent's key to each request, as a
//! configured MCP client would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mcp_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcp_support::{everything_http, node, peer, Gateway};
use serde_json::Value;

/// Runs the suite against `url`; returns each check's status by
/// `scenario/check-id`.
fn conformance(url: &str, out: &Path) -> BTreeMap<String, String> {
    let mut child = Command::new(node())
        .arg(peer("tests/peers/node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--url", url, "-o"])
        .arg(out)
        .env(
            "PATH",
            format!("{}:{}", Path::new(&node()).parent().unwrap().display(), std::env::var("PATH").unwrap_or_default()),
        )
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out.with_extension("log")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("the conformance suite did not finish against {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if std::env::var_os("MCP_DEBUG").is_some() {
        let log = std::fs::read_to_string(out.with_extension("log")).unwrap_or_default();
        eprintln!("=== {url}\n{}", log.chars().take(3000).collect::<String>());
    }
    let mut checks = BTreeMap::new();
    for dir in std::fs::read_dir(out).unwrap().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        // `server-<scenario>-<YYYY-MM-DDTHH-MM-SS…>`
        let name = name.trim_start_matches("server-");
        let stamp = (0..name.len()).find(|&i| {
            let rest = name.as_bytes().get(i..i + 12).unwrap_or_default();
            rest.len() == 12 && rest[0] == b'-' && rest[5] == b'-' && rest[8] == b'-' && rest[11] == b'T'
        });
        let scenario = name[..stamp.unwrap_or(name.len())].to_owned();
        let Ok(text) = std::fs::read_to_string(dir.path().join("checks.json")) else { continue };
        let list: Vec<Value> = serde_json::from_str(&text).unwrap_or_default();
        for check in list {
            let status = check["status"].as_str().unwrap_or("").to_owned();
            if status == "INFO" {
                continue;
            }
            checks.insert(format!("{scenario}/{}", check["id"].as_str().unwrap_or("?")), status);
        }
    }
    assert!(
        !checks.is_empty(),
        "the conformance suite reported nothing: {}",
        std::fs::read_to_string(out.with_extension("log")).unwrap_or_default()
    );
    checks
}

/// Forwards loopback connections to `target`, adding `Authorization`
/// to each request (one request per connection).
fn auth_forwarder(target: String, bearer: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let target = target.clone();
            let bearer = bearer.clone();
            std::thread::spawn(move || {
                let _ = forward(client, &target, &bearer);
            });
        }
    });
    port
}

fn forward(mut client: TcpStream, target: &str, bearer: &str) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines: Vec<&str> = head.trim_end().split("\r\n").collect();
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let mut rewritten = lines.join("\r\n");
    rewritten.push_str(&format!("\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n"));
    let mut server = TcpStream::connect(target)?;
    server.write_all(rewritten.as_bytes())?;
    let mut upload = client.try_clone()?;
    let mut server_write = server.try_clone()?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut upload, &mut server_write);
    });
    std::io::copy(&mut server, &mut client)?;
    let _ = client.shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn config(url: &str) -> String {
    let spawned = mcp_support::everything_stdio().iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    format!("[mcp.upstreams.everything]\nurl = {url:?}\n\n[mcp.upstreams.spawned]\ncommand = [{spawned}]\n")
}

#[test]
fn the_conformance_suite_passes_through_the_proxy_as_it_does_directly() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url) = everything_http(&tmp.path().join("everything.log"));
    let direct = conformance(&url, &tmp.path().join("direct"));

    let allow_all = "@id(\"allow-all-tools\")\npermit (principal, action == Action::\"mcp.tool_call\", resource);\n";
    let g = Gateway::start_with_policy(&config(&url), allow_all);
    let port = auth_forwarder(g.addr.clone(), g.agent.clone());
    let proxied = conformance(&format!("http://127.0.0.1:{port}/mcp/everything"), &tmp.path().join("proxied"));
    let spawned = conformance(&format!("http://127.0.0.1:{port}/mcp/spawned"), &tmp.path().join("spawned"));
    compare("url upstream", &direct, &proxied, &g);
    compare("command upstream (server-everything on stdio, one process per session)", &direct, &spawned, &g);
    let passed = |checks: &BTreeMap<String, String>| checks.values().filter(|s| *s == "SUCCESS").count();
    assert!(passed(&direct) >= 10, "the direct run passed only {} checks: {direct:#?}", passed(&direct));
}

fn compare(what: &str, direct: &BTreeMap<String, String>, proxied: &BTreeMap<String, String>, g: &Gateway) {
    let passed = |checks: &BTreeMap<String, String>| checks.values().filter(|s| *s == "SUCCESS").count();
    eprintln!(
        "conformance, {what}: direct {}/{} checks pass; through the proxy {}/{}",
        passed(direct),
        direct.len(),
        passed(proxied),
        proxied.len()
    );
    let mut lost = Vec::new();
    for (check, status) in direct {
        let through = proxied.get(check).map(String::as_str).unwrap_or("missing");
        if status == "SUCCESS" && through != "SUCCESS" {
            lost.push(format!("{check}: {through}"));
        }
        if status != through {
            eprintln!("  {check}: direct {status}, through the proxy {through}");
        }
    }
    assert!(
        lost.is_empty(),
        "{what}: checks that pass directly but not through the proxy: {lost:#?}\ngateway log:\n{}",
        g.log()
    );
}
