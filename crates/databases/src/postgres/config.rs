//! The `[[postgres]]` sections: each one a PostgreSQL database that
//! agents reach only through the gateway, which holds its credential.
//!
//! ```toml
//! [[postgres]]
//! resource = "orders-db"              # the name policies see
//! listen = "0.0.0.0:6432"             # where PostgreSQL clients connect
//! tls_cert_file = "/etc/countersign/pg.crt"   # the gateway's certificate for clients
//! tls_key_file = "/etc/countersign/pg.key"
//! host = "orders.internal"            # the database itself
//! port = 5432
//! database = "orders"
//! user = "countersign"                # the gateway's own role there
//! password_file = "/run/secrets/orders-db-password"   # or `password_env = "ORDERS_DB_PASSWORD"`
//! tls = "verify-full"                 # `verify-full` (default) or `disable` (loopback only)
//! ca_file = "/etc/countersign/orders-ca.pem"          # default: the system's roots
//! max_sessions_per_principal = 32     # open sessions (database connections) per principal
//! ```
//!
//! Clients log in as their countersign identity: the user name is the
//! agent's or person's name and the password is their countersign key
//! (or a workload or IdP token). Without `tls_cert_file` the endpoint
//! takes connections from loopback addresses only, so no credential
//! crosses a network in clear text.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use countersign_gateway::config::{duration, secret, ConfigError, Environment, Secret};
use serde::Deserialize;

/// The most bytes one client message may hold (a query, a bound
/// parameter set, a `COPY` chunk): bounds what a connection can make the
/// gateway buffer.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// How many sessions one principal may hold open at once: an agent with
/// a valid credential must not take every connection the database has.
pub const DEFAULT_MAX_SESSIONS_PER_PRINCIPAL: usize = 32;
/// The largest file read for a secret or a certificate.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// `[[postgres]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    pub resource: Option<String>,
    pub listen: Option<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The name of an environment variable holding the password.
    pub password_env: Option<String>,
    /// `verify-full` (default) or `disable`.
    pub tls: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// A client certificate and key for the gateway's own login.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// How long connecting to the database may take. Default `10s`.
    pub connect_timeout: Option<String>,
    /// Ask the database for `EXPLAIN` of a held write. Default true.
    pub preview: Option<bool>,
    /// How long the preview may take. Default `2s`.
    pub preview_timeout: Option<String>,
    /// The largest client message. Default 16 MiB.
    pub max_message_bytes: Option<usize>,
    /// How many sessions one principal may hold open at once (each is a
    /// database connection). Default 32.
    pub max_sessions_per_principal: Option<usize>,
}

/// TLS from the gateway to the database.
#[derive(Clone, PartialEq, Eq)]
pub enum UpstreamTls {
    /// None: only for a database on a loopback address.
    Disable,
    /// TLS, with the certificate verified for `host` against `ca_pem` (or
    /// the system's roots).
    VerifyFull { ca_pem: Option<Vec<u8>> },
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disable => f.write_str("Disable"),
            Self::VerifyFull { ca_pem } => {
                f.debug_struct("VerifyFull").field("ca_pem", &ca_pem.as_ref().map(Vec::len)).finish()
            }
        }
    }
}

/// One validated `[[postgres]]` section.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub resource: String,
    pub listen: SocketAddr,
    /// The gateway's certificate chain and key for clients (PEM).
    pub server_tls: Option<Arc<rustls::ServerConfig>>,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Option<Secret>,
    pub tls: UpstreamTls,
    /// PEM certificate chain and key the gateway presents to the database.
    pub client_identity: Option<(Vec<u8>, Secret)>,
    pub connect_timeout: Duration,
    pub preview: bool,
    pub preview_timeout: Duration,
    pub max_message_bytes: usize,
    pub max_sessions_per_principal: usize,
}

/// Validates every `[[postgres]]` section.
pub fn validate(raw: Vec<RawPostgres>, env: &dyn Environment) -> Result<Vec<PostgresConfig>, ConfigError> {
    let mut out: Vec<PostgresConfig> = Vec::with_capacity(raw.len());
    for section in raw {
        let config = validate_one(section, env)?;
        if let Some(twin) = out.iter().find(|c| c.resource == config.resource || c.listen == config.listen) {
            return Err(invalid(format!(
                "`{}` and `{}` share a resource name or a listen address",
                twin.resource, config.resource
            )));
        }
        out.push(config);
    }
    Ok(out)
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid { key: "postgres", message }
}

fn validate_one(raw: RawPostgres, env: &dyn Environment) -> Result<PostgresConfig, ConfigError> {
    let resource = raw.resource.ok_or_else(|| invalid("every `[[postgres]]` needs a `resource`".to_owned()))?;
    if let Err(e) = countersign_core::names::check_resource(&resource) {
        return Err(invalid(format!("`resource`: {e}")));
    }
    let named = |message: &str| invalid(format!("`{resource}`: {message}"));
    let listen_text = raw.listen.ok_or_else(|| named("`listen` is required (e.g. `127.0.0.1:6432`)"))?;
    let listen: SocketAddr = listen_text
        .parse()
        .map_err(|_| named(&format!("`listen`: `{listen_text}` is not an address such as `127.0.0.1:6432`")))?;
    let server_tls = match (raw.tls_cert_file, raw.tls_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(server_tls(&resource, &cert, &key)?),
        (Some(_), None) | (None, Some(_)) => {
            return Err(named("give both `tls_cert_file` and `tls_key_file`, or neither"));
        }
    };
    let host = raw.host.unwrap_or_else(|| "127.0.0.1".to_owned());
    if host.trim().is_empty() {
        return Err(named("`host` is empty"));
    }
    let database = raw.database.ok_or_else(|| named("`database` is required"))?;
    let user = raw.user.ok_or_else(|| named("`user` (the gateway's own role in the database) is required"))?;
    let from_env = match raw.password_env {
        None => None,
        Some(var) => {
            let found = env.vars_with_prefix(&var).into_iter().find(|(name, _)| *name == var);
            match found {
                Some((_, value)) if !value.is_empty() => Some(value),
                Some(_) | None => return Err(named(&format!("`password_env`: `{var}` is not set"))),
            }
        }
    };
    let password = match (from_env, raw.password, raw.password_file) {
        (Some(value), None, None) => Some(Secret::new(value)),
        (None, inline, file) => {
            if let Some(path) = &file {
                check_size(&resource, path)?;
            }
            secret("postgres.password", inline, file.as_deref())?
        }
        (Some(_), _, _) => return Err(named("give one of `password`, `password_file` and `password_env`")),
    };
    let tls = match raw.tls.as_deref().unwrap_or("verify-full") {
        "verify-full" => {
            UpstreamTls::VerifyFull { ca_pem: raw.ca_file.as_deref().map(|p| read_pem(&resource, p)).transpose()? }
        }
        "disable" => {
            if raw.ca_file.is_some() {
                return Err(named("`ca_file` needs `tls = \"verify-full\"`"));
            }
            if !is_loopback_host(&host) {
                return Err(named(&format!(
                    "`tls = \"disable\"` is for a database on a loopback address, not `{host}`: its password would cross the network in clear text"
                )));
            }
            UpstreamTls::Disable
        }
        other => return Err(named(&format!("`tls`: `{other}` is not `verify-full` or `disable`"))),
    };
    let client_identity = match (raw.client_cert_file, raw.client_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            if tls == UpstreamTls::Disable {
                return Err(named("a client certificate needs `tls = \"verify-full\"`"));
            }
            let key = String::from_utf8(read_pem(&resource, &key)?)
                .map_err(|_| named("`client_key_file` is not PEM text"))?;
            Some((read_pem(&resource, &cert)?, Secret::new(key)))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(named("give both `client_cert_file` and `client_key_file`, or neither"));
        }
    };
    if password.is_none() && client_identity.is_none() {
        tracing::debug!(resource = %resource, "no password or client certificate: the database must trust the gateway's role");
    }
    let connect_timeout =
        duration("postgres.connect_timeout", raw.connect_timeout.as_deref(), Duration::from_secs(10))?;
    let preview_timeout = duration("postgres.preview_timeout", raw.preview_timeout.as_deref(), Duration::from_secs(2))?;
    let max_message_bytes = raw.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    if !(1024..=1 << 30).contains(&max_message_bytes) {
        return Err(named("`max_message_bytes` must be between 1024 and 1073741824"));
    }
    let max_sessions_per_principal = raw.max_sessions_per_principal.unwrap_or(DEFAULT_MAX_SESSIONS_PER_PRINCIPAL);
    if !(1..=10_000).contains(&max_sessions_per_principal) {
        return Err(named("`max_sessions_per_principal` must be between 1 and 10000"));
    }
    Ok(PostgresConfig {
        resource,
        listen,
        server_tls,
        host,
        port: raw.port.unwrap_or(5432),
        database,
        user,
        password,
        tls,
        client_identity,
        connect_timeout,
        preview: raw.preview.unwrap_or(true),
        preview_timeout,
        max_message_bytes,
        max_sessions_per_principal,
    })
}

/// A host name or address that only this machine answers on.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.starts_with('/') || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn check_size(resource: &str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_FILE_BYTES => {
            Err(invalid(format!("`{resource}`: `{}` is larger than {MAX_FILE_BYTES} bytes", path.display())))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(invalid(format!("`{resource}`: cannot read `{}`: {}", path.display(), e.kind()))),
    }
}

fn read_pem(resource: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    check_size(resource, path)?;
    let pem = std::fs::read(path)
        .map_err(|e| invalid(format!("`{resource}`: cannot read `{}`: {}", path.display(), e.kind())))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(invalid(format!("`{resource}`: `{}` holds no PEM block", path.display())));
    }
    Ok(pem)
}

fn server_tls(resource: &str, cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_pem = read_pem(resource, cert)?;
    let key_pem = read_pem(resource, key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| invalid(format!("`{resource}`: `{}` is not a PEM certificate chain", cert.display())))?;
    if chain.is_empty() {
        return Err(invalid(format!("`{resource}`: `{}` holds no certificate", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| invalid(format!("`{resource}`: `{}` is not a PEM private key", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("`{resource}`: TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(format!("`{resource}`: the certificate and key do not go together: {e}")))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_gateway::config::MapEnv;

    fn minimal() -> RawPostgres {
        RawPostgres {
            resource: Some("orders-db".into()),
            listen: Some("127.0.0.1:6432".into()),
            database: Some("orders".into()),
            user: Some("countersign".into()),
            tls: Some("disable".into()),
            ..RawPostgres::default()
        }
    }

    #[test]
    fn a_loopback_database_needs_no_tls() {
        let configs = validate(vec![minimal()], &MapEnv::new([])).unwrap();
        assert_eq!(configs[0].tls, UpstreamTls::Disable);
        assert_eq!(configs[0].port, 5432);
        assert!(configs[0].preview);
    }

    #[test]
    fn cleartext_to_a_remote_database_is_refused() {
        let raw = RawPostgres { host: Some("db.example.com".into()), ..minimal() };
        let e = validate(vec![raw], &MapEnv::new([])).unwrap_err().to_string();
        assert!(e.contains("clear text"), "{e}");
    }

    #[test]
    fn the_password_comes_from_one_place() {
        let env = MapEnv::new([("ORDERS_PW", "s3cret")]);
        let raw = RawPostgres { password_env: Some("ORDERS_PW".into()), ..minimal() };
        let config = validate(vec![raw], &env).unwrap();
        assert_eq!(config[0].password.as_ref().unwrap().expose(), "s3cret");
        assert!(!format!("{config:?}").contains("s3cret"));
        let both = RawPostgres { password_env: Some("ORDERS_PW".into()), password: Some("x".into()), ..minimal() };
        assert!(validate(vec![both], &env).is_err());
        let unset = RawPostgres { password_env: Some("NOPE".into()), ..minimal() };
        assert!(validate(vec![unset], &env).unwrap_err().to_string().contains("`NOPE` is not set"));
    }

    #[test]
    fn resources_and_addresses_are_unique_and_valid() {
        assert!(validate(vec![minimal(), minimal()], &MapEnv::new([])).is_err());
        let bad = RawPostgres { resource: Some("Orders DB".into()), ..minimal() };
        assert!(validate(vec![bad], &MapEnv::new([])).is_err());
        let bad = RawPostgres { listen: Some("six".into()), ..minimal() };
        assert!(validate(vec![bad], &MapEnv::new([])).unwrap_err().to_string().contains("`six`"));
    }

    #[test]
    fn sessions_per_principal_are_bounded() {
        assert_eq!(validate(vec![minimal()], &MapEnv::new([])).unwrap()[0].max_sessions_per_principal, 32);
        let none = RawPostgres { max_sessions_per_principal: Some(0), ..minimal() };
        let e = validate(vec![none], &MapEnv::new([])).unwrap_err().to_string();
        assert!(e.contains("max_sessions_per_principal"), "{e}");
    }

    #[test]
    fn huge_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, vec![b'a'; 2 * 1024 * 1024]).unwrap();
        let raw = RawPostgres { password_file: Some(path), ..minimal() };
        assert!(validate(vec![raw], &MapEnv::new([])).unwrap_err().to_string().contains("larger than"));
    }
}
