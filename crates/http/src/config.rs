//! The `[[http]]` sections: each one an HTTP API that agents reach only
//! through the gateway, at `/http/<name>/…`, with the gateway holding its
//! credential.
//!
//! ```toml
//! [[http]]
//! name = "billing"                      # served at /http/billing/…
//! resource = "billing-api"              # the name policies see (default: the name)
//! base_url = "https://billing.internal/api"
//! bearer_token_file = "/run/secrets/billing-token"   # or bearer_token_env
//! # basic_user = "countersign" + basic_password_file / basic_password_env
//! # header = "X-Api-Key" + header_value_file / header_value_env
//! ca_file = "/etc/countersign/billing-ca.pem"        # default: the system's roots
//! openapi_file = "/etc/countersign/billing.openapi.json"
//! hold = "60s"                          # how long a pending request is held open
//! max_body_bytes = 1048576
//! forward_headers = ["x-billing-version"]            # beyond the built-in allow-list
//! ```
//!
//! A credential crosses the network in clear text only to a loopback
//! upstream: `http://` base URLs elsewhere are refused.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use countersign_facts::HttpApi;
use countersign_gateway::config::{duration, read_file, read_text_file, ConfigError, Environment, Secret};
use serde::Deserialize;

/// The default largest request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default time a pending request is held open.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(60);
/// The longest a request may be held open.
const MAX_HOLD: Duration = Duration::from_secs(3600);

/// Request headers that are never forwarded, whatever `forward_headers`
/// says: the agent's credentials, what the proxy sets itself, and what
/// would make the API run another method than the one decided on (a
/// `GET` that an API reads as `DELETE` because of `X-HTTP-Method-Override`).
pub const NEVER_FORWARDED: [&str; 17] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "forwarded",
    "x-forwarded-for",
    "prefer",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// `[[http]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub name: Option<String>,
    pub resource: Option<String>,
    pub base_url: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub bearer_token_env: Option<String>,
    pub basic_user: Option<String>,
    pub basic_password_file: Option<PathBuf>,
    pub basic_password_env: Option<String>,
    pub header: Option<String>,
    pub header_value_file: Option<PathBuf>,
    pub header_value_env: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub openapi_file: Option<PathBuf>,
    pub hold: Option<String>,
    pub max_body_bytes: Option<usize>,
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

/// The gateway's credential for an upstream.
#[derive(Debug, Clone)]
pub enum Credential {
    None,
    Bearer(Secret),
    Basic { user: String, password: Secret },
    Header { name: String, value: Secret },
}

/// One validated `[[http]]` section.
#[derive(Clone)]
pub struct HttpConfig {
    pub name: String,
    pub resource: String,
    /// Without a trailing `/`.
    pub base_url: reqwest::Url,
    pub credential: Credential,
    pub ca_pem: Option<Vec<u8>>,
    pub api: Option<Arc<HttpApi>>,
    pub hold: Duration,
    pub max_body_bytes: usize,
    /// Extra request headers forwarded (lower case).
    pub forward_headers: Vec<String>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("name", &self.name)
            .field("resource", &self.resource)
            .field("base_url", &self.base_url.as_str())
            .field("credential", &self.credential)
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("api", &self.api.as_ref().map(|a| a.len()))
            .field("hold", &self.hold)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("forward_headers", &self.forward_headers)
            .finish()
    }
}

/// Validates every `[[http]]` section.
pub fn validate(raw: Vec<RawHttp>, env: &dyn Environment) -> Result<Vec<HttpConfig>, ConfigError> {
    let mut out: Vec<HttpConfig> = Vec::with_capacity(raw.len());
    for section in raw {
        let config = validate_one(section, env)?;
        if out.iter().any(|c| c.name == config.name) {
            return Err(invalid(format!("two `[[http]]` sections are named `{}`", config.name)));
        }
        out.push(config);
    }
    Ok(out)
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid { key: "http", message }
}

fn validate_one(raw: RawHttp, env: &dyn Environment) -> Result<HttpConfig, ConfigError> {
    let name = raw.name.clone().ok_or_else(|| invalid("every `[[http]]` needs a `name`".to_owned()))?;
    if !crate::upstream::valid_name(&name) {
        return Err(invalid(format!("`name`: `{name}` must be lower-case letters, digits, `-` and `_` (at most 64)")));
    }
    let named = |message: &str| invalid(format!("`{name}`: {message}"));
    let resource = raw.resource.clone().unwrap_or_else(|| name.clone());
    if let Err(e) = countersign_core::names::check_resource(&resource) {
        return Err(named(&format!("`resource`: {e}")));
    }
    let text = raw.base_url.clone().ok_or_else(|| named("`base_url` is required"))?;
    let base_url = crate::upstream::base_url("base_url", &text).map_err(|e| named(&e))?;
    let credential = credential(&name, &raw, env)?;
    if base_url.scheme() == "http"
        && !matches!(credential, Credential::None)
        && !crate::upstream::is_loopback(&base_url)
    {
        return Err(named(&format!(
            "`base_url` is `http://` to `{}`, not a loopback address: the credential would cross the network in clear text",
            base_url.host_str().unwrap_or_default()
        )));
    }
    let ca_pem = match &raw.ca_file {
        None => None,
        Some(path) => {
            if base_url.scheme() != "https" {
                return Err(named("`ca_file` needs an `https://` base URL"));
            }
            let pem = read_file(path).map_err(|e| named(&e.to_string()))?;
            if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(named(&format!("`{}` holds no PEM block", path.display())));
            }
            Some(pem)
        }
    };
    let api = match &raw.openapi_file {
        None => None,
        Some(path) => {
            let text = read_text_file(path).map_err(|e| named(&e.to_string()))?;
            let document: serde_json::Value = serde_json::from_str(&text)
                .map_err(|_| named(&format!("`{}` is not a JSON OpenAPI document", path.display())))?;
            let api = HttpApi::from_openapi(&document).map_err(|e| named(&format!("`{}`: {e}", path.display())))?;
            Some(Arc::new(api))
        }
    };
    let hold = duration("http.hold", raw.hold.as_deref(), DEFAULT_HOLD)?;
    if hold > MAX_HOLD {
        return Err(named("`hold` is at most 1h"));
    }
    let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if !(1..=64 * 1024 * 1024).contains(&max_body_bytes) {
        return Err(named("`max_body_bytes` must be between 1 and 67108864"));
    }
    let mut forward_headers = Vec::with_capacity(raw.forward_headers.len());
    for header in raw.forward_headers {
        let lower = header.to_ascii_lowercase();
        let token = !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !token {
            return Err(named(&format!("`forward_headers`: `{header}` is not a header name")));
        }
        let credential_header = matches!(&credential, Credential::Header { name, .. } if *name == lower);
        if NEVER_FORWARDED.contains(&lower.as_str()) || credential_header {
            return Err(named(&format!("`forward_headers`: `{header}` is never forwarded")));
        }
        forward_headers.push(lower);
    }
    Ok(HttpConfig { name, resource, base_url, credential, ca_pem, api, hold, max_body_bytes, forward_headers })
}

/// A secret from a file or a variable, exactly one of them, for `key`.
fn one_secret(
    name: &str,
    key: &str,
    file: Option<&PathBuf>,
    var: Option<&String>,
    env: &dyn Environment,
) -> Result<Option<Secret>, ConfigError> {
    let named = |message: String| invalid(format!("`{name}`: {message}"));
    match (file, var) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(named(format!("give `{key}_file` or `{key}_env`, not both"))),
        (Some(path), None) => {
            let text = read_text_file(path).map_err(|e| named(e.to_string()))?;
            let value = text.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                return Err(named(format!("`{}` is empty", path.display())));
            }
            Ok(Some(Secret::new(value.to_owned())))
        }
        (None, Some(var)) => match env.vars_with_prefix(var).into_iter().find(|(n, _)| n == var) {
            Some((_, value)) if !value.is_empty() => Ok(Some(Secret::new(value))),
            Some(_) | None => Err(named(format!("`{key}_env`: `{var}` is not set"))),
        },
    }
}

fn credential(name: &str, raw: &RawHttp, env: &dyn Environment) -> Result<Credential, ConfigError> {
    let named = |message: &str| invalid(format!("`{name}`: {message}"));
    let bearer = one_secret(name, "bearer_token", raw.bearer_token_file.as_ref(), raw.bearer_token_env.as_ref(), env)?;
    let password =
        one_secret(name, "basic_password", raw.basic_password_file.as_ref(), raw.basic_password_env.as_ref(), env)?;
    let value = one_secret(name, "header_value", raw.header_value_file.as_ref(), raw.header_value_env.as_ref(), env)?;
    let header_safe = |s: &Secret| s.expose().bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    let chosen =
        [bearer.is_some(), raw.basic_user.is_some() || password.is_some(), raw.header.is_some() || value.is_some()];
    if chosen.iter().filter(|c| **c).count() > 1 {
        return Err(named("give one credential: a bearer token, basic auth or a custom header"));
    }
    if let Some(secret) = bearer {
        if !header_safe(&secret) {
            return Err(named("the bearer token is not a valid header value"));
        }
        return Ok(Credential::Bearer(secret));
    }
    match (&raw.basic_user, password) {
        (Some(user), Some(password)) => {
            if user.contains(':') || user.chars().any(char::is_control) {
                return Err(named("`basic_user` must not hold `:` or control characters"));
            }
            return Ok(Credential::Basic { user: user.clone(), password });
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(named("basic auth needs `basic_user` and `basic_password_file` (or `basic_password_env`)"));
        }
        (None, None) => {}
    }
    match (&raw.header, value) {
        (Some(header), Some(value)) => {
            let lower = header.to_ascii_lowercase();
            let token = !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            if !token || NEVER_FORWARDED.contains(&lower.as_str()) && lower != "authorization" {
                return Err(named(&format!("`header`: `{header}` cannot carry the credential")));
            }
            if !header_safe(&value) {
                return Err(named("the header value is not a valid header value"));
            }
            Ok(Credential::Header { name: lower, value })
        }
        (Some(_), None) | (None, Some(_)) => {
            Err(named("a custom header needs `header` and `header_value_file` (or `header_value_env`)"))
        }
        (None, None) => Ok(Credential::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_gateway::config::MapEnv;

    fn minimal() -> RawHttp {
        RawHttp { name: Some("billing".into()), base_url: Some("http://127.0.0.1:9/api/".into()), ..RawHttp::default() }
    }

    #[test]
    fn a_minimal_section_has_documented_defaults() {
        let c = &validate(vec![minimal()], &MapEnv::default()).unwrap()[0];
        assert_eq!(c.resource, "billing");
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:9/api");
        assert_eq!(c.hold, DEFAULT_HOLD);
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert!(matches!(c.credential, Credential::None));
    }

    #[test]
    fn the_credential_comes_from_one_place_and_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "tok-123\n").unwrap();
        let raw = RawHttp { bearer_token_file: Some(file.clone()), ..minimal() };
        let c = validate(vec![raw], &MapEnv::default()).unwrap();
        assert!(matches!(&c[0].credential, Credential::Bearer(s) if s.expose() == "tok-123"));
        assert!(!format!("{c:?}").contains("tok-123"));
        let env = MapEnv::new([("BILLING_PW", "pw-456")]);
        let raw = RawHttp { basic_user: Some("cs".into()), basic_password_env: Some("BILLING_PW".into()), ..minimal() };
        let c = validate(vec![raw], &env).unwrap();
        assert!(!format!("{c:?}").contains("pw-456"));
        let raw = RawHttp { bearer_token_file: Some(file.clone()), basic_user: Some("cs".into()), ..minimal() };
        assert!(validate(vec![raw], &env).unwrap_err().to_string().contains("one credential"));
        let raw = RawHttp { bearer_token_env: Some("NOPE".into()), ..minimal() };
        assert!(validate(vec![raw], &env).unwrap_err().to_string().contains("`NOPE` is not set"));
        let raw = RawHttp { header: Some("Cookie".into()), header_value_env: Some("BILLING_PW".into()), ..minimal() };
        assert!(validate(vec![raw], &env).is_err());
        let raw =
            RawHttp { header: Some("X-Api-Key".into()), header_value_env: Some("BILLING_PW".into()), ..minimal() };
        assert!(
            matches!(&validate(vec![raw], &env).unwrap()[0].credential, Credential::Header { name, .. } if name == "x-api-key")
        );
    }

    #[test]
    fn cleartext_credentials_go_to_loopback_only() {
        let env = MapEnv::new([("T", "x")]);
        let raw = RawHttp {
            base_url: Some("http://billing.example.com".into()),
            bearer_token_env: Some("T".into()),
            ..minimal()
        };
        assert!(validate(vec![raw], &env).unwrap_err().to_string().contains("clear text"));
        let raw = RawHttp { base_url: Some("https://u:p@billing.example.com".into()), ..minimal() };
        assert!(validate(vec![raw], &env).is_err());
    }

    #[test]
    fn files_are_bounded_and_names_checked() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2 * 1024 * 1024]).unwrap();
        let raw = RawHttp { bearer_token_file: Some(big.clone()), ..minimal() };
        assert!(validate(vec![raw], &MapEnv::default()).unwrap_err().to_string().contains("larger than 1 MiB"));
        let raw = RawHttp { openapi_file: Some(big), ..minimal() };
        assert!(validate(vec![raw], &MapEnv::default()).is_err());
        assert!(validate(vec![minimal(), minimal()], &MapEnv::default()).is_err());
        let raw = RawHttp { name: Some("Bad/Name".into()), ..minimal() };
        assert!(validate(vec![raw], &MapEnv::default()).is_err());
        let raw = RawHttp { forward_headers: vec!["Authorization".into()], ..minimal() };
        assert!(validate(vec![raw], &MapEnv::default()).unwrap_err().to_string().contains("never forwarded"));
    }
}
