//! From a verified token's claims to the person behind it: email, display
//! name and groups, under the configured claim names, and the rule on
//! which groups may come in at all.

use countersign_core::principal::{valid_email, valid_name};
use countersign_server::config::OidcConfig;
use serde_json::{Map, Value};

/// The person a provider vouches for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserClaims {
    /// The provider's stable id for the person.
    pub subject: String,
    pub email: String,
    pub display_name: Option<String>,
    pub groups: Vec<String>,
}

/// Why claims do not describe someone who may come in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the identity provider sent no `{0}` claim; ask your administrator to release it to this application")]
    Missing(String),
    #[error("the identity provider says the email address `{0}` is not verified")]
    Unverified(String),
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
    // An address the provider itself says is unverified identifies nobody:
    // anyone could have typed it, and people are matched by email.
    if claims.get("email_verified").and_then(Value::as_bool) == Some(false) && config.email_claim == "email" {
        return Err(ClaimsError::Unverified(email));
    }
    let display_name = claims
        .get(&config.name_claim)
        .and_then(Value::as_str)
        .map(|n| n.chars().filter(|c| !c.is_control()).take(128).collect::<String>())
        .filter(|n| !n.trim().is_empty());
    let groups = groups(claims.get(&config.groups_claim));
    if !config.allowed_groups.is_empty() && !groups.iter().any(|g| config.allowed_groups.contains(g)) {
        return Err(ClaimsError::NotAllowed);
    }
    Ok(UserClaims { subject: subject.to_owned(), email, display_name, groups })
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
    fn refuses_missing_or_unverified_email() {
        assert_eq!(user(&config(), &claims(json!({"sub": "1"}))), Err(ClaimsError::Missing("email".into())));
        let unverified = json!({"sub": "1", "email": "a@b", "email_verified": false});
        assert!(matches!(user(&config(), &claims(unverified)), Err(ClaimsError::Unverified(_))));
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
