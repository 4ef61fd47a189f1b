//! Client commands against a gateway behind TLS (as behind an ingress that
//! terminates it): trusted through `--ca-file` / `COUNTERSIGN_CA_FILE`, and
//! refused at once, with one clear line, when the certificate does not verify.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{add_identity, assert_code, serve, stderr, stdout};
use countersign_testkit::tls::pki;
use tokio_rustls::rustls;

/// Terminates TLS on a free port and passes each connection to `backend`.
async fn terminate_tls(config: rustls::ServerConfig, backend: u16) -> u16 {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_reach_an_https_gateway_through_the_given_ca_only() {
    countersign_testkit::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data, "127.0.0.1:0");
    let agent = add_identity(&data, &["agents", "add", "deploy-bot"]);
    let (ca_pem, config) = pki();
    let (other_ca_pem, _) = pki();
    let (ca_file, other_file) = (tmp.path().join("ca.pem"), tmp.path().join("other.pem"));
    std::fs::write(&ca_file, ca_pem).unwrap();
    std::fs::write(&other_file, other_ca_pem).unwrap();
    let url = format!("https://localhost:{}", terminate_tls(config, server.port).await);

    let run = move |ca: Option<std::path::PathBuf>| {
        let (url, agent) = (url.clone(), agent.clone());
        tokio::task::spawn_blocking(move || {
            let mut command = common::bin();
            command.env("COUNTERSIGN_SERVER", &url).env("COUNTERSIGN_TOKEN", &agent);
            if let Some(ca) = ca {
                command.env("COUNTERSIGN_CA_FILE", ca);
            }
            let started = Instant::now();
            let output = command
                .args(["exec", "--kind", "shell.exec", "--resource", "staging-web", "--", "echo", "hi"])
                .output();
            (output.unwrap(), started.elapsed())
        })
    };

    // Trusted through the CA that issued the certificate.
    let (output, _) = run(Some(ca_file)).await.unwrap();
    assert_code(&output, 0);
    assert_eq!(stdout(&output), "hi\n");

    // The system roots do not know this CA, and neither does another CA:
    // refused at once (not retried as if the gateway were restarting),
    // with one line that says what to do, and nothing ran.
    for ca in [None, Some(other_file)] {
        let (output, took) = run(ca).await.unwrap();
        assert_code(&output, 1);
        assert_eq!(stdout(&output), "");
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains("TLS certificate that is not trusted") && message.contains("--ca-file"), "{message}");
        assert!(took < Duration::from_secs(20), "a certificate failure must not be retried: {took:?}");
    }
}
