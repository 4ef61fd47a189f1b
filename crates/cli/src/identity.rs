//! `users` and `agents`: creating, listing and revoking identities in the
//! store. Only the SHA-256 of a credential is stored; the credential itself
//! is printed once.

use countersign_audit::AuditDraft;
use countersign_core::events::{AgentCreated, Event, IdentityRevoked, UserCreated};
use countersign_core::principal::{valid_email, valid_name};
use countersign_core::{PrincipalKind, Timestamp};
use countersign_gateway::identify::new_token;
use countersign_store::{NewAgent, NewUser};
use serde_json::json;

use crate::cli::{AgentsCommand, UsersCommand};
use crate::exit::{Exit, Failure};
use crate::local::{self, Open};
use crate::output::{print_warning, table, Output};

pub async fn users(command: UsersCommand, output: Output) -> anyhow::Result<Exit> {
    match command {
        UsersCommand::Add { name, email, groups, store } => {
            check_name("user", &name)?;
            if !valid_email(&email) {
                return Err(Failure::usage(format!("`{email}` is not an email address (expected name@domain)")));
            }
            check_groups(&groups)?;
            let config = local::config(&store)?;
            let store = local::open_store(&config, Open::Create).await?;
            let (token, token_hash) = new_token(PrincipalKind::User);
            let created = UserCreated {
                name: name.clone(),
                email: email.clone(),
                groups: groups.clone(),
                source: None,
                subject: None,
            };
            let draft = AuditDraft::new(local::cli_actor(), Event::UserCreated(created));
            let user = NewUser { name, email, groups, token_hash, created_at: Timestamp::now() };
            let user = store.create_user(user, vec![draft]).await?;
            if output.is_json() {
                println!("{}", json!({"name": user.name, "email": user.email, "groups": user.groups, "token": token}));
            } else {
                println!("created user {} <{}>{}", user.name, user.email, groups_suffix(&user.groups));
                println!("token: {token}");
                print_warning("keep this token now: it is shown only once, and only its hash is stored");
            }
            Ok(Exit::OK)
        }
        UsersCommand::List { store } => {
            let config = local::config(&store)?;
            let users = local::open_store(&config, Open::Existing).await?.list_users().await?;
            if output.is_json() {
                println!("{}", json!({ "users": users }));
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.email.clone(),
                            u.groups.join(","),
                            u.created_at.to_rfc3339(),
                            state(u.revoked_at),
                        ]
                    })
                    .collect();
                print!("{}", table(&["NAME", "EMAIL", "GROUPS", "CREATED", "STATE"], &rows));
            }
            Ok(Exit::OK)
        }
        UsersCommand::Revoke { name, store } => {
            let config = local::config(&store)?;
            let store = local::open_store(&config, Open::Existing).await?;
            let draft = AuditDraft::new(local::cli_actor(), Event::UserRevoked(IdentityRevoked { name: name.clone() }));
            let revoked = store.revoke_user(&name, Timestamp::now(), vec![draft]).await?;
            report_revoked("user", &name, revoked.len(), output);
            Ok(Exit::OK)
        }
    }
}

pub async fn agents(command: AgentsCommand, output: Output) -> anyhow::Result<Exit> {
    match command {
        AgentsCommand::Add { name, owner, groups, store } => {
            check_name("agent", &name)?;
            check_groups(&groups)?;
            let config = local::config(&store)?;
            let store = local::open_store(&config, Open::Create).await?;
            if let Some(owner) = &owner {
                match store.user(owner).await? {
                    Some(user) if user.revoked_at.is_none() => {}
                    Some(_) => anyhow::bail!("owner `{owner}` is revoked"),
                    None => anyhow::bail!("owner `{owner}` is not a user; add it first with `countersign users add`"),
                }
            }
            let (token, token_hash) = new_token(PrincipalKind::Agent);
            let created = AgentCreated { name: name.clone(), owner: owner.clone(), groups: groups.clone() };
            let draft = AuditDraft::new(local::cli_actor(), Event::AgentCreated(created));
            let agent = NewAgent { name, owner, groups, token_hash, created_at: Timestamp::now() };
            let agent = store.create_agent(agent, vec![draft]).await?;
            if output.is_json() {
                println!(
                    "{}",
                    json!({"name": agent.name, "owner": agent.owner, "groups": agent.groups, "token": token})
                );
            } else {
                let owner = agent.owner.as_deref().map(|o| format!(", owned by {o}")).unwrap_or_default();
                println!("created agent {}{owner}{}", agent.name, groups_suffix(&agent.groups));
                println!("key: {token}");
                print_warning("keep this key now: it is shown only once, and only its hash is stored");
            }
            Ok(Exit::OK)
        }
        AgentsCommand::List { store } => {
            let config = local::config(&store)?;
            let agents = local::open_store(&config, Open::Existing).await?.list_agents().await?;
            if output.is_json() {
                println!("{}", json!({ "agents": agents }));
            } else {
                let rows: Vec<Vec<String>> = agents
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            a.owner.clone().unwrap_or_else(|| "-".to_owned()),
                            a.groups.join(","),
                            a.created_at.to_rfc3339(),
                            state(a.revoked_at),
                        ]
                    })
                    .collect();
                print!("{}", table(&["NAME", "OWNER", "GROUPS", "CREATED", "STATE"], &rows));
            }
            Ok(Exit::OK)
        }
        AgentsCommand::Revoke { name, store } => {
            let config = local::config(&store)?;
            let store = local::open_store(&config, Open::Existing).await?;
            let draft =
                AuditDraft::new(local::cli_actor(), Event::AgentRevoked(IdentityRevoked { name: name.clone() }));
            let revoked = store.revoke_agent(&name, Timestamp::now(), vec![draft]).await?;
            report_revoked("agent", &name, revoked.len(), output);
            Ok(Exit::OK)
        }
    }
}

fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "`{name}` is not a valid {what} name: use 1-64 letters, digits, `.`, `_`, `-` or `@`, starting with a letter or digit"
        )))
    }
}

fn check_groups(groups: &[String]) -> anyhow::Result<()> {
    match groups.iter().find(|g| !valid_name(g)) {
        None => Ok(()),
        Some(bad) => Err(Failure::usage(format!(
            "`{bad}` is not a valid group name: use 1-64 letters, digits, `.`, `_`, `-` or `@`"
        ))),
    }
}

fn groups_suffix(groups: &[String]) -> String {
    if groups.is_empty() {
        String::new()
    } else {
        format!(" in groups {}", groups.join(", "))
    }
}

fn state(revoked_at: Option<Timestamp>) -> String {
    match revoked_at {
        None => "active".to_owned(),
        Some(at) => format!("revoked {}", at.to_rfc3339()),
    }
}

fn report_revoked(what: &str, name: &str, requests: usize, output: Output) {
    if output.is_json() {
        println!("{}", json!({"revoked": what, "name": name, "requests_revoked": requests}));
    } else {
        let plural = if requests == 1 { "" } else { "s" };
        println!("revoked {what} {name}; {requests} open request{plural} revoked");
    }
}
