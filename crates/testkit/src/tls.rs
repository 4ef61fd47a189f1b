//! A throwaway PKI: a CA, and a `localhost` certificate it issued, for
//! tests of clients that must trust (or refuse) a TLS peer.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A new CA's certificate (PEM), and a server config for `localhost`
/// with a certificate that CA signed.
pub fn pki() -> (String, rustls::ServerConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![leaf.der().clone()], key).unwrap();
    (ca.pem(), config)
}

/// A CA and a server certificate it issued, all as PEM text, for servers
/// that read their certificate and key from files.
#[derive(Debug, Clone)]
pub struct PemPki {
    /// The CA's certificate: what clients trust.
    pub ca: String,
    /// The server's certificate.
    pub cert: String,
    /// The server's private key (PKCS #8).
    pub key: String,
}

/// A new CA, and a certificate it issued for `names` (host names, or IP
/// addresses, which become IP subject alternative names).
pub fn pem_pki(names: &[&str]) -> PemPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "countersign test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    // A subject of its own: OpenSSL takes a certificate whose subject is
    // its issuer's for a self-issued one.
    params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("localhost"));
    let leaf = params.signed_by(&key, &ca).unwrap();
    PemPki { ca: ca.pem(), cert: leaf.pem(), key: key.serialize_pem() }
}
