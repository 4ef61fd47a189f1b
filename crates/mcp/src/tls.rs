//! TLS as the proxy's HTTP clients meet it: telling a certificate that did
//! not verify apart from a network failure, since the fix for one is in
//! configuration (a CA file) and for the other in the network.

/// Whether a failed connection failed at certificate verification: worth
/// telling apart, since the fix is in the gateway's config, not the network.
pub fn rejected_certificate(error: &reqwest::Error) -> bool {
    let is_certificate =
        |e: &rustls::Error| matches!(e, rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented);
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<rustls::Error>().is_some_and(is_certificate) {
            return true;
        }
        // An `io::Error`'s `source()` skips the error it wraps: look at that one.
        cause = match e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}
