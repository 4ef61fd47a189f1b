//! The HTTP client that talks to identity providers: TLS through rustls
//! with the `ring` provider (the same crypto that checks token signatures),
//! short timeouts so a slow provider cannot stall logins for long, and no
//! redirects, since discovery and key URLs are taken exactly as published.

use std::time::Duration;

/// Why a provider could not be reached or understood.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach `{url}`: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("`{url}` answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("`{url}` did not answer with the expected JSON: {reason}")]
    Invalid { url: String, reason: String },
}

/// Installs the process-wide TLS crypto provider (`ring`). The workspace
/// builds reqwest's rustls without a provider of its own, so building any
/// HTTP client before this panics; binaries call it first thing. Several
/// crates may try; the first one wins and that is fine.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the shared client.
pub fn client() -> Result<reqwest::Client, FetchError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Unreachable { url: "(client setup)".to_owned(), reason: e.to_string() })
}

/// Largest document accepted from a provider (discovery, keys, tokens).
const MAX_BODY: usize = 512 * 1024;

/// GETs a JSON document.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Result<serde_json::Value, FetchError> {
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| FetchError::Unreachable { url: url.to_owned(), reason: without_url(&e) })?;
    read_json(url, response).await
}

/// Reads a JSON body, refusing error statuses and oversized answers.
pub async fn read_json(url: &str, response: reqwest::Response) -> Result<serde_json::Value, FetchError> {
    let status = response.status();
    let bytes = read_limited(url, response).await?;
    if !status.is_success() {
        return Err(FetchError::Status { url: url.to_owned(), status: status.as_u16() });
    }
    serde_json::from_slice(&bytes).map_err(|e| FetchError::Invalid { url: url.to_owned(), reason: e.to_string() })
}

/// The body and status, for callers that want to read error answers too.
pub async fn read_limited(url: &str, mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
    let mut bytes = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| FetchError::Unreachable { url: url.to_owned(), reason: without_url(&e) })?
    {
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(FetchError::Invalid { url: url.to_owned(), reason: "the answer is too large".to_owned() });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// reqwest's messages repeat the URL, which the caller already names.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    if let Some(source) = std::error::Error::source(error) {
        text = format!("{text}: {source}");
    }
    text
}
