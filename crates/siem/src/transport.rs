//! How bytes reach a SIEM: a kept-open TCP or TLS stream, UDP datagrams,
//! HTTP POSTs, or an appended and synced file. Each maps its failures to
//! the outbox's transient (retry with backoff) or permanent (skip) errors.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use countersign_channels::DeliveryError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;

use crate::SetupError;

/// The longest wait for a connection or a write.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest UDP syslog message (RFC 5426 allows what IPv4 carries).
pub const MAX_DATAGRAM: usize = 65_507;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A TCP connection, with TLS when configured, opened on first use and
/// again after any failure.
pub struct Stream {
    address: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    conn: Mutex<Option<Box<dyn Io>>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("address", &self.address).field("tls", &self.tls.is_some()).finish()
    }
}

/// A client TLS config that trusts the CAs in `ca_pem` only: a public CA
/// must not vouch for an internal log server.
pub fn tls_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, SetupError> {
    let bad = |e: &dyn std::fmt::Display| SetupError::Tls(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Stream {
    pub fn tcp(address: &str) -> Self {
        Self { address: address.to_owned(), tls: None, conn: Mutex::new(None) }
    }

    pub fn tls(address: &str, ca_pem: &str, server_name: &str) -> Result<Self, SetupError> {
        let config = tls_config(ca_pem)?;
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| SetupError::Tls(format!("`{server_name}` is not a server name")))?;
        let tls = Some((tokio_rustls::TlsConnector::from(config), name));
        Ok(Self { address: address.to_owned(), tls, conn: Mutex::new(None) })
    }

    /// Writes one frame; a failure closes the connection, so the retry
    /// starts on a new one.
    pub async fn send(&self, frame: &[u8]) -> Result<(), DeliveryError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_mut() {
            // The server never writes: a readable connection was closed by
            // it (a restart), and a write would vanish into its buffer.
            let mut byte = [0u8; 1];
            if let Ok(read) = tokio::time::timeout(Duration::ZERO, conn.read(&mut byte)).await {
                tracing::debug!(address = %self.address, ?read, "the syslog server closed the connection; reconnecting");
                *guard = None;
            }
        }
        let conn = match guard.as_mut() {
            Some(conn) => conn,
            None => guard.insert(self.connect().await?),
        };
        let written = tokio::time::timeout(IO_TIMEOUT, async {
            conn.write_all(frame).await?;
            conn.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                *guard = None;
                Err(DeliveryError::Transient(format!("cannot write to `{}`: {e}", self.address)))
            }
            Err(_) => {
                *guard = None;
                Err(DeliveryError::Transient(format!("writing to `{}` timed out", self.address)))
            }
        }
    }

    async fn connect(&self) -> Result<Box<dyn Io>, DeliveryError> {
        let transient = |what: String| DeliveryError::Transient(what);
        let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&self.address))
            .await
            .map_err(|_| transient(format!("connecting to `{}` timed out", self.address)))?
            .map_err(|e| transient(format!("cannot connect to `{}`: {e}", self.address)))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(IO_TIMEOUT, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| transient(format!("the TLS handshake with `{}` timed out", self.address)))?
                    .map_err(|e| transient(format!("TLS with `{}` failed: {e}", self.address)))?;
                Ok(Box::new(tls))
            }
        }
    }
}

/// UDP datagrams to one address.
#[derive(Debug)]
pub struct Datagrams {
    address: String,
    socket: Mutex<Option<UdpSocket>>,
}

impl Datagrams {
    pub fn new(address: &str) -> Self {
        Self { address: address.to_owned(), socket: Mutex::new(None) }
    }

    pub async fn send(&self, message: &[u8]) -> Result<(), DeliveryError> {
        if message.len() > MAX_DATAGRAM {
            return Err(DeliveryError::Permanent(format!(
                "the message has {} bytes, more than a UDP datagram carries",
                message.len()
            )));
        }
        let mut guard = self.socket.lock().await;
        let socket = match guard.as_mut() {
            Some(socket) => socket,
            None => {
                let local = if self.address.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| DeliveryError::Transient(format!("cannot open a UDP socket: {e}")))?;
                socket
                    .connect(&self.address)
                    .await
                    .map_err(|e| DeliveryError::Transient(format!("cannot reach `{}`: {e}", self.address)))?;
                guard.insert(socket)
            }
        };
        match socket.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                *guard = None;
                Err(DeliveryError::Transient(format!("cannot send to `{}`: {e}", self.address)))
            }
        }
    }
}

/// An HTTP client for one sink, trusting `ca_pem` when given (else the
/// system's roots).
pub fn http_client(ca_pem: Option<&str>) -> Result<reqwest::Client, SetupError> {
    // rustls needs a process-wide provider; another component may have
    // installed it already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(IO_TIMEOUT)
        .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = ca_pem {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| SetupError::Tls(e.to_string()))?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| SetupError::Http(e.to_string()))
}

/// POSTs `body`; 2xx is delivered, 400/404/413/415/422 can never succeed,
/// anything else (5xx, 429, 401/403 until the token is fixed) is retried.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    authorization: Option<String>,
    body: Vec<u8>,
) -> Result<(), DeliveryError> {
    let mut request = client.post(url).header(reqwest::header::CONTENT_TYPE, content_type).body(body);
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    let origin = countersign_channels::health::origin(url);
    let mut response = request
        .send()
        .await
        .map_err(|e| DeliveryError::Transient(format!("cannot reach `{origin}`: {}", e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // The start of the answer says why; the rest is not read.
    let mut start = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        start.extend_from_slice(&chunk);
        if start.len() >= 1024 {
            break;
        }
    }
    let text: String = String::from_utf8_lossy(&start).chars().take(200).collect();
    let reason = format!("`{origin}` answered HTTP {}: {text}", status.as_u16());
    match status.as_u16() {
        400 | 404 | 413 | 415 | 422 => Err(DeliveryError::Permanent(reason)),
        _ => Err(DeliveryError::Transient(reason)),
    }
}

/// Appends `line` to the file and syncs it to disk before reporting success.
pub async fn append(path: &Path, line: Vec<u8>) -> Result<(), DeliveryError> {
    let path = path.to_owned();
    let shown = path.display().to_string();
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(&line)?;
        file.sync_data()
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DeliveryError::Transient(format!("cannot append to `{shown}`: {e}"))),
        Err(e) => Err(DeliveryError::Transient(format!("cannot append to `{shown}`: {e}"))),
    }
}
