//! The `[oidc]`, `[[workload_identity]]` and `[console]` sections: who may
//! log in to the web console, which tokens the API accepts besides the
//! local ones, and how console sessions behave.
//!
//! The client secret may be inline (or `COUNTERSIGN_OIDC_CLIENT_SECRET`) or
//! in a file (`client_secret_file`); it is held as a [`Secret`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use countersign_gateway::config::{duration, secret, ConfigError, Secret};

/// `[oidc]`: the organisation's OpenID Connect provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    /// The issuer URL; its `/.well-known/openid-configuration` is read.
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// Default `["openid", "email", "profile"]`.
    pub scopes: Option<Vec<String>>,
    /// The claim that lists a user's groups. Default `groups`.
    pub groups_claim: Option<String>,
    /// The claim with the user's email. Default `email`.
    pub email_claim: Option<String>,
    /// Whether the provider vouches for every address it puts in
    /// `email_claim` (it verified it, or it manages it, like a directory's
    /// sign-in name), so no `email_verified: true` is needed. Default
    /// `false`: people are matched by email only when the token says
    /// `email_verified: true` about the standard `email` claim.
    pub email_claim_verified: Option<bool>,
    /// The claim with the user's display name. Default `name`.
    pub name_claim: Option<String>,
    /// If set, only members of these groups may log in or call the API.
    pub allowed_groups: Option<Vec<String>>,
    /// Audiences accepted on API bearer tokens. Default: the client id.
    pub audiences: Option<Vec<String>>,
    /// How recent a login must be to approve a `@step_up` requirement. Default `5m`.
    pub step_up_max_age: Option<String>,
    /// Whether humans may still use personal tokens. Default `true`.
    pub local_tokens_for_humans: Option<bool>,
    /// Where the provider sends the browser back. Default `<public_url>/console/callback`.
    pub redirect_url: Option<String>,
    /// Where the provider sends the browser after logout. Default `<public_url>/console/login?logged_out=1`.
    pub post_logout_redirect_url: Option<String>,
}

/// `[[workload_identity]]`: an issuer of workload tokens (GitHub Actions,
/// Kubernetes service accounts, …) whose tokens identify agents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkloadIdentity {
    /// A label for logs and the admin page. Default: the issuer.
    pub name: Option<String>,
    pub issuer: Option<String>,
    /// The audience tokens must carry (required: a token minted for another
    /// service must not work here).
    pub audience: Option<String>,
    /// Default: `jwks_uri` from the issuer's discovery document.
    pub jwks_url: Option<String>,
    /// Tried in order; the first whose claims all match names the agent.
    #[serde(default)]
    pub rules: Vec<RawWorkloadRule>,
}

/// `[[workload_identity.rules]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkloadRule {
    /// Claim name → expected string value; `*` in a value matches any run of characters.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// The agent this maps to; `{claim}` is replaced by that claim's value.
    /// The agent must be registered (`agents add`) and not revoked.
    pub agent: Option<String>,
}

/// `[console]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    /// Serve the web console under `/console`. Default `true`.
    pub enabled: Option<bool>,
    /// How long a console session lasts. Default `8h`.
    pub session_ttl: Option<String>,
    /// Mark cookies `Secure`. Default `true`; browsers accept them on
    /// `http://localhost` and `http://127.0.0.1` too.
    pub secure_cookies: Option<bool>,
}

/// The OpenID Connect provider, validated.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub email_claim: String,
    /// See [`RawOidc::email_claim_verified`].
    pub email_claim_verified: bool,
    pub name_claim: String,
    /// Empty: everyone the provider authenticates may log in.
    pub allowed_groups: Vec<String>,
    pub audiences: Vec<String>,
    pub step_up_max_age: Duration,
    pub redirect_url: String,
    pub post_logout_redirect_url: String,
}

/// One workload-identity issuer, validated.
#[derive(Debug, Clone)]
pub struct WorkloadIdentityConfig {
    pub name: String,
    pub issuer: String,
    pub audience: String,
    pub jwks_url: Option<String>,
    pub rules: Vec<WorkloadRule>,
}

/// A claim-matching rule that names an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRule {
    pub claims: BTreeMap<String, String>,
    pub agent: String,
}

/// The console, validated.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub enabled: bool,
    pub session_ttl: Duration,
    pub secure_cookies: bool,
}

/// Everything about identifying people and workloads beyond local tokens.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub oidc: Option<OidcConfig>,
    pub workload_identity: Vec<WorkloadIdentityConfig>,
    pub console: ConsoleConfig,
    /// Whether humans may use personal tokens (`[oidc] local_tokens_for_humans`).
    pub local_tokens_for_humans: bool,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            oidc: None,
            workload_identity: Vec::new(),
            console: ConsoleConfig { enabled: true, session_ttl: DEFAULT_SESSION_TTL, secure_cookies: true },
            local_tokens_for_humans: true,
        }
    }
}

impl IdentityConfig {
    /// How recent a login must be for a step-up approval; `None` without
    /// an identity provider, where no approval can be stepped up.
    pub fn step_up_max_age(&self) -> Option<Duration> {
        self.oidc.as_ref().map(|o| o.step_up_max_age)
    }
}

const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

pub fn validate(
    oidc: Option<RawOidc>,
    workload: Vec<RawWorkloadIdentity>,
    console: RawConsole,
    public_url: &str,
) -> Result<IdentityConfig, ConfigError> {
    let local_tokens_for_humans = oidc.as_ref().and_then(|o| o.local_tokens_for_humans).unwrap_or(true);
    let oidc = oidc.map(|raw| validate_oidc(raw, public_url)).transpose()?;
    if !local_tokens_for_humans && oidc.is_none() {
        return Err(invalid(
            "oidc.local_tokens_for_humans",
            "can be `false` only with an `issuer`: otherwise no human could sign in",
        ));
    }
    let session_ttl = duration("console.session_ttl", console.session_ttl.as_deref(), DEFAULT_SESSION_TTL)?;
    if session_ttl < Duration::from_secs(60) {
        return Err(invalid("console.session_ttl", "must be at least 1m"));
    }
    Ok(IdentityConfig {
        oidc,
        workload_identity: workload.into_iter().map(validate_workload).collect::<Result<_, _>>()?,
        console: ConsoleConfig {
            enabled: console.enabled.unwrap_or(true),
            session_ttl,
            secure_cookies: console.secure_cookies.unwrap_or(true),
        },
        local_tokens_for_humans,
    })
}

fn validate_oidc(raw: RawOidc, public_url: &str) -> Result<OidcConfig, ConfigError> {
    let issuer = raw.issuer.ok_or_else(|| invalid("oidc.issuer", "missing: the identity provider's issuer URL"))?;
    let issuer = issuer_url("oidc.issuer", issuer)?;
    let client_id = raw
        .client_id
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| invalid("oidc.client_id", "missing: the client id registered at the provider"))?;
    let client_secret = secret("oidc.client_secret", raw.client_secret, raw.client_secret_file.as_deref())?;
    let scopes = raw.scopes.unwrap_or_else(|| ["openid", "email", "profile"].map(str::to_owned).to_vec());
    if !scopes.iter().any(|s| s == "openid") {
        return Err(invalid("oidc.scopes", "must include `openid`"));
    }
    if let Some(bad) = scopes.iter().find(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '"')) {
        return Err(invalid("oidc.scopes", &format!("`{bad}` is not a scope")));
    }
    let step_up_max_age = duration("oidc.step_up_max_age", raw.step_up_max_age.as_deref(), Duration::from_secs(300))?;
    if step_up_max_age < Duration::from_secs(1) {
        return Err(invalid("oidc.step_up_max_age", "must be at least 1s"));
    }
    let redirect_url = url("oidc.redirect_url", raw.redirect_url, &format!("{public_url}/console/callback"))?;
    let post_logout_redirect_url = url(
        "oidc.post_logout_redirect_url",
        raw.post_logout_redirect_url,
        &format!("{public_url}/console/login?logged_out=1"),
    )?;
    let audiences = raw.audiences.unwrap_or_else(|| vec![client_id.clone()]);
    if audiences.is_empty() {
        return Err(invalid("oidc.audiences", "must name at least one audience"));
    }
    Ok(OidcConfig {
        issuer,
        client_id,
        client_secret,
        scopes,
        groups_claim: claim_name("oidc.groups_claim", raw.groups_claim, "groups")?,
        email_claim: claim_name("oidc.email_claim", raw.email_claim, "email")?,
        email_claim_verified: raw.email_claim_verified.unwrap_or(false),
        name_claim: claim_name("oidc.name_claim", raw.name_claim, "name")?,
        allowed_groups: raw.allowed_groups.unwrap_or_default(),
        audiences,
        step_up_max_age,
        redirect_url,
        post_logout_redirect_url,
    })
}

fn validate_workload(raw: RawWorkloadIdentity) -> Result<WorkloadIdentityConfig, ConfigError> {
    let issuer = raw.issuer.ok_or_else(|| {
        invalid("workload_identity.issuer", "missing: each `[[workload_identity]]` needs an `issuer`")
    })?;
    let issuer = issuer_url("workload_identity.issuer", issuer)?;
    let audience = raw.audience.filter(|a| !a.trim().is_empty()).ok_or_else(|| {
        invalid("workload_identity.audience", "missing: the audience this gateway's tokens are minted for")
    })?;
    let jwks_url = raw.jwks_url.map(|u| issuer_url("workload_identity.jwks_url", u)).transpose()?;
    if raw.rules.is_empty() {
        return Err(invalid("workload_identity.rules", "missing: at least one `[[workload_identity.rules]]`"));
    }
    let mut rules = Vec::new();
    for rule in raw.rules {
        let agent = rule
            .agent
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| invalid("workload_identity.rules.agent", "missing: the agent a matching token acts as"))?;
        if rule.claims.is_empty() {
            return Err(invalid(
                "workload_identity.rules.claims",
                "a rule must match at least one claim (for example `repository`), or any token of the issuer would do",
            ));
        }
        rules.push(WorkloadRule { claims: rule.claims, agent });
    }
    Ok(WorkloadIdentityConfig { name: raw.name.unwrap_or_else(|| issuer.clone()), issuer, audience, jwks_url, rules })
}

fn invalid(key: &'static str, message: &str) -> ConfigError {
    ConfigError::Invalid { key, message: message.to_owned() }
}

fn claim_name(key: &'static str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(invalid(key, &format!("`{value}` is not a claim name")));
    }
    Ok(value)
}

/// An issuer or key URL: `https://`, or `http://` to a loopback address
/// (a provider on the same machine, as in tests).
fn issuer_url(key: &'static str, value: String) -> Result<String, ConfigError> {
    let value = value.trim_end_matches('/').to_owned();
    let host = value
        .strip_prefix("http://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .map(|authority| authority.rsplit_once(':').map_or(authority, |(host, _)| host));
    let ok = match host {
        Some(host) => ["127.0.0.1", "localhost", "[::1]"].contains(&host) || host.starts_with("127."),
        None => value.starts_with("https://") && value.len() > "https://".len(),
    };
    if !ok || value.chars().any(char::is_whitespace) {
        return Err(invalid(key, &format!("`{value}` must be an https URL (http only for a loopback address)")));
    }
    Ok(value)
}

fn url(key: &'static str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() > "https://".len()
        && !value.chars().any(char::is_whitespace);
    if ok {
        Ok(value)
    } else {
        Err(invalid(key, &format!("`{value}` is not an http(s) URL")))
    }
}
