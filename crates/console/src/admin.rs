//! The admin page (group `admin`): users and agents with their keys —
//! create (the token or key is shown once) and revoke (at once, with their
//! open requests) — and the health of each integration.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Form;
use countersign_audit::AuditDraft;
use countersign_core::events::{AgentCreated, Event, UserCreated};
use countersign_core::principal::{valid_email, valid_name};
use countersign_core::{PrincipalKind, Timestamp};
use countersign_gateway::identify::new_token;
use countersign_gateway::GatewayError;
use countersign_store::{NewAgent, NewUser, StoreError};
use maud::{html, Markup};
use serde::Deserialize;

use crate::audit::forbidden;
use crate::html::time;
use crate::layout::{csrf_field, notice, page as frame, Notice, Section};
use crate::session::Viewer;
use crate::view::column_heads;
use crate::Shared;

pub async fn page(State(state): State<Shared>, viewer: Viewer) -> Response {
    if !viewer.principal.is_admin() {
        return forbidden(&viewer);
    }
    render(&state, &viewer, html! {}).await
}

async fn render(state: &Shared, viewer: &Viewer, message: Markup) -> Response {
    let users = state.app.directory().users().await.unwrap_or_default();
    let agents = state.app.directory().agents().await.unwrap_or_default();
    let csrf = csrf_field(&viewer.csrf);
    let revoke = |kind: &str, name: &str| {
        html! {
            form method="post" action="/console/admin/revoke" class="inline"
                data-confirm={ "Revoke " (kind) " " (name) "? Its open requests are revoked too." } {
                (csrf)
                input type="hidden" name="kind" value=(kind);
                input type="hidden" name="name" value=(name);
                button type="submit" class="danger small" aria-label={ "Revoke " (kind) " " (name) } { "Revoke" }
            }
        }
    };
    let approvers = crate::groups_hint::approver_groups(state);
    let health = health(state).await;
    let body = html! {
        h1 { "Admin" }
        (message)
        section class="card" aria-labelledby="health-h" {
            h2 id="health-h" { "Integrations" }
            (health)
        }
        section class="card" aria-labelledby="users-h" {
            h2 id="users-h" { "Users" }
            (crate::groups_hint::for_admin(state, &users))
            table class="users" {
                caption class="visually-hidden" { "Users" }
                (column_heads(&["Name", "Email", "Groups", "Last login", "Created", ""]))
                tbody {
                    @for u in &users {
                        tr {
                            td data-label="Name" {
                                (u.name)
                                @if let Some(display) = &u.display_name {
                                    " " span class="muted small" { "(" (display) ")" }
                                }
                            }
                            td data-label="Email" { (u.email) }
                            td data-label="Groups" {
                                (u.groups.join(", "))
                                @if u.revoked_at.is_none() && !crate::groups_hint::is_approver(&u.groups, &approvers) {
                                    " " span class="muted small" { "(no approver group)" }
                                }
                            }
                            // Kept up to date by every login through the identity provider.
                            td data-label="Last login" {
                                @match u.last_login {
                                    Some(t) => (time(t)),
                                    None => "—",
                                }
                            }
                            td data-label="Created" { (time(u.created_at)) }
                            td data-label="" {
                                @match u.revoked_at {
                                    Some(t) => { "revoked " (time(t)) }
                                    None => (revoke("user", &u.name)),
                                }
                            }
                        }
                    }
                }
            }
            details {
                summary { "Add a user with a personal token" }
                form method="post" action="/console/admin/users" class="stack" {
                    (csrf)
                    label for="u-name" { "Name" }
                    input id="u-name" name="name" required autocomplete="off";
                    label for="u-email" { "Email" }
                    input id="u-email" name="email" type="email" required autocomplete="off";
                    label for="u-groups" { "Groups (comma-separated)" }
                    input id="u-groups" name="groups" autocomplete="off";
                    div class="buttons" { button type="submit" { "Add user" } }
                }
            }
        }
        section class="card" aria-labelledby="agents-h" {
            h2 id="agents-h" { "Agents" }
            table class="agents" {
                caption class="visually-hidden" { "Agents" }
                (column_heads(&["Name", "Owner", "Groups", "Created", ""]))
                tbody {
                    @for a in &agents {
                        tr {
                            td data-label="Name" { (a.name) }
                            td data-label="Owner" { (a.owner.as_deref().unwrap_or("—")) }
                            td data-label="Groups" { (a.groups.join(", ")) }
                            td data-label="Created" { (time(a.created_at)) }
                            td data-label="" {
                                @match a.revoked_at {
                                    Some(t) => { "revoked " (time(t)) }
                                    None => (revoke("agent", &a.name)),
                                }
                            }
                        }
                    }
                }
            }
            details {
                summary { "Add an agent with an API key" }
                form method="post" action="/console/admin/agents" class="stack" {
                    (csrf)
                    label for="a-name" { "Name" }
                    input id="a-name" name="name" required autocomplete="off";
                    label for="a-owner" { "Owner (a user; may not approve its requests)" }
                    input id="a-owner" name="owner" autocomplete="off";
                    label for="a-groups" { "Groups (comma-separated)" }
                    input id="a-groups" name="groups" autocomplete="off";
                    div class="buttons" { button type="submit" { "Add agent" } }
                }
            }
        }
    };
    frame("Admin", Section::Admin, Some(viewer), body).into_response()
}

async fn health(state: &Shared) -> Markup {
    let mut items: Vec<countersign_identity::Health> = Vec::new();
    let store = state.app.ping().await;
    items.push(countersign_identity::Health {
        name: "store".to_owned(),
        target: state.options.store_target.clone(),
        ok: store.is_ok(),
        detail: match store {
            Ok(()) => "reachable".to_owned(),
            Err(_) => "unavailable".to_owned(),
        },
    });
    let policy = state.app.policy();
    items.push(countersign_identity::Health {
        name: "policy set".to_owned(),
        target: state.app.config().policies_dir.display().to_string(),
        ok: true,
        detail: format!("{} policies, {}", policy.engine.policy_count(), policy.engine.hash()),
    });
    items.extend(state.identity.health().await);
    for integration in &state.options.integrations {
        items.push(integration.health().await);
    }
    if state.identity.oidc.is_none() {
        items.push(countersign_identity::Health {
            name: "OpenID Connect provider".to_owned(),
            target: "—".to_owned(),
            ok: true,
            detail: "not configured: people sign in with personal tokens".to_owned(),
        });
    }
    html! {
        table class="health" {
            caption class="visually-hidden" { "Integration health" }
            (column_heads(&["Integration", "Target", "State", "Detail"]))
            tbody {
                @for h in &items {
                    @let (class, word) = if h.ok { ("badge health-ok", "OK") } else { ("badge health-bad", "Failing") };
                    tr {
                        td data-label="Integration" { (h.name) }
                        td data-label="Target" { code class="wrap" { (h.target) } }
                        td data-label="State" { span class=(class) { (word) } }
                        td data-label="Detail" { (h.detail) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct IdentityForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    groups: String,
}

fn parse_groups(text: &str) -> Result<Vec<String>, String> {
    let groups: Vec<String> = text.split(',').map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect();
    match groups.iter().find(|g| !valid_name(g)) {
        Some(bad) => Err(format!("`{bad}` is not a group name")),
        None => Ok(groups),
    }
}

/// The credential, shown once, with a copy button.
fn shown_once(kind: &str, name: &str, token: &str) -> Markup {
    let what = if kind == "User" { "personal token" } else { "API key" };
    html! {
        div class="notice notice-ok" role="status" {
            p { (kind) " " strong { (name) } " created. Its " (what) " is shown only now:" }
            p {
                code class="wrap secret" id="new-token" { (token) }
                " "
                button type="button" class="small" data-copy="new-token" { "Copy" }
            }
        }
    }
}

pub async fn add_user(State(state): State<Shared>, viewer: Viewer, Form(form): Form<IdentityForm>) -> Response {
    if !viewer.principal.is_admin() {
        return forbidden(&viewer);
    }
    let result = add_user_inner(&state, &viewer, &form).await;
    render(&state, &viewer, result.unwrap_or_else(|e| notice(Notice::Error, &e))).await
}

async fn add_user_inner(state: &Shared, viewer: &Viewer, form: &IdentityForm) -> Result<Markup, String> {
    if !viewer.csrf_ok(&form._csrf) {
        return Err("The form expired. Reload the page and try again.".to_owned());
    }
    let name = form.name.trim();
    let email = form.email.trim();
    if !valid_name(name) {
        return Err(format!("`{name}` is not a valid name (letters, digits, `.`, `_`, `@`, `-`)"));
    }
    if !valid_email(email) {
        return Err(format!("`{email}` is not an email address"));
    }
    let groups = parse_groups(&form.groups)?;
    let (token, token_hash) = new_token(PrincipalKind::User);
    let created = UserCreated {
        name: name.to_owned(),
        email: email.to_owned(),
        groups: groups.clone(),
        source: None,
        subject: None,
    };
    let event = AuditDraft::new(viewer.principal.reference().to_string(), Event::UserCreated(created));
    let user =
        NewUser { name: name.to_owned(), email: email.to_owned(), groups, token_hash, created_at: Timestamp::now() };
    state.app.directory().create_user(user, vec![event]).await.map_err(store_message)?;
    Ok(shown_once("User", name, &token))
}

pub async fn add_agent(State(state): State<Shared>, viewer: Viewer, Form(form): Form<IdentityForm>) -> Response {
    if !viewer.principal.is_admin() {
        return forbidden(&viewer);
    }
    let result = add_agent_inner(&state, &viewer, &form).await;
    render(&state, &viewer, result.unwrap_or_else(|e| notice(Notice::Error, &e))).await
}

async fn add_agent_inner(state: &Shared, viewer: &Viewer, form: &IdentityForm) -> Result<Markup, String> {
    if !viewer.csrf_ok(&form._csrf) {
        return Err("The form expired. Reload the page and try again.".to_owned());
    }
    let name = form.name.trim();
    if !valid_name(name) {
        return Err(format!("`{name}` is not a valid name (letters, digits, `.`, `_`, `@`, `-`)"));
    }
    let owner = Some(form.owner.trim().to_owned()).filter(|o| !o.is_empty());
    if let Some(owner) = &owner {
        match state.app.directory().user(owner).await.map_err(store_message)? {
            Some(u) if u.revoked_at.is_none() => {}
            Some(_) => return Err(format!("owner `{owner}` is revoked")),
            None => return Err(format!("owner `{owner}` is not a user")),
        }
    }
    let groups = parse_groups(&form.groups)?;
    let (token, token_hash) = new_token(PrincipalKind::Agent);
    let created = AgentCreated { name: name.to_owned(), owner: owner.clone(), groups: groups.clone() };
    let event = AuditDraft::new(viewer.principal.reference().to_string(), Event::AgentCreated(created));
    let agent = NewAgent { name: name.to_owned(), owner, groups, token_hash, created_at: Timestamp::now() };
    state.app.directory().create_agent(agent, vec![event]).await.map_err(store_message)?;
    Ok(shown_once("Agent", name, &token))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

pub async fn revoke(State(state): State<Shared>, viewer: Viewer, Form(form): Form<RevokeForm>) -> Response {
    if !viewer.principal.is_admin() {
        return forbidden(&viewer);
    }
    let message = if viewer.csrf_ok(&form._csrf) {
        let actor = viewer.principal.reference().to_string();
        let result = match form.kind.as_str() {
            "user" => state.app.revoke_user(&form.name, &actor).await,
            "agent" => state.app.revoke_agent(&form.name, &actor).await,
            _ => Err(GatewayError::NotFound { what: "identity kind", id: form.kind.clone() }),
        };
        match result {
            // Whoever waits on the requests it changed has been told.
            Ok(revoked) => notice(
                Notice::Ok,
                &format!("Revoked {} `{}` and {} open request(s).", form.kind, form.name, revoked.len()),
            ),
            Err(e) => notice(Notice::Error, &gateway_message(e)),
        }
    } else {
        notice(Notice::Error, "The form expired. Reload the page and try again.")
    };
    render(&state, &viewer, message).await
}

fn gateway_message(e: GatewayError) -> String {
    match crate::failure::failure(&e) {
        crate::failure::Failure::NotFound | crate::failure::Failure::Refused => e.to_string(),
        crate::failure::Failure::Broken => {
            tracing::error!(error = %e, detail = ?e.detail(), "admin action failed");
            "The store is unavailable; nothing was changed.".to_owned()
        }
    }
}

fn store_message(e: StoreError) -> String {
    match e {
        StoreError::NotFound { .. } | StoreError::AlreadyExists { .. } => e.to_string(),
        StoreError::Unavailable(_) | StoreError::Corrupt(_) | StoreError::Internal(_) => {
            tracing::error!(error = %e, "admin action failed");
            "The store is unavailable; nothing was changed.".to_owned()
        }
    }
}
