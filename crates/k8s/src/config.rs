//! The `[[kubernetes]]` sections: each one a cluster whose API server
//! agents reach only through the gateway, at `/k8s/<name>/…`, with the
//! gateway holding the credential.
//!
//! ```toml
//! [[kubernetes]]
//! name = "staging"                       # served at /k8s/staging
//! resource = "staging-cluster"           # the name policies see (default: the name)
//! server = "https://10.0.0.1:6443"       # the API server
//! token_file = "/run/secrets/k8s-token"  # or token_env, or:
//! # client_certificate_file = "/etc/countersign/k8s.crt"
//! # client_key_file = "/etc/countersign/k8s.key"
//! ca_file = "/etc/countersign/k8s-ca.pem"  # default: the system's roots
//! hold = "5m"                            # how long a pending request is held open
//! max_body_bytes = 3145728               # the API server's own limit is 3 MiB
//! preview_timeout = "2s"                 # the dry run of a held write; "0s": no preview
//! ```
//!
//! The credential crosses the network in clear text only to a loopback
//! API server: `http://` elsewhere is refused.

use std::path::PathBuf;
use std::time::Duration;

use countersign_gateway::config::{duration, read_file, read_text_file, ConfigError, Environment, Secret};
use serde::Deserialize;

/// The default largest request body (the API server's own limit).
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// The default time a pending request is held open.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(300);
/// The default bound on a held write's impact preview.
pub const DEFAULT_PREVIEW_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a preview may delay filing a held write.
const MAX_PREVIEW_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a request may be held open.
const MAX_HOLD: Duration = Duration::from_secs(3600);

/// `[[kubernetes]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    pub name: Option<String>,
    pub resource: Option<String>,
    pub server: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub client_certificate_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub hold: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub preview_timeout: Option<String>,
}

/// The gateway's own credential for the API server.
#[derive(Clone)]
pub enum Credential {
    Token(Secret),
    /// A client certificate and its key, PEM, together.
    Certificate(Secret),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(***)"),
            Self::Certificate(_) => f.write_str("Certificate(***)"),
        }
    }
}

/// One validated `[[kubernetes]]` section.
#[derive(Clone)]
pub struct KubernetesConfig {
    pub name: String,
    pub resource: String,
    /// Without a trailing `/`.
    pub server: reqwest::Url,
    pub credential: Credential,
    pub ca_pem: Option<Vec<u8>>,
    pub hold: Duration,
    pub max_body_bytes: usize,
    /// How long a held write's dry run may take ([`crate::preview`]);
    /// zero: no preview.
    pub preview_timeout: Duration,
}

impl std::fmt::Debug for KubernetesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesConfig")
            .field("name", &self.name)
            .field("resource", &self.resource)
            .field("server", &self.server.as_str())
            .field("credential", &self.credential)
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("hold", &self.hold)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("preview_timeout", &self.preview_timeout)
            .finish()
    }
}

/// Validates every `[[kubernetes]]` section.
pub fn validate(raw: Vec<RawKubernetes>, env: &dyn Environment) -> Result<Vec<KubernetesConfig>, ConfigError> {
    let mut out: Vec<KubernetesConfig> = Vec::with_capacity(raw.len());
    for section in raw {
        let config = validate_one(section, env)?;
        if out.iter().any(|c| c.name == config.name) {
            return Err(invalid(format!("two `[[kubernetes]]` sections are named `{}`", config.name)));
        }
        out.push(config);
    }
    Ok(out)
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid { key: "kubernetes", message }
}

pub use countersign_http::upstream::valid_name;

fn validate_one(raw: RawKubernetes, env: &dyn Environment) -> Result<KubernetesConfig, ConfigError> {
    let name = raw.name.clone().ok_or_else(|| invalid("every `[[kubernetes]]` needs a `name`".to_owned()))?;
    if !valid_name(&name) {
        return Err(invalid(format!("`name`: `{name}` must be lower-case letters, digits, `-` and `_` (at most 64)")));
    }
    let named = |message: &str| invalid(format!("`{name}`: {message}"));
    let resource = raw.resource.clone().unwrap_or_else(|| name.clone());
    if let Err(e) = countersign_core::names::check_resource(&resource) {
        return Err(named(&format!("`resource`: {e}")));
    }
    let text = raw.server.clone().ok_or_else(|| named("`server` is required"))?;
    let server = countersign_http::upstream::base_url("server", &text).map_err(|e| named(&e))?;
    if server.scheme() == "http" && !countersign_http::upstream::is_loopback(&server) {
        return Err(named(&format!(
            "`server` is `http://` to `{}`, not a loopback address: the credential would cross the network in clear text",
            server.host_str().unwrap_or_default()
        )));
    }
    let credential = credential(&name, &raw, env)?;
    if matches!(credential, Credential::Certificate(_)) && server.scheme() != "https" {
        return Err(named("a client certificate needs an `https://` server"));
    }
    let ca_pem = match &raw.ca_file {
        None => None,
        Some(path) => {
            if server.scheme() != "https" {
                return Err(named("`ca_file` needs an `https://` server"));
            }
            let pem = read_file(path).map_err(|e| named(&e.to_string()))?;
            if !holds_pem(&pem) {
                return Err(named(&format!("`{}` holds no PEM block", path.display())));
            }
            Some(pem)
        }
    };
    let hold = duration("kubernetes.hold", raw.hold.as_deref(), DEFAULT_HOLD)?;
    if hold > MAX_HOLD {
        return Err(named("`hold` is at most 1h"));
    }
    let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if !(1..=64 * 1024 * 1024).contains(&max_body_bytes) {
        return Err(named("`max_body_bytes` must be between 1 and 67108864"));
    }
    let preview_timeout =
        duration("kubernetes.preview_timeout", raw.preview_timeout.as_deref(), DEFAULT_PREVIEW_TIMEOUT)?;
    if preview_timeout > MAX_PREVIEW_TIMEOUT {
        return Err(named("`preview_timeout` is at most 10s: a held write is filed only once its preview is made"));
    }
    Ok(KubernetesConfig { name, resource, server, credential, ca_pem, hold, max_body_bytes, preview_timeout })
}

fn holds_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

fn credential(name: &str, raw: &RawKubernetes, env: &dyn Environment) -> Result<Credential, ConfigError> {
    let named = |message: String| invalid(format!("`{name}`: {message}"));
    let token = match (&raw.token_file, &raw.token_env) {
        (None, None) => None,
        (Some(_), Some(_)) => return Err(named("give `token_file` or `token_env`, not both".to_owned())),
        (Some(path), None) => {
            let text = read_text_file(path).map_err(|e| named(e.to_string()))?;
            let value = text.trim_end_matches(['\n', '\r']).to_owned();
            if value.is_empty() {
                return Err(named(format!("`{}` is empty", path.display())));
            }
            Some(value)
        }
        (None, Some(var)) => match env.vars_with_prefix(var).into_iter().find(|(n, _)| n == var) {
            Some((_, value)) if !value.is_empty() => Some(value),
            Some(_) | None => return Err(named(format!("`token_env`: `{var}` is not set"))),
        },
    };
    let certificate = match (&raw.client_certificate_file, &raw.client_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let mut pem = read_file(cert).map_err(|e| named(e.to_string()))?;
            let key_pem = read_file(key).map_err(|e| named(e.to_string()))?;
            if !holds_pem(&pem) || !holds_pem(&key_pem) {
                return Err(named("the client certificate and key must be PEM".to_owned()));
            }
            pem.push(b'\n');
            pem.extend_from_slice(&key_pem);
            let text =
                String::from_utf8(pem).map_err(|_| named("the client certificate is not PEM text".to_owned()))?;
            Some(text)
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(named("a client certificate needs `client_certificate_file` and `client_key_file`".to_owned()))
        }
    };
    match (token, certificate) {
        (Some(token), None) => {
            if !token.bytes().all(|b| (b' '..=b'~').contains(&b)) {
                return Err(named("the token is not a valid header value".to_owned()));
            }
            Ok(Credential::Token(Secret::new(token)))
        }
        (None, Some(pem)) => Ok(Credential::Certificate(Secret::new(pem))),
        (Some(_), Some(_)) => Err(named("give one credential: a token or a client certificate".to_owned())),
        (None, None) => Err(named(
            "the gateway needs its own credential: `token_file`, `token_env`, or `client_certificate_file` and `client_key_file`"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_gateway::config::MapEnv;

    fn minimal() -> RawKubernetes {
        RawKubernetes {
            name: Some("staging".into()),
            server: Some("http://127.0.0.1:6443/".into()),
            token_env: Some("K8S_TOKEN".into()),
            ..RawKubernetes::default()
        }
    }

    fn env() -> MapEnv {
        MapEnv::new([("K8S_TOKEN", "t0ken")])
    }

    #[test]
    fn a_minimal_section_validates_and_hides_its_credential() {
        let config = validate(vec![minimal()], &env()).unwrap();
        assert_eq!(config[0].resource, "staging");
        assert_eq!(config[0].server.as_str(), "http://127.0.0.1:6443/");
        assert_eq!(config[0].hold, DEFAULT_HOLD);
        assert_eq!(config[0].preview_timeout, DEFAULT_PREVIEW_TIMEOUT);
        let off = RawKubernetes { preview_timeout: Some("0s".into()), ..minimal() };
        assert!(validate(vec![off], &env()).unwrap()[0].preview_timeout.is_zero(), "`0s` turns previews off");
        assert!(!format!("{config:?}").contains("t0ken"));
    }

    #[test]
    fn bad_sections_are_refused() {
        let cases: Vec<(RawKubernetes, &str)> = vec![
            (RawKubernetes { name: Some("Prod".into()), ..minimal() }, "lower-case"),
            (RawKubernetes { name: Some("a/b".into()), ..minimal() }, "lower-case"),
            (RawKubernetes { server: None, ..minimal() }, "`server` is required"),
            (RawKubernetes { server: Some("http://10.0.0.1:6443".into()), ..minimal() }, "clear text"),
            (RawKubernetes { server: Some("https://u:p@k:6443".into()), ..minimal() }, "must not hold a credential"),
            (RawKubernetes { server: Some("ftp://k".into()), ..minimal() }, "https://"),
            (RawKubernetes { token_env: None, ..minimal() }, "its own credential"),
            (RawKubernetes { token_env: Some("NOPE".into()), ..minimal() }, "not set"),
            (RawKubernetes { client_key_file: Some("/x".into()), ..minimal() }, "client_certificate_file"),
            (RawKubernetes { hold: Some("2h".into()), ..minimal() }, "at most 1h"),
            (RawKubernetes { max_body_bytes: Some(0), ..minimal() }, "max_body_bytes"),
            (RawKubernetes { preview_timeout: Some("1m".into()), ..minimal() }, "at most 10s"),
            (RawKubernetes { resource: Some("PROD".into()), ..minimal() }, "resource"),
        ];
        for (raw, expected) in cases {
            let e = validate(vec![raw.clone()], &env()).unwrap_err().to_string();
            assert!(e.contains(expected), "{raw:?}: {e}");
        }
        let e = validate(vec![minimal(), minimal()], &env()).unwrap_err().to_string();
        assert!(e.contains("two"), "{e}");
    }
}
