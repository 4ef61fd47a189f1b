//! A cast of users and agents with their groups, enrolled in a store with
//! personal tokens and agent keys, each creation audited, as `countersign
//! users add` and `agents add` would do it.

use std::collections::HashMap;

use countersign_audit::AuditDraft;
use countersign_core::{PrincipalKind, Timestamp};
use countersign_gateway::identify::new_token;
use countersign_store::{NewAgent, NewUser, Store};
use serde_json::json;

/// Who a test gateway knows: users (name, email, groups) and agents
/// (name, owner, groups), enrolled in that order.
#[derive(Debug, Clone, Default)]
pub struct Cast {
    users: Vec<(String, String, Vec<String>)>,
    agents: Vec<(String, Option<String>, Vec<String>)>,
}

fn owned(groups: &[&str]) -> Vec<String> {
    groups.iter().map(|g| (*g).to_owned()).collect()
}

impl Cast {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a person.
    pub fn user(mut self, name: &str, email: &str, groups: &[&str]) -> Self {
        self.users.push((name.to_owned(), email.to_owned(), owned(groups)));
        self
    }

    /// Adds an agent, owned by the user `owner` if any.
    pub fn agent(mut self, name: &str, owner: Option<&str>, groups: &[&str]) -> Self {
        self.agents.push((name.to_owned(), owner.map(str::to_owned), owned(groups)));
        self
    }

    /// Creates every user, then every agent, in `store`; returns their
    /// tokens by name.
    pub async fn enrol(&self, store: &dyn Store) -> Tokens {
        let mut tokens = HashMap::new();
        for (name, email, groups) in &self.users {
            let (token, hash) = new_token(PrincipalKind::User);
            let user = NewUser {
                name: name.clone(),
                email: email.clone(),
                groups: groups.clone(),
                token_hash: hash,
                created_at: Timestamp::now(),
            };
            store
                .create_user(user, vec![AuditDraft::raw("test", "identity.user_created", json!({"name": name}))])
                .await
                .unwrap();
            tokens.insert(name.clone(), token);
        }
        for (name, owner, groups) in &self.agents {
            let (token, hash) = new_token(PrincipalKind::Agent);
            let agent = NewAgent {
                name: name.clone(),
                owner: owner.clone(),
                groups: groups.clone(),
                token_hash: hash,
                created_at: Timestamp::now(),
            };
            store
                .create_agent(agent, vec![AuditDraft::raw("test", "identity.agent_created", json!({"name": name}))])
                .await
                .unwrap();
            tokens.insert(name.clone(), token);
        }
        Tokens(tokens)
    }
}

/// The personal tokens and agent keys of an enrolled cast, by name.
#[derive(Debug, Clone, Default)]
pub struct Tokens(HashMap<String, String>);

impl Tokens {
    /// `who`'s token; a name outside the cast fails the test.
    pub fn get(&self, who: &str) -> &str {
        self.0.get(who).unwrap_or_else(|| panic!("no token for {who}"))
    }
}
