//! From a verified token's claims to the person behind it: email, display
//! name and groups, under the configured claim names, and the rule on
//! which groups may come in at all.

use crate::config::OidcConfig;
use countersign_core::principal::{valid_email, valid_name};
use serde_json::{Map, Value};

/// The person a provider vouches for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserClaims {
    /// The provider (the verified token's `iss`).
    #[serde(default)]
    pub issuer: String,
    /// The provider's stable id for the person.
    pub subject: String,
    pub email: String,
    /// Whether the provider vouches for `email` (see [`email_verified`]);
    /// people are matched by email only when it does ([`crate::people`]).
    #[serde(default)]
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub groups: Vec<String>,
}

/// Why claims do not describe someone who may come in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the identity provider sent no `{0}` claim; ask your administrator to release it to this application")]
    Missing(String),
    #[error("`{0}` is not an email address")]
    InvalidEmail(String),
    #[error("you are not in any group allowed to use countersign")]
    NotAllowed,
}

/// Reads the person from verified claims.
pub fn user(config: &OidcConfig, claims: &Map<String, Value>) -> Result<UserClaims, ClaimsError> {
    let subject = claims.get("sub").and_then(Value::as_str).ok_or_else(|| ClaimsError::Missing("sub".to_owned()))?;
    let email = claims
        .get(&config.email_claim)
        .and_then(Value::as_str)
        .ok_or_else(|| ClaimsError::Missing(config.email_claim.clone()))?
        .trim()
        .to_owned();
    if !valid_email(&email) {
        return Err(ClaimsError::InvalidEmail(email));
    }
    let email_verified = email_verified(config, claims, &email);
    let display_name = claims
        .get(&config.name_claim)
        .and_then(Value::as_str)
        .map(|n| n.chars().filter(|c| !c.is_control()).take(128).collect::<String>())
        .filter(|n| !n.trim().is_empty());
    let groups = groups(claims.get(&config.groups_claim));
    if !config.allowed_groups.is_empty() && !groups.iter().any(|g| config.allowed_groups.contains(g)) {
        return Err(ClaimsError::NotAllowed);
    }
    let issuer = claims.get("iss").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(UserClaims { issuer, subject: subject.to_owned(), email, email_verified, display_name, groups })
}

/// Whether the provider vouches for `email`, read from `email_claim`.
///
/// OIDC Core §5.1: `email_verified` (a JSON boolean) is about the standard
/// `email` claim only. So the address is verified when:
/// - the token says `email_verified: true` (the boolean; `"true"`, `1` or
///   absence are not) and the address is the standard `email` claim's
///   (when `email_claim` names another claim, it must hold the same
///   address, compared case-insensitively); or
/// - `[oidc] email_claim_verified = true` says the provider vouches for
///   every address it puts in `email_claim` (e.g. a directory-managed
///   sign-in name), unless the token says `email_verified: false` about
///   that very address.
pub fn email_verified(config: &OidcConfig, claims: &Map<String, Value>, email: &str) -> bool {
    let standard = claims.get("email").and_then(Value::as_str).map(str::trim);
    let same_as_standard = standard.is_some_and(|s| s.eq_ignore_ascii_case(email));
    match (claims.get("email_verified"), same_as_standard) {
        (Some(Value::Bool(true)), true) => true,
        (Some(Value::Bool(false)), true) => false,
        (Some(Value::Bool(_)), false)
        | (Some(Value::Null | Value::Number(_) | Value::String(_) | Value::Array(_) | Value::Object(_)) | None, _) => {
            config.email_claim_verified
        }
    }
}

/// Groups as an array of strings or one space- or comma-separated string.
/// Names that countersign could not use as group names are dropped.
fn groups(value: Option<&Value>) -> Vec<String> {
    let mut groups: Vec<String> = match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(text)) => text.split([',', ' ']).map(str::to_owned).collect(),
        Some(Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_)) | None => Vec::new(),
    };
    groups.retain(|g| valid_name(g));
    groups.sort();
    groups.dedup();
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://idp".into(),
            client_id: "cs".into(),
            client_secret: None,
            scopes: vec!["openid".into()],
            groups_claim: "groups".into(),
            email_claim: "email".into(),
            email_claim_verified: false,
            name_claim: "name".into(),
            allowed_groups: vec![],
            audiences: vec!["cs".into()],
            step_up_max_age: Duration::from_secs(300),
            redirect_url: "http://x/console/callback".into(),
            post_logout_redirect_url: "http://x/console/login".into(),
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn reads_email_name_and_groups() {
        let u = user(
            &config(),
            &claims(json!({"sub": "1", "email": "Alice@Corp.example", "name": "Alice", "groups": ["sre", "bad group", "sre"]})),
        )
        .unwrap();
        assert_eq!(u.email, "Alice@Corp.example");
        assert_eq!(u.display_name.as_deref(), Some("Alice"));
        assert_eq!(u.groups, vec!["sre".to_owned()]);
        let u = user(&config(), &claims(json!({"sub": "1", "email": "a@b", "groups": "sre,dba"}))).unwrap();
        assert_eq!(u.groups, vec!["dba".to_owned(), "sre".to_owned()]);
    }

    #[test]
    fn only_a_boolean_true_about_the_address_verifies_it() {
        let verified = |c: &OidcConfig, v: Value| user(c, &claims(v)).unwrap().email_verified;
        let standard = config();
        assert!(verified(&standard, json!({"sub": "1", "email": "a@b", "email_verified": true})));
        for not in [json!(false), json!("true"), json!("false"), json!(1), json!(null), json!([true]), json!({})] {
            assert!(!verified(&standard, json!({"sub": "1", "email": "a@b", "email_verified": not})), "{not}");
        }
        assert!(!verified(&standard, json!({"sub": "1", "email": "a@b"})), "absent");
        // A custom claim is verified only as the verified standard address.
        let mut custom = config();
        custom.email_claim = "upn".into();
        let upn = |extra: Value| {
            let mut v = json!({"sub": "1", "upn": "Root@Corp.example"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        assert!(!verified(&custom, upn(json!({}))));
        assert!(!verified(&custom, upn(json!({"email_verified": true}))), "verified, but about no address");
        assert!(!verified(&custom, upn(json!({"email": "me@evil.example", "email_verified": true}))));
        assert!(verified(&custom, upn(json!({"email": "root@corp.example", "email_verified": true}))));
        // Unless the configuration says the provider vouches for it.
        custom.email_claim_verified = true;
        assert!(verified(&custom, upn(json!({}))));
        assert!(verified(&custom, upn(json!({"email": "me@evil.example", "email_verified": true}))));
        assert!(!verified(&custom, upn(json!({"email": "root@corp.example", "email_verified": false}))));
    }

    #[test]
    fn refuses_missing_or_invalid_email() {
        assert_eq!(user(&config(), &claims(json!({"sub": "1"}))), Err(ClaimsError::Missing("email".into())));
        assert!(matches!(
            user(&config(), &claims(json!({"sub": "1", "email": "nope"}))),
            Err(ClaimsError::InvalidEmail(_))
        ));
    }

    #[test]
    fn allowed_groups_gate_entry() {
        let mut c = config();
        c.allowed_groups = vec!["sre".into()];
        assert_eq!(
            user(&c, &claims(json!({"sub": "1", "email": "a@b", "groups": ["dev"]}))),
            Err(ClaimsError::NotAllowed)
        );
        assert!(user(&c, &claims(json!({"sub": "1", "email": "a@b", "groups": ["sre"]}))).is_ok());
    }
}
