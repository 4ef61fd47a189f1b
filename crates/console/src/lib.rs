//! The web console, served by the gateway itself under `/console`:
//! server-rendered HTML (compile-time checked `maud` templates that escape
//! every value) with a little vanilla JavaScript and CSS compiled
//! into the binary, so there is no separate server and no build step.
//!
//! - [`login`]: single sign-on with the identity provider (and, where
//!   allowed, a personal token), step-up logins, logout;
//! - [`queue`]: the pending queue, kept live over server-sent events
//!   ([`live`]: what each event stream makes of the gateway's change feed);
//! - [`request`]: one request's review card, votes and comments;
//! - [`history`], [`audit`], [`policies`], [`admin`]: the other pages
//!   ([`simulate`]: the policies page's simulation against the log);
//! - [`session`]: cookies, sessions, CSRF; [`security`]: response headers;
//!
//! Every rule of the approval loop is enforced by the gateway
//! ([`countersign_gateway::AppState`]); the console only explains it (a
//! disabled button says why) and never decides on its own.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admin;
mod assets;
pub mod audit;
mod evidence;
pub mod failure;
pub mod groups_hint;
pub mod history;
pub mod html;
pub mod layout;
pub mod live;
pub mod login;
pub mod policies;
pub mod queue;
pub mod request;
pub mod security;
pub mod session;
pub mod simulate;
mod view;

use std::sync::Arc;

use async_trait::async_trait;
use axum::routing::{get, post};
use axum::Router;
use countersign_gateway::AppState;
use countersign_identity::Identity;

/// Something whose health the admin page shows (a chat channel, a
/// webhook, …). Integrations in other crates hand one in through
/// [`Options::integrations`].
#[async_trait]
pub trait IntegrationHealth: Send + Sync + std::fmt::Debug {
    /// A short name, the thing it talks to, whether it works, and details.
    async fn health(&self) -> countersign_identity::Health;
}

/// What the console needs besides the gateway and the identity services
/// (whose config holds the `[console]` section).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub integrations: Vec<Arc<dyn IntegrationHealth>>,
    /// The patterns that hide secrets on review cards (`[channels]
    /// redact`: the console shows the cards the chat channels show).
    pub redact: Vec<String>,
    /// Where the store is, as the admin page names it.
    pub store_target: String,
}

/// The console's shared state.
#[derive(Debug)]
pub struct ConsoleState {
    pub app: AppState,
    pub identity: Identity,
    pub options: Options,
    pub cookies: session::Cookies,
    pub audit: audit::Cache,
    /// Held while a policy simulation runs: one at a time.
    pub simulation: tokio::sync::Mutex<()>,
    /// The review card, as the chat channels show it. `None` when the
    /// configured redaction patterns are invalid: payloads are then hidden
    /// rather than shown unredacted.
    pub cards: Option<countersign_cards::CardBuilder>,
    csp: axum::http::HeaderValue,
}

/// A handle on [`ConsoleState`].
pub type Shared = Arc<ConsoleState>;

/// The console's routes; merge them into the gateway's router. Empty if
/// `[console] enabled = false`.
pub fn router(app: AppState, identity: Identity, options: Options) -> Router {
    if !identity.config.console.enabled {
        return Router::new();
    }
    let idp_origin = identity.oidc.as_ref().and_then(|o| o.issuer_origin());
    let cards = match countersign_cards::Redactor::new(&options.redact) {
        Ok(redactor) => Some(
            countersign_cards::CardBuilder::new(
                app.request_reader(),
                app.config().public_url.clone(),
                Arc::new(redactor),
            )
            .with_sql_dialects(app.config().sql_dialects.clone()),
        ),
        Err(e) => {
            tracing::error!(error = %e, "the console hides request payloads until the redaction patterns are fixed");
            None
        }
    };
    let state = Arc::new(ConsoleState {
        simulation: tokio::sync::Mutex::new(()),
        cards,
        cookies: session::Cookies::new(identity.config.console.secure_cookies),
        csp: security::content_security_policy(idp_origin.as_deref()),
        audit: audit::Cache::default(),
        app,
        identity,
        options,
    });
    Router::new()
        .route("/", get(login::root))
        .route("/console", get(login::root))
        .route("/console/", get(queue::page))
        .route("/console/fragments/queue", get(queue::fragment))
        .route("/console/events", get(queue::events))
        .route("/console/login", get(login::page))
        .route("/console/login/start", get(login::start))
        .route("/console/login/token", post(login::token))
        .route("/console/callback", get(login::callback))
        .route("/console/logout", post(login::logout))
        .route("/console/requests/{id}", get(request::page))
        .route("/console/requests/{id}/approve", post(request::approve))
        .route("/console/requests/{id}/deny", post(request::deny))
        .route("/console/requests/{id}/comment", post(request::comment))
        .route("/console/history", get(history::page))
        .route("/console/history.csv", get(history::csv))
        .route("/console/audit", get(audit::page))
        .route("/console/audit/report", get(evidence::download))
        .route("/console/policies", get(policies::page))
        .route("/console/policies/test", post(policies::test))
        .route("/console/policies/reload", post(policies::reload))
        .route("/console/policies/simulate", post(policies::simulate))
        .route("/console/admin", get(admin::page))
        .route("/console/admin/users", post(admin::add_user))
        .route("/console/admin/agents", post(admin::add_agent))
        .route("/console/admin/revoke", post(admin::revoke))
        .route("/console/assets/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::headers))
        .with_state(state)
}
