//! A small JSON client for the gateway's HTTP API, with its error shape
//! (`{"error": {"code", "message"}}`) turned into [`CallError`].

use std::time::Duration;

use serde_json::Value;

use crate::cli::ClientArgs;

/// Why an API call failed.
#[derive(Debug)]
pub enum CallError {
    /// The gateway answered with an error document.
    Api { status: u16, code: String, message: String },
    /// The gateway could not be reached, or the connection broke.
    Transport { server: String, detail: String },
    /// The gateway's TLS certificate did not verify: not worth retrying.
    Untrusted { server: String },
    /// The answer was not the JSON expected.
    Decode(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api { code, message, .. } => write!(f, "{code}: {message}"),
            Self::Transport { server, detail } => {
                write!(f, "cannot reach the gateway at {server}: {detail}")
            }
            Self::Untrusted { server } => write!(
                f,
                "the gateway at {server} presented a TLS certificate that is not trusted \
                 (a private CA: pass --ca-file or set COUNTERSIGN_CA_FILE)"
            ),
            Self::Decode(detail) => write!(f, "unexpected answer from the gateway: {detail}"),
        }
    }
}

impl std::error::Error for CallError {}

impl CallError {
    /// Worth retrying: the gateway is restarting or briefly unreachable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, .. } => *status == 503 || *status == 502 || *status == 504,
            Self::Decode(_) | Self::Untrusted { .. } => false,
        }
    }

    /// The HTTP status, if the gateway answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Transport { .. } | Self::Untrusted { .. } | Self::Decode(_) => None,
        }
    }

    /// The API error code, if the gateway answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::Transport { .. } | Self::Untrusted { .. } | Self::Decode(_) => None,
        }
    }
}

/// An authenticated client for one gateway.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// How long an ordinary call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let base = args.server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!(
                "`{base}` is not a gateway URL such as https://countersign.example.com or http://127.0.0.1:8470"
            );
        }
        let token = match args.token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => anyhow::bail!("no API token: pass --token or set COUNTERSIGN_TOKEN"),
        };
        countersign_identity::install_crypto_provider();
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).no_proxy();
        if let Some(path) = &args.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read the CA file `{}`: {}", path.display(), e.kind()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|roots| !roots.is_empty())
                .ok_or_else(|| anyhow::anyhow!("`{}` holds no PEM certificate", path.display()))?;
            // Only the named CA: a private gateway should not also be
            // trusted on the word of every public one.
            builder = builder.tls_certs_only(roots);
        }
        let http = builder.build().map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {e}"))?;
        Ok(Self { http, base, token })
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str, timeout: Option<Duration>) -> Result<Value, CallError> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request, timeout).await
    }

    pub async fn post(&self, path: &str, body: &Value, timeout: Option<Duration>) -> Result<Value, CallError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request, timeout).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, timeout: Option<Duration>) -> Result<Value, CallError> {
        let response = request
            .bearer_auth(&self.token)
            .timeout(timeout.unwrap_or(CALL_TIMEOUT))
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| CallError::Decode(e.to_string()));
        }
        let document: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let error = &document["error"];
        let code = error["code"].as_str().map_or_else(|| http_code(status.as_u16()).to_owned(), str::to_owned);
        let message = error["message"].as_str().map_or_else(
            || {
                let text = String::from_utf8_lossy(&bytes);
                let text = text.trim();
                if text.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {}", text.chars().take(200).collect::<String>())
                }
            },
            str::to_owned,
        );
        Err(CallError::Api { status: status.as_u16(), code, message })
    }

    fn transport(&self, error: &reqwest::Error) -> CallError {
        if error.is_connect() && countersign_mcp::tls::rejected_certificate(error) {
            return CallError::Untrusted { server: self.base.clone() };
        }
        let detail = if error.is_timeout() {
            "timed out".to_owned()
        } else if error.is_connect() {
            "connection refused or unreachable (is `countersign serve` running?)".to_owned()
        } else {
            root_cause(error)
        };
        CallError::Transport { server: self.base.clone(), detail }
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// A code for error answers that carry no error document (a proxy, say).
fn http_code(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "payload_too_large",
        429 => "too_many_requests",
        503 => "unavailable",
        _ => "http_error",
    }
}
