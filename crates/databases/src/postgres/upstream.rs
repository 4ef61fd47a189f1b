//! The gateway's own connection to the database: TCP, TLS verified for
//! the configured host, and a login with the gateway's credential
//! (SCRAM-SHA-256, md5, a password over TLS or loopback, or a client
//! certificate). The client never sees any of it.

use std::sync::Arc;

use bytes::{Buf as _, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::config::{PostgresConfig, UpstreamTls};
use super::wire;
use super::Stream;

/// The largest message read while logging in.
const MAX_LOGIN_MESSAGE: usize = 64 * 1024;
/// The largest message the database may send afterwards (PostgreSQL's own
/// limit on a field is 1 GB).
pub const MAX_BACKEND_MESSAGE: usize = (1 << 30) + 1024;

/// Why the gateway could not log in to the database.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connecting timed out")]
    Timeout,
    #[error("the database refused TLS")]
    NoTls,
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the database answered: {message} ({code})")]
    Refused { code: String, message: String },
    #[error("the database asks for a password and none is configured")]
    NoPassword,
    #[error("the database asks for an authentication method the gateway does not speak ({0})")]
    Method(i32),
    #[error("the database reads statements with `{0}` = `{1}`, which countersign cannot decide on")]
    Reading(String, String),
    #[error("the database broke the protocol: {0}")]
    Protocol(String),
}

/// A logged-in connection and what the database said while logging in.
pub struct Upstream {
    pub stream: Stream,
    /// `ParameterStatus` messages, to pass on to the client.
    pub parameters: Vec<(String, String)>,
    /// The database's process id and secret key, for cancel requests.
    pub key: (i32, i32),
    /// What was read past the login.
    pub leftover: BytesMut,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("parameters", &self.parameters).finish_non_exhaustive()
    }
}

/// Connects and logs in, passing on the client's harmless session
/// settings (`application_name`, encodings, date and time styles).
pub async fn connect(config: &PostgresConfig, settings: &[(String, String)]) -> Result<Upstream, UpstreamError> {
    tokio::time::timeout(config.connect_timeout, connect_inner(config, settings))
        .await
        .map_err(|_| UpstreamError::Timeout)?
}

async fn connect_inner(config: &PostgresConfig, settings: &[(String, String)]) -> Result<Upstream, UpstreamError> {
    let stream = open(config).await?;
    login(config, stream, settings).await
}

/// A TCP connection, with TLS when the configuration asks for it.
pub async fn open(config: &PostgresConfig) -> Result<Stream, UpstreamError> {
    let mut tcp = TcpStream::connect((config.host.as_str(), config.port)).await.map_err(UpstreamError::Connect)?;
    tcp.set_nodelay(true).map_err(UpstreamError::Connect)?;
    match &config.tls {
        UpstreamTls::Disable => Ok(Box::new(tcp)),
        UpstreamTls::VerifyFull { ca_pem } => {
            let mut request = BytesMut::new();
            frontend::ssl_request(&mut request);
            tcp.write_all(&request).await.map_err(UpstreamError::Connect)?;
            let answer = tcp.read_u8().await.map_err(UpstreamError::Connect)?;
            if answer != b'S' {
                return Err(UpstreamError::NoTls);
            }
            let connector = tokio_rustls::TlsConnector::from(client_tls(ca_pem.as_deref(), config)?);
            let name = ServerName::try_from(config.host.clone())
                .map_err(|_| UpstreamError::Tls(format!("`{}` is not a host name", config.host)))?;
            let tls = connector.connect(name, tcp).await.map_err(|e| UpstreamError::Tls(e.to_string()))?;
            Ok(Box::new(tls))
        }
    }
}

fn client_tls(ca_pem: Option<&[u8]>, config: &PostgresConfig) -> Result<Arc<rustls::ClientConfig>, UpstreamError> {
    let bad = |e: &dyn std::fmt::Display| UpstreamError::Tls(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        // The configured CA alone: a public CA must not vouch for an internal database.
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_root_certificates(roots);
    let tls = match &config.client_identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(chain).collect::<Result<_, _>>().map_err(|e| bad(&e))?;
            let key = PrivateKeyDer::from_pem_slice(key.expose().as_bytes()).map_err(|e| bad(&e))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| bad(&e))?
        }
    };
    Ok(Arc::new(tls))
}

async fn login(
    config: &PostgresConfig,
    mut stream: Stream,
    settings: &[(String, String)],
) -> Result<Upstream, UpstreamError> {
    let protocol = |e: std::io::Error| UpstreamError::Protocol(e.to_string());
    // UTF-8 whatever the client asked for: statements are read here as UTF-8.
    let mut params: Vec<(&str, &str)> =
        vec![("user", &config.user), ("database", &config.database), ("client_encoding", "UTF8")];
    params.extend(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut out = BytesMut::new();
    frontend::startup_message(params, &mut out).map_err(protocol)?;
    stream.write_all(&out).await.map_err(UpstreamError::Connect)?;

    let mut buf = BytesMut::with_capacity(8192);
    let mut scram: Option<ScramSha256> = None;
    let mut parameters = Vec::new();
    let mut key = (0, 0);
    loop {
        let frame = next_frame(&mut stream, &mut buf).await?;
        let mut body = frame.slice(5..);
        match frame[0] {
            b'R' => {
                if body.len() < 4 {
                    return Err(UpstreamError::Protocol("short authentication message".to_owned()));
                }
                let code = body.get_i32();
                let mut out = BytesMut::new();
                match code {
                    0 => continue,
                    3 => frontend::password_message(password(config)?.as_bytes(), &mut out).map_err(protocol)?,
                    5 => {
                        let salt: [u8; 4] = body
                            .get(..4)
                            .and_then(|s| s.try_into().ok())
                            .ok_or_else(|| UpstreamError::Protocol("short md5 salt".to_owned()))?;
                        let hash = postgres_protocol::authentication::md5_hash(
                            config.user.as_bytes(),
                            password(config)?.as_bytes(),
                            salt,
                        );
                        frontend::password_message(hash.as_bytes(), &mut out).map_err(protocol)?;
                    }
                    10 => {
                        let offered: Vec<&[u8]> = body.split(|&b| b == 0).collect();
                        if !offered.contains(&&b"SCRAM-SHA-256"[..]) {
                            return Err(UpstreamError::Method(code));
                        }
                        let client = ScramSha256::new(password(config)?.as_bytes(), ChannelBinding::unsupported());
                        frontend::sasl_initial_response("SCRAM-SHA-256", client.message(), &mut out)
                            .map_err(protocol)?;
                        scram = Some(client);
                    }
                    11 => {
                        let client =
                            scram.as_mut().ok_or_else(|| UpstreamError::Protocol("SASL out of turn".into()))?;
                        client.update(&body).map_err(protocol)?;
                        frontend::sasl_response(client.message(), &mut out).map_err(protocol)?;
                    }
                    12 => {
                        let client =
                            scram.as_mut().ok_or_else(|| UpstreamError::Protocol("SASL out of turn".into()))?;
                        // Proves the server knew the password too.
                        client.finish(&body).map_err(protocol)?;
                        continue;
                    }
                    other => return Err(UpstreamError::Method(other)),
                }
                stream.write_all(&out).await.map_err(UpstreamError::Connect)?;
            }
            b'S' => {
                let mut parts = body.split(|&b| b == 0);
                let name = parts.next().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
                let value = parts.next().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
                parameters.push((name, value));
            }
            b'K' => {
                if body.len() < 8 {
                    return Err(UpstreamError::Protocol("short key data".to_owned()));
                }
                key = (body.get_i32(), body.get_i32());
            }
            b'Z' => {
                // A database (or role) set up to read strings with
                // backslash escapes would read statements otherwise than
                // they are decided.
                for (name, value) in &parameters {
                    if !super::relay::reads_as_decided(name.as_bytes(), value.as_bytes()) {
                        return Err(UpstreamError::Reading(name.clone(), value.clone()));
                    }
                }
                return Ok(Upstream { stream, parameters, key, leftover: buf });
            }
            b'E' => {
                let fields = wire::fields(&frame);
                let get = |c: u8| fields.iter().find(|(k, _)| *k == c).map(|(_, v)| v.clone()).unwrap_or_default();
                return Err(UpstreamError::Refused { code: get(b'C'), message: get(b'M') });
            }
            b'N' | b'v' => {}
            other => return Err(UpstreamError::Protocol(format!("unexpected message `{}`", char::from(other)))),
        }
    }
}

fn password(config: &PostgresConfig) -> Result<&str, UpstreamError> {
    config.password.as_ref().map(|p| p.expose()).ok_or(UpstreamError::NoPassword)
}

async fn next_frame(stream: &mut Stream, buf: &mut BytesMut) -> Result<Bytes, UpstreamError> {
    loop {
        match wire::take_frame(buf, MAX_LOGIN_MESSAGE) {
            Ok(Some(frame)) => return Ok(frame),
            Ok(None) => {}
            Err(e) => return Err(UpstreamError::Protocol(e.to_string())),
        }
        let n = stream.read_buf(buf).await.map_err(UpstreamError::Connect)?;
        if n == 0 {
            return Err(UpstreamError::Protocol("the database closed the connection".to_owned()));
        }
    }
}

/// Asks the database to cancel what its process `key` is running.
pub async fn cancel(config: &PostgresConfig, key: (i32, i32)) -> Result<(), UpstreamError> {
    let mut stream =
        tokio::time::timeout(config.connect_timeout, open(config)).await.map_err(|_| UpstreamError::Timeout)??;
    let mut out = BytesMut::new();
    frontend::cancel_request(key.0, key.1, &mut out);
    stream.write_all(&out).await.map_err(UpstreamError::Connect)?;
    stream.flush().await.map_err(UpstreamError::Connect)?;
    Ok(())
}
