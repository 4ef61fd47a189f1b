//! Serving a gateway on loopback as `countersign serve` does (with the
//! routes of other crates merged in), and an HTTP client to call it.

use std::net::SocketAddr;

use axum::Router;
use countersign_gateway::AppState;
use countersign_server::config::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Installs the crypto provider TLS clients use. The workspace build
/// gives reqwest `rustls-no-provider` (the binary's choice), so a client
/// made before this would have none.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain client, with the crypto provider installed.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// A bound loopback port, for a test that needs the gateway's URL (its
/// `public_url`, a provider's redirect URI) before the gateway exists.
#[derive(Debug)]
pub struct Loopback {
    listener: TcpListener,
    pub addr: SocketAddr,
    pub url: String,
}

impl Loopback {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Self { listener, addr, url: format!("http://{addr}") }
    }

    /// Serves `state` with the API's `server` config, with `extra` routes
    /// merged in, until the returned handle is dropped.
    pub fn serve(self, state: AppState, server: ServerConfig, extra: Router) -> Served {
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            countersign_server::serve_with(state, server, extra, self.listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Served { url: self.url, stop: Some(stop) }
    }
}

/// A gateway serving on loopback; dropping it shuts it down gracefully.
#[derive(Debug)]
pub struct Served {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
