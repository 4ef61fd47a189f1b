//! Endpoints for admins and auditors: the audit log, the policy set, and
//! who the caller is.

use axum::extract::State;
use axum::{Extension, Json};
use countersign_core::Principal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::json::ApiQuery;
use super::middleware::Caller;
use super::views::ErrorBody;
use crate::error::ApiError;
use countersign_gateway::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events with a sequence number above this one (default 0).
    pub after: Option<u64>,
    /// At most this many (default 1000, at most 10000).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// Pass as `after` for the next page.
    pub next_after: u64,
}

/// Read the audit log (auditors and admins).
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery), tag = "audit",
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    if !caller.is_auditor() {
        return Err(ApiError::forbidden("forbidden", "reading the audit log needs the `auditor` or `admin` group"));
    }
    let after = query.after.unwrap_or(0);
    let events = state.audit_events(after, query.limit.unwrap_or(1000).clamp(1, 10_000)).await?;
    let next_after = events.last().map_or(after, |e| e.seq);
    Ok(Json(AuditPage { events: events.iter().map(|e| e.to_json()).collect(), next_after }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyInfo {
    pub hash: String,
    pub policies: usize,
    pub files: Vec<String>,
    pub loaded_at: String,
}

/// The policy set in force (admins and auditors).
#[utoipa::path(get, path = "/v1/policies", tag = "policies",
    responses((status = 200, body = PolicyInfo), (status = 403, body = ErrorBody)))]
pub async fn policies(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Result<Json<PolicyInfo>, ApiError> {
    if !caller.is_auditor() {
        return Err(ApiError::forbidden("forbidden", "reading the policy set needs the `auditor` or `admin` group"));
    }
    Ok(Json(policy_info(&state)))
}

/// Reload the policy directory (admins). A set that fails to load is
/// refused with every problem as `file:line:col: message`, and the previous
/// set stays in force.
#[utoipa::path(post, path = "/v1/policies/reload", tag = "policies",
    responses((status = 200, body = PolicyInfo), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reload(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Result<Json<PolicyInfo>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden("forbidden", "reloading policies needs the `admin` group"));
    }
    state.reload_policies(&caller.reference().to_string()).await?;
    Ok(Json(policy_info(&state)))
}

fn policy_info(state: &AppState) -> PolicyInfo {
    let policy = state.policy();
    PolicyInfo {
        hash: policy.engine.hash().to_owned(),
        policies: policy.engine.policy_count(),
        files: policy.engine.files(),
        loaded_at: policy.loaded_at.to_rfc3339(),
    }
}

/// Who the caller is.
#[utoipa::path(get, path = "/v1/whoami", tag = "identity", responses((status = 200, body = Object)))]
pub async fn whoami(Extension(Caller(caller)): Extension<Caller>) -> Json<Principal> {
    Json(caller)
}
