//! Signing in and out.
//!
//! - `GET /console/login`: the login page (identity provider button; a
//!   personal-token form where local tokens are allowed for people).
//! - `GET /console/login/start`: starts the authorization-code flow with
//!   PKCE, `state` and `nonce`; `?step_up=1` asks for a fresh login
//!   (`max_age`). What must come back is stored server-side under a random
//!   id held in a short-lived cookie.
//! - `GET /console/callback`: checks `state`, redeems the code, verifies
//!   the ID token (nonce, audience, expiry, `auth_time`), creates or
//!   updates the user, and starts a new session (a new id, so a session
//!   id planted before login is worthless).
//! - `POST /console/logout`: ends the session and, where the provider
//!   supports it, its session too (RP-initiated logout).

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use countersign_core::text::prefix_within;
use countersign_core::{PrincipalKind, Timestamp};
use countersign_gateway::directory::MatchError;
use countersign_gateway::identify::{Authenticator, LocalTokens};
use countersign_identity::accounts::AccountError;
use countersign_identity::PendingLogin;
use maud::html;
use serde::Deserialize;

use crate::html::url_part;
use crate::layout::{csrf_field, notice, page as frame, Notice, Section};
use crate::session::{self, cookie, key_of, Method, Record, Viewer, LOGINS};
use crate::Shared;

/// `/` and `/console` lead to the console.
pub async fn root() -> Redirect {
    Redirect::to("/console/")
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    step_up: Option<String>,
    logged_out: Option<String>,
    error: Option<String>,
}

/// The longest `return_to` kept; longer ones are not places to return to.
pub const RETURN_TO_MAX: usize = 2048;

/// Where a login goes back to: `return_to` when it is a path inside this
/// console, else `/console/`. Anything else would make the login an open
/// redirect (`//evil.example`, `/\evil`, a tab or newline a browser drops
/// from `/\t/evil`) or a broken `Location` header (control characters,
/// non-ASCII text). Decided before a login creates anything.
pub fn safe_return(return_to: Option<&str>) -> String {
    match return_to {
        Some(path) if returnable(path) => path.to_owned(),
        Some(_) | None => "/console/".to_owned(),
    }
}

/// A path (and query) inside the console, in printable ASCII (so it is a
/// valid header value as is), bounded, with no dot segment in any spelling
/// a browser would resolve (`..`, `%2e%2e`), no empty segment (`//`), and
/// no backslash or encoded slash a server might read as a separator.
fn returnable(path: &str) -> bool {
    if path.len() > RETURN_TO_MAX || !path.bytes().all(|b| b.is_ascii_graphic()) || path.contains('\\') {
        return false;
    }
    let route = path.split(['?', '#']).next().unwrap_or_default();
    if route != "/console" && !route.starts_with("/console/") {
        return false;
    }
    let lower = route.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%00") {
        return false;
    }
    let dotted = lower.replace("%2e", ".");
    // Segments after the leading `/`: none empty except a trailing one, none `.` or `..`.
    let segments: Vec<&str> = dotted.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    segments.iter().enumerate().all(|(i, s)| (!s.is_empty() || i == last) && *s != "." && *s != "..")
}

/// A `303 See Other` to `location`, or to the console's front page when
/// `location` cannot be a header value: it never fails, whatever it is given.
pub fn see_other(location: &str) -> Response {
    let printable = location.bytes().all(|b| b.is_ascii_graphic());
    let value = HeaderValue::from_str(location)
        .ok()
        .filter(|_| printable)
        .unwrap_or_else(|| HeaderValue::from_static("/console/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response()
}

pub async fn page(State(state): State<Shared>, headers: HeaderMap, Query(query): Query<LoginQuery>) -> Response {
    let return_to = safe_return(query.return_to.as_deref());
    // A pre-session CSRF token, double-submitted as cookie and field.
    let mut response_cookie = None;
    let pre = state.identity.local_tokens_for_humans.then(|| match cookie(&headers, PRE_COOKIE) {
        Some(value) if value.len() == 43 => value.to_owned(),
        Some(_) | None => {
            let fresh = session::new_csrf();
            response_cookie = Some(state.cookies.set(PRE_COOKIE, &fresh, 900));
            fresh
        }
    });
    let oidc = state.identity.oidc.is_some();
    let start = format!(
        "/console/login/start?return_to={}{}",
        url_part(&return_to),
        if query.step_up.is_some() { "&step_up=1" } else { "" }
    );
    let body = html! {
        section class="login card" {
            h1 { "Sign in to countersign" }
            @if query.logged_out.is_some() { (notice(Notice::Ok, "You are logged out.")) }
            @if let Some(error) = &query.error { (notice(Notice::Error, login_error_text(error))) }
            @if oidc {
                p { a class="button primary" href=(start) { "Log in with your organisation" } }
            }
            @if let Some(pre) = &pre {
                @if oidc { p class="or" { "or" } }
                form method="post" action="/console/login/token" class="stack" {
                    (csrf_field(pre))
                    input type="hidden" name="return_to" value=(return_to);
                    label for="token" { "Personal token" }
                    input id="token" name="token" type="password" autocomplete="off" required
                        aria-describedby="token-help" spellcheck="false";
                    p id="token-help" class="help" {
                        "The " code { "csu_…" } " token printed by " code { "countersign users add" } "."
                    }
                    button type="submit" { "Sign in with token" }
                }
            }
            @if !oidc && pre.is_none() { (notice(Notice::Error, "No way to sign in is configured.")) }
        }
    };
    let mut response = frame("Sign in", Section::None, None, body).into_response();
    if let Some(cookie) = response_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The pre-session CSRF cookie of the token form (double submit: the
/// form's field must equal it, which a cross-site page cannot arrange).
const PRE_COOKIE: &str = "cs_pre";

fn login_error_text(code: &str) -> &'static str {
    match code {
        "state" => "That login attempt expired or was not started here. Please log in again.",
        "provider" => "The identity provider cannot be reached right now. Try again shortly.",
        "refused" => "The identity provider did not complete the login.",
        "revoked" => "Your countersign account was revoked. Ask an administrator.",
        "not_allowed" => "You are not in a group that may use countersign.",
        "unverified" => {
            "The identity provider did not say your email address is verified. countersign knows people by \
             verified email address; ask your administrator to have the provider verify it."
        }
        "bound" => {
            "The countersign user with your email address belongs to another account at the identity \
             provider. Ask an administrator."
        }
        "token" => "That token is unknown, revoked, or not a person's token.",
        "csrf" => "The form expired. Please try again.",
        _ => "The login did not complete. Please try again.",
    }
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    return_to: Option<String>,
    step_up: Option<String>,
}

pub async fn start(State(state): State<Shared>, Query(query): Query<StartQuery>) -> Response {
    let Some(oidc) = &state.identity.oidc else {
        return Redirect::to("/console/login").into_response();
    };
    let return_to = safe_return(query.return_to.as_deref());
    let (url, pending) = match oidc.begin(&return_to, query.step_up.is_some()).await {
        Ok(started) => started,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a login");
            return Redirect::to("/console/login?error=provider").into_response();
        }
    };
    let id = countersign_identity::oidc::random_token();
    let value = match serde_json::to_string(&pending) {
        Ok(v) => v,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    // Expires with its cookie; the gateway's purge deletes abandoned logins.
    let expires_at = Timestamp::now().plus(LOGIN_TTL);
    let stored =
        state.app.key_values(LOGINS).compare_and_set_expiring(&key_of(&id), None, Some(value), Some(expires_at)).await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "cannot store a login under way");
        return (StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable; try again shortly").into_response();
    }
    let mut response = Redirect::to(&url).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, state.cookies.set(state.cookies.login_name(), &id, LOGIN_TTL.as_secs()));
    response
}

/// How long a login may take at the identity provider.
const LOGIN_TTL: std::time::Duration = std::time::Duration::from_secs(900);

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

pub async fn callback(State(state): State<Shared>, headers: HeaderMap, Query(query): Query<CallbackQuery>) -> Response {
    let fail = |code: &str| {
        let mut response = Redirect::to(&format!("/console/login?error={code}")).into_response();
        response.headers_mut().append(header::SET_COOKIE, state.cookies.set(state.cookies.login_name(), "", 0));
        response
    };
    let Some(oidc) = &state.identity.oidc else {
        return fail("provider");
    };
    let Some(id) = cookie(&headers, state.cookies.login_name()) else {
        return fail("state");
    };
    let key = key_of(id);
    // Single use: the pending login is taken out before the code is redeemed.
    let pending = match state.app.key_values(LOGINS).get(&key).await {
        Ok(Some(text)) => match state.app.key_values(LOGINS).compare_and_set(&key, Some(text.clone()), None).await {
            Ok(true) => serde_json::from_str::<PendingLogin>(&text).ok(),
            Ok(false) | Err(_) => None,
        },
        Ok(None) | Err(_) => None,
    };
    let Some(pending) = pending else {
        return fail("state");
    };
    if let Some(error) = &query.error {
        tracing::info!(error = %prefix_within(error, 64, |_| 1), "the identity provider returned an error");
        return fail("refused");
    }
    let (Some(returned_state), Some(code)) = (query.state.as_deref(), query.code.as_deref()) else {
        return fail("state");
    };
    let login = match oidc.finish(&pending, returned_state, code).await {
        Ok(login) => login,
        Err(e) => {
            tracing::info!(error = %e, "a login failed");
            let code = match e {
                countersign_identity::LoginError::State => "state",
                countersign_identity::LoginError::Provider(_) => "provider",
                countersign_identity::LoginError::Claims(countersign_identity::claims::ClaimsError::NotAllowed) => {
                    "not_allowed"
                }
                countersign_identity::LoginError::Refused(_)
                | countersign_identity::LoginError::Token(_)
                | countersign_identity::LoginError::Claims(_) => "refused",
            };
            return fail(code);
        }
    };
    let principal = match state.identity.accounts.login(&login.user).await {
        Ok(principal) => principal,
        Err(AccountError::Revoked(_)) => return fail("revoked"),
        Err(AccountError::Match(MatchError::Unverified(_))) => return fail("unverified"),
        Err(AccountError::Match(MatchError::BoundToAnother { .. })) => return fail("bound"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a login");
            return fail("refused");
        }
    };
    let now = Timestamp::now();
    let record = Record {
        principal,
        display_name: login.user.display_name.clone(),
        method: Method::Oidc,
        auth_time: login.auth_time,
        id_token: Some(login.id_token),
        csrf: session::new_csrf(),
        created_at: now,
        expires_at: now.plus(state.identity.config.console.session_ttl),
    };
    finish_session(&state, &headers, record, &pending.return_to, "oidc").await
}

/// Starts the new session (ending any old one in this browser) and goes on.
async fn finish_session(state: &Shared, headers: &HeaderMap, record: Record, return_to: &str, via: &str) -> Response {
    if let Some(old) = cookie(headers, state.cookies.session_name()) {
        let _ = session::remove(state, session::SESSIONS, &key_of(old)).await;
    }
    let login = countersign_core::events::ConsoleLogin {
        method: via.to_owned(),
        groups: record.principal.groups.clone(),
        auth_time: record.auth_time,
    };
    let event = countersign_audit::AuditDraft::new(
        record.principal.reference().to_string(),
        countersign_core::events::Event::ConsoleLogin(login),
    );
    let ttl = state.identity.config.console.session_ttl.as_secs();
    let id = match session::create(state, &record).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "cannot store a session");
            return (StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable; try again shortly").into_response();
        }
    };
    if let Err(e) = state.app.audit(vec![event]).await {
        tracing::error!(error = %e, "cannot audit a login");
    }
    let mut response = see_other(&safe_return(Some(return_to)));
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, state.cookies.set(state.cookies.session_name(), &id, ttl));
    headers.append(header::SET_COOKIE, state.cookies.set(state.cookies.login_name(), "", 0));
    response
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    token: String,
    return_to: Option<String>,
}

/// Signs in with a personal token, where people may still use them.
pub async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    source: Option<axum::Extension<countersign_gateway::refusals::Source>>,
    Form(form): Form<TokenForm>,
) -> Response {
    if !state.identity.local_tokens_for_humans {
        return Redirect::to("/console/login").into_response();
    }
    // Decided before anything is created: an unusable place falls back.
    let return_to = safe_return(form.return_to.as_deref());
    let source = countersign_server::source::stamped(source);
    // Token guessing through the form is limited like the API's.
    if let Err(limited) = state.app.admit(source) {
        let code = limited.code();
        let record = countersign_audit::RefusalRecord::new(countersign_audit::RefusalKind::AttemptRefused, "anonymous")
            .code("attempt", "console_login")
            .code("code", code);
        state.app.refuse(source, None, code, false, || record).await;
        return crate::failure::respond(limited);
    }
    let expected = cookie(&headers, PRE_COOKIE).unwrap_or("");
    let matches =
        !expected.is_empty() && subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), form._csrf.as_bytes()).into();
    if !matches {
        return Redirect::to("/console/login?error=csrf").into_response();
    }
    let principal = match LocalTokens::of(state.app.directory()).authenticate(form.token.trim()).await {
        Ok(p) if p.kind == PrincipalKind::User => p,
        Ok(_) | Err(_) => {
            let record =
                countersign_audit::RefusalRecord::new(countersign_audit::RefusalKind::AttemptRefused, "anonymous")
                    .code("attempt", "console_login")
                    .code("code", "unauthenticated");
            state.app.refuse(source, None, "unauthenticated", true, || record).await;
            return Redirect::to("/console/login?error=token").into_response();
        }
    };
    let now = Timestamp::now();
    let record = Record {
        principal,
        display_name: None,
        method: Method::Token,
        auth_time: None,
        id_token: None,
        csrf: session::new_csrf(),
        created_at: now,
        expires_at: now.plus(state.identity.config.console.session_ttl),
    };
    finish_session(&state, &headers, record, &return_to, "token").await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    _csrf: String,
}

pub async fn logout(State(state): State<Shared>, viewer: Viewer, Form(form): Form<CsrfForm>) -> Response {
    if !viewer.csrf_ok(&form._csrf) {
        return (StatusCode::FORBIDDEN, "the form expired; reload the page").into_response();
    }
    if let Err(e) = session::destroy(&state, &viewer).await {
        tracing::error!(error = %e, "cannot end a session");
    }
    let event = countersign_audit::AuditDraft::new(
        viewer.principal.reference().to_string(),
        countersign_core::events::Event::ConsoleLogout(countersign_core::events::ConsoleLogout {}),
    );
    let _ = state.app.audit(vec![event]).await;
    let target = match (&state.identity.oidc, viewer.method) {
        (Some(oidc), Method::Oidc) => oidc.logout_url(viewer.id_token.as_deref()).await,
        (Some(_), Method::Token) | (None, _) => None,
    };
    let mut response = Redirect::to(target.as_deref().unwrap_or("/console/login?logged_out=1")).into_response();
    response.headers_mut().append(header::SET_COOKIE, state.cookies.set(state.cookies.session_name(), "", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_returned_to() {
        for good in [
            "/console/requests/1",
            "/console",
            "/console/",
            "/console?x=1",
            "/console/history?kind=shell.exec&from=2026-01-01",
            "/console/requests/a%20b",
            "/console/history?q=%FF%FE",
            "/console/history?q=a/../b",
        ] {
            assert_eq!(safe_return(Some(good)), good, "{good}");
        }
        let long = format!("/console/{}", "a".repeat(RETURN_TO_MAX));
        let control: Vec<String> = (0u8..0x20).chain([0x7f]).map(|b| format!("/console/x{}y", char::from(b))).collect();
        for bad in [
            "//evil.example/console",
            "https://evil.example",
            "/console\\..",
            "/other",
            "/consoleevil",
            "/console/../x",
            "/console/..",
            "/console/%2e%2e/v1/actions",
            "/console/%2E./x",
            "/console/./x",
            "/console//evil.example",
            "/console/%2f%2fevil.example",
            "/console/%5cevil",
            "/console/x%00",
            "/console/\tx",
            "/console/ x",
            "/console/é",
            "/console/\u{2028}",
            "",
            long.as_str(),
        ]
        .into_iter()
        .chain(control.iter().map(String::as_str))
        {
            assert_eq!(safe_return(Some(bad)), "/console/", "{bad:?}");
        }
        assert_eq!(safe_return(None), "/console/");
    }

    #[test]
    fn redirects_never_fail() {
        for location in ["/console/", "/console/x\u{1}", "/é", "\r\nSet-Cookie: a=b"] {
            let response = see_other(location);
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            assert!(response.headers()[header::LOCATION].to_str().is_ok());
        }
    }
}
