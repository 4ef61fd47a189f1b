//! What every entry point that forwards HTTP to an upstream it fronts
//! (an `[[http]]` API, a `[[kubernetes]]` API server) checks and builds the
//! same way: the name it is served under, its URL, and the client that
//! reaches it.

use std::time::Duration;

/// A name usable as one URL path segment (`/http/<name>`, `/k8s/<name>`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `text` read as an upstream's base URL under config key `key`: `http` or
/// `https` with a host, no credential, query or fragment in it, and no
/// trailing `/`.
pub fn base_url(key: &str, text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim_end_matches('/')).map_err(|_| format!("`{key}`: `{text}` is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{key}` must be an `http://` or `https://` URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{key}` must not hold a credential"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{key}` must not have a query or a fragment"));
    }
    Ok(url)
}

/// The URL points at this machine: the one place plain `http://` may
/// carry a credential.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The client builder for an upstream: no proxy from the environment, no
/// redirects followed (the client sees them, so a redirect to another host
/// never carries the gateway's credential), and only `ca_pem`'s roots when
/// given (else the system's).
pub fn client_builder(ca_pem: Option<&[u8]>) -> Result<reqwest::ClientBuilder, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64);
    match ca_pem {
        Some(pem) => {
            let roots = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("`ca_file`: {e}"))?;
            Ok(builder.tls_certs_only(roots))
        }
        None => Ok(builder),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_hold_no_secrets_queries_or_other_schemes() {
        assert_eq!(base_url("u", "https://api.example/v1/").unwrap().as_str(), "https://api.example/v1");
        for bad in ["ftp://a", "https://u:p@a", "https://a/?q=1", "https://a/#f", "not a url", "https://"] {
            assert!(base_url("u", bad).is_err(), "{bad}");
        }
        assert!(is_loopback(&base_url("u", "http://[::1]:8080").unwrap()));
        assert!(!is_loopback(&base_url("u", "http://localhost.evil.example").unwrap()));
    }

    #[test]
    fn names_are_one_plain_segment() {
        assert!(valid_name("billing-api_2"));
        for bad in ["", "Billing", "a/b", "a.b", "ｂilling", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
