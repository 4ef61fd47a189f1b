//! Workload identity: agents that prove who they are with a token from a
//! trusted issuer (GitHub Actions OIDC, a Kubernetes service-account token,
//! …) instead of an API key.
//!
//! Each `[[workload_identity]]` entry trusts one issuer for one audience.
//! Its rules are tried in order; the first whose claims all match names the
//! agent, and that agent must be registered and not revoked, so ownership
//! (who may not approve) and revocation work as for API keys.

use crate::config::{WorkloadIdentityConfig, WorkloadRule};
use countersign_core::principal::valid_name;
use countersign_core::Principal;
use countersign_gateway::directory::Directory;
use countersign_store::StoreError;
use serde_json::{Map, Value};

use crate::jwt::TokenError;
use crate::verifier::{Policy, Verifier};

/// Why a workload token names no agent.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("no rule of `{0}` matches the token's claims")]
    NoRule(String),
    #[error("the token maps to agent `{0}`, which is not registered or was revoked")]
    UnknownAgent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One trusted workload issuer.
#[derive(Debug)]
pub struct WorkloadIssuer {
    config: WorkloadIdentityConfig,
    verifier: Verifier,
}

impl WorkloadIssuer {
    pub fn new(config: WorkloadIdentityConfig, client: reqwest::Client) -> Self {
        let verifier = Verifier::with_jwks_url(client, config.issuer.clone(), config.jwks_url.clone(), Policy::OPENID);
        Self { config, verifier }
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The registered agent this token acts as.
    pub async fn authenticate(
        &self,
        token: &str,
        iss: &str,
        directory: &Directory,
    ) -> Result<Principal, WorkloadError> {
        let claims = self.verifier.verify(token, iss, std::slice::from_ref(&self.config.audience)).await?;
        let name = map(&self.config.rules, &claims).ok_or_else(|| WorkloadError::NoRule(self.config.name.clone()))?;
        match directory.agent(&name).await? {
            Some(agent) if agent.revoked_at.is_none() => Ok(agent.principal()),
            Some(_) | None => Err(WorkloadError::UnknownAgent(name)),
        }
    }

    /// For health pages.
    pub async fn health(&self) -> crate::Health {
        let keys = self.verifier.keys_status().await;
        let error = match (&self.config.jwks_url, keys.is_some()) {
            (None, false) => self.verifier.metadata().await.err(),
            (Some(_), _) | (None, true) => None,
        };
        crate::Health::from_parts(
            &format!("workload identity `{}`", self.config.name),
            &self.config.issuer,
            error,
            keys,
        )
    }
}

/// The agent name of the first matching rule.
pub fn map(rules: &[WorkloadRule], claims: &Map<String, Value>) -> Option<String> {
    rules.iter().find(|rule| matches(rule, claims)).and_then(|rule| render(&rule.agent, claims))
}

fn matches(rule: &WorkloadRule, claims: &Map<String, Value>) -> bool {
    rule.claims.iter().all(|(name, pattern)| claim_text(claims, name).is_some_and(|value| glob(pattern, &value)))
}

/// Strings, numbers and booleans compare as text; nothing else matches.
fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Fills `{claim}` placeholders; the result must be a valid agent name, so
/// a claim cannot smuggle in characters a name may not hold.
fn render(template: &str, claims: &Map<String, Value>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let value = claim_text(claims, &after[..close])?;
        out.push_str(&value.replace('/', "-"));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    valid_name(&out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn rule(claims: &[(&str, &str)], agent: &str) -> WorkloadRule {
        WorkloadRule {
            claims: claims.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
            agent: agent.to_owned(),
        }
    }

    #[test]
    fn globs() {
        assert!(glob("acme/*", "acme/app"));
        assert!(!glob("acme/*", "evil/acme/app"));
        assert!(glob("refs/heads/*", "refs/heads/main"));
        assert!(glob("*:prod:*", "system:serviceaccount:prod:deployer"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(!glob("ab*ab", "ab"), "prefix and suffix must not overlap");
    }

    #[test]
    fn first_matching_rule_names_the_agent() {
        let rules = vec![
            rule(&[("repository", "acme/deploy"), ("ref", "refs/heads/main")], "gha-deploy"),
            rule(&[("repository_owner", "acme")], "gha-{repository_owner}"),
        ];
        let main = json!({"repository": "acme/deploy", "ref": "refs/heads/main", "repository_owner": "acme"});
        assert_eq!(map(&rules, main.as_object().unwrap()).as_deref(), Some("gha-deploy"));
        let branch = json!({"repository": "acme/deploy", "ref": "refs/heads/x", "repository_owner": "acme"});
        assert_eq!(map(&rules, branch.as_object().unwrap()).as_deref(), Some("gha-acme"));
        let other = json!({"repository": "evil/deploy", "repository_owner": "evil"});
        assert_eq!(map(&rules, other.as_object().unwrap()), None);
    }

    #[test]
    fn placeholders_cannot_smuggle_characters() {
        let rules = vec![rule(&[("sub", "*")], "k8s-{sub}")];
        let claims = json!({"sub": "system:serviceaccount:prod:deployer"});
        assert_eq!(map(&rules, claims.as_object().unwrap()), None, "`:` is not allowed in agent names");
        let claims = json!({"sub": "deployer"});
        assert_eq!(map(&rules, claims.as_object().unwrap()).as_deref(), Some("k8s-deployer"));
        assert_eq!(render("x-{missing}", &Map::new()), None);
    }
}
