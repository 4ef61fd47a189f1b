//! Console sessions: a random id in a cookie, the session itself in the
//! store's key-value area (so it survives restarts and is shared by
//! replicas), keyed by the SHA-256 of the id so a copy of the store holds
//! no usable cookie. Each entry expires with its session, so the
//! gateway's purge of expired key-value entries deletes what nobody
//! signed out of; logout deletes it at once.
//!
//! A session names a user; every request reads that user's row, so a
//! revocation ends the session and the groups in force are those of the
//! person's latest login (or what an admin set), not those of the login
//! that started this session.
//!
//! Cookies are `HttpOnly`, `SameSite=Lax` (the identity provider's redirect
//! back must carry the login cookie) and `Secure` with the `__Host-` prefix
//! unless `[console] secure_cookies = false`. Every state-changing form
//! carries the session's CSRF token, and every POST must come from this
//! origin (`Origin`, when the browser sends it).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use countersign_core::{Principal, Timestamp};
use countersign_gateway::identify::AuthContext;
use countersign_identity::oidc::random_token;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::html::url_part;
use crate::Shared;

/// Key-value namespace of sessions.
pub const SESSIONS: &str = "console.sessions";
/// Key-value namespace of logins under way.
pub const LOGINS: &str = "console.logins";

/// How the person signed in to the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Through the identity provider.
    Oidc,
    /// With a personal token pasted into the login form.
    Token,
}

/// A stored session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub principal: Principal,
    #[serde(default)]
    pub display_name: Option<String>,
    pub method: Method,
    /// When the identity provider last authenticated the person.
    #[serde(default)]
    pub auth_time: Option<Timestamp>,
    /// For RP-initiated logout.
    #[serde(default)]
    pub id_token: Option<String>,
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The signed-in person on this request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub principal: Principal,
    pub display_name: Option<String>,
    pub csrf: String,
    pub method: Method,
    pub auth_time: Option<Timestamp>,
    pub id_token: Option<String>,
    key: String,
}

impl Viewer {
    /// How the viewer proved who they are, for the step-up rule.
    pub fn auth_context(&self) -> AuthContext {
        match (self.method, self.auth_time) {
            (Method::Oidc, Some(auth_time)) => AuthContext::WebSession { auth_time },
            (Method::Oidc, None) | (Method::Token, _) => AuthContext::Credential,
        }
    }

    /// Whether `token` is this session's CSRF token.
    pub fn csrf_ok(&self, token: &str) -> bool {
        !token.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// Cookie names and attributes.
#[derive(Debug, Clone)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    pub fn new(secure: bool) -> Self {
        Self { secure }
    }

    pub fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-cs_session"
        } else {
            "cs_session"
        }
    }

    pub fn login_name(&self) -> &'static str {
        if self.secure {
            "__Host-cs_login"
        } else {
            "cs_login"
        }
    }

    /// A `Set-Cookie` value; `max_age` 0 deletes it.
    pub fn set(&self, name: &str, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

/// A cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The store key of a cookie value.
pub fn key_of(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Creates a session; returns the cookie value.
pub async fn create(state: &Shared, record: &Record) -> Result<String, countersign_store::StoreError> {
    let id = random_token();
    let value = serde_json::to_string(record).map_err(|e| countersign_store::StoreError::Internal(e.to_string()))?;
    state
        .app
        .key_values(SESSIONS)
        .compare_and_set_expiring(&key_of(&id), None, Some(value), Some(record.expires_at))
        .await?;
    Ok(id)
}

/// Ends the viewer's session.
pub async fn destroy(state: &Shared, viewer: &Viewer) -> Result<(), countersign_store::StoreError> {
    remove(state, SESSIONS, &viewer.key).await
}

/// Deletes a key-value entry whatever its value.
pub async fn remove(state: &Shared, namespace: &str, key: &str) -> Result<(), countersign_store::StoreError> {
    for _ in 0..3 {
        let current = state.app.key_values(namespace).get(key).await?;
        if current.is_none() || state.app.key_values(namespace).compare_and_set(key, current, None).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Why there is no viewer.
#[derive(Debug)]
pub enum NoViewer {
    /// Not signed in (or the session ended): go to the login page.
    Login { return_to: String, api: bool },
    /// The session store failed.
    Unavailable,
}

impl IntoResponse for NoViewer {
    fn into_response(self) -> Response {
        match self {
            Self::Login { api: true, .. } => (StatusCode::UNAUTHORIZED, "sign in again").into_response(),
            Self::Login { return_to, api: false } => {
                Redirect::to(&format!("/console/login?return_to={}", url_part(&return_to))).into_response()
            }
            Self::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable; try again shortly").into_response()
            }
        }
    }
}

impl FromRequestParts<Shared> for Viewer {
    type Rejection = NoViewer;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path();
        let api = path.starts_with("/console/events") || path.starts_with("/console/fragments");
        let return_to = if parts.method == axum::http::Method::GET && !api {
            parts.uri.path_and_query().map_or("/console/", |p| p.as_str()).to_owned()
        } else {
            "/console/".to_owned()
        };
        let login = || NoViewer::Login { return_to: return_to.clone(), api };
        let id = cookie(&parts.headers, state.cookies.session_name()).ok_or_else(login)?;
        let key = key_of(id);
        let text = state.app.key_values(SESSIONS).get(&key).await.map_err(|e| {
            tracing::error!(error = %e, "cannot read a console session");
            NoViewer::Unavailable
        })?;
        let record: Record = text.and_then(|t| serde_json::from_str(&t).ok()).ok_or_else(login)?;
        if record.expires_at <= Timestamp::now() {
            let _ = remove(state, SESSIONS, &key).await;
            return Err(login());
        }
        // A revocation ends every session of the user at the next request.
        let user = match state.app.directory().user(&record.principal.name).await {
            Ok(user) => user.filter(|u| u.revoked_at.is_none()),
            Err(e) => {
                tracing::error!(error = %e, "cannot check a console user");
                return Err(NoViewer::Unavailable);
            }
        };
        let Some(user) = user else {
            let _ = remove(state, SESSIONS, &key).await;
            return Err(login());
        };
        Ok(Viewer {
            // The row's email and groups, as the latest login left them.
            principal: user.principal(),
            display_name: user.display_name.clone().or(record.display_name),
            csrf: record.csrf,
            method: record.method,
            auth_time: record.auth_time,
            id_token: record.id_token,
            key,
        })
    }
}

/// Refuses a cross-origin POST: the browser's `Origin` must name the host
/// the request was sent to. (Browsers send `Origin` on every POST; its
/// absence means a non-browser client, which has no ambient cookies to
/// abuse, and the CSRF token still applies.)
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

/// A fresh CSRF token.
pub fn new_csrf() -> String {
    random_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_parsed_and_set_safely() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; __Host-cs_session=abc; b=2"));
        assert_eq!(cookie(&headers, "__Host-cs_session"), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        let set = Cookies::new(true).set("__Host-cs_session", "v", 60);
        let text = set.to_str().unwrap();
        for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!Cookies::new(false).set("cs_session", "v", 60).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn cross_origin_posts_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8470"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8470"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers));
    }
}
