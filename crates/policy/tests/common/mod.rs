//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::time::Duration;

use countersign_core::{Action, Principal, PrincipalKind};
use countersign_policy::{Defaults, PolicyEngine, PolicyLoadError, PolicySource};
use serde_json::{json, Value};

pub fn defaults() -> Defaults {
    Defaults { timeout: Duration::from_secs(3600), valid_for: Duration::from_secs(900) }
}

pub fn source(file: &str, text: &str) -> PolicySource {
    PolicySource { file: file.to_owned(), text: text.to_owned() }
}

pub fn try_engine(text: &str) -> Result<PolicyEngine, PolicyLoadError> {
    PolicyEngine::from_sources(vec![source("test.cedar", text)], None, defaults())
}

pub fn engine(text: &str) -> PolicyEngine {
    match try_engine(text) {
        Ok(engine) => engine,
        Err(e) => panic!("policy should load:\n{}", e.problems().join("\n")),
    }
}

pub fn agent(name: &str, groups: &[&str]) -> Principal {
    Principal {
        kind: PrincipalKind::Agent,
        name: name.to_owned(),
        email: None,
        owner: Some("alice".to_owned()),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

pub fn user(name: &str, groups: &[&str]) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        name: name.to_owned(),
        email: Some(format!("{name}@example.com")),
        owner: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

pub fn action(kind: &str, resource: &str) -> Action {
    Action {
        kind: kind.to_owned(),
        resource: resource.to_owned(),
        payload: Value::Null,
        on_behalf_of: None,
        justification: None,
        labels: Vec::new(),
        context: serde_json::Map::new(),
    }
}

/// An action from its JSON form.
pub fn action_json(value: Value) -> Action {
    serde_json::from_value(value).unwrap()
}

pub fn sql(resource: &str, statement: &str, labels: &[&str]) -> Action {
    action_json(json!({
        "kind": "sql.execute", "resource": resource,
        "payload": {"statement": statement}, "labels": labels,
    }))
}
