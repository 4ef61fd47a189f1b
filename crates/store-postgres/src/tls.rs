//! TLS to the database, when the URL asks for it (`sslmode=require`, or
//! libpq's `verify-full` / `verify-ca`, which mean the same here).
//!
//! The server's certificate is always verified — against the public web
//! PKI roots plus the CA certificates in `database.ca_file` (a private CA,
//! a cloud provider's bundle) — and its name must match the host in the
//! URL. A URL that says nothing about `sslmode` connects without TLS, as
//! on a private network or through a local TLS-terminating proxy: trying
//! TLS by default would fail against the self-signed certificates many
//! installations ship with.

use std::path::Path;
use std::sync::Arc;

use countersign_store::StoreError;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector every connection of a store uses.
pub(crate) fn connector(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let bad = |e: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!("cannot read the database CA file {}: {e}", path.display()))
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        if certs.is_empty() {
            return Err(bad(&"it holds no PEM certificate"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(&e))?;
        }
    }
    // An explicit provider: `ClientConfig::builder()` would panic if the
    // build ever linked two of them.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Internal(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Whether the connection string chooses an `sslmode` itself.
pub(crate) fn mentions_sslmode(url: &str) -> bool {
    url.contains("sslmode=")
}

/// libpq's `sslmode=verify-full` and `verify-ca`, which managed databases'
/// connection strings carry, as the driver's `require`: this store's
/// `require` already verifies the chain and the host name, which is
/// `verify-full`, and for `verify-ca` checking the name too is stricter,
/// never weaker.
pub(crate) fn libpq_sslmodes(url: &str) -> String {
    url.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_verify_modes_mean_verified_tls() {
        assert_eq!(libpq_sslmodes("postgres://u@h/db?sslmode=verify-full"), "postgres://u@h/db?sslmode=require");
        assert_eq!(libpq_sslmodes("host=h sslmode=verify-ca dbname=d"), "host=h sslmode=require dbname=d");
        assert_eq!(libpq_sslmodes("postgres://u@h/db"), "postgres://u@h/db");
    }
}
