//! `/v1/actions`: submit, read (optionally waiting for a decision), list,
//! and every move on a request.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use countersign_core::{Status, VoteKind};
use countersign_store::{Cursor, RequestFilter};
use serde::Deserialize;
use utoipa::IntoParams;

use super::json::{ApiJson, ApiQuery};
use super::middleware::Caller;
use super::views::{ActionBody, ActionList, ActionView, CommentBody, ErrorBody, OutcomeBody, SubmitResponse};
use crate::config::ServerConfig;
use crate::error::ApiError;
use countersign_gateway::reuse::Reuse;
use countersign_gateway::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubmitQuery {
    /// `open`: when the caller already has an open request (`pending`, or
    /// `approved` and not yet released) for this exact action (same
    /// fingerprint) and the policy in force would hold it for approval,
    /// answer `200` with that request (`"reused": true`) instead of
    /// creating one. Only the caller's own requests are reused.
    pub reuse: Option<String>,
}

/// Submit an action for a decision.
#[utoipa::path(post, path = "/v1/actions", params(SubmitQuery), request_body = ActionBody, tag = "actions",
    responses((status = 201, body = SubmitResponse), (status = 200, description = "`?reuse=open`: the caller's open request for the same action", body = SubmitResponse),
               (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
               (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiQuery(query): ApiQuery<SubmitQuery>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<(StatusCode, Json<SubmitResponse>), ApiError> {
    let reuse = match query.reuse.as_deref() {
        None => Reuse::Never,
        Some("open") => Reuse::Open,
        Some(_) => return Err(ApiError::bad_request("invalid_reuse", "`reuse` may only be `open`")),
    };
    let submission = state.submit_claimed_reusing(&caller, body.into(), reuse).await?;
    let status = if submission.reused { StatusCode::OK } else { StatusCode::CREATED };
    let mut answer = SubmitResponse::from(&submission.request);
    answer.reused = submission.reused;
    Ok((status, Json(answer)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// Hold the answer up to this many seconds (≤ 60) while the request is pending.
    pub wait: Option<u64>,
}

/// Read a request; with `?wait=N`, wait until it leaves `pending`.
#[utoipa::path(get, path = "/v1/actions/{id}", params(("id" = String, Path), GetQuery), tag = "actions",
    responses((status = 200, body = ActionView), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(server): Extension<Arc<ServerConfig>>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<GetQuery>,
) -> Result<Json<ActionView>, ApiError> {
    let wait = Duration::from_secs(query.wait.unwrap_or(0));
    if wait > server.max_wait {
        return Err(ApiError::bad_request(
            "invalid_wait",
            format!("`wait` may be at most {} seconds", server.max_wait.as_secs()),
        ));
    }
    let request = state.wait_while_pending(&caller, &id, wait).await?;
    Ok(Json(ActionView::from(&state.as_read_by(&caller, request).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub resource: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Where to continue: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List the requests the caller may see; for approvers, the ones they can decide.
/// Paged: follow `next_cursor` while it is present.
#[utoipa::path(get, path = "/v1/actions", params(ListQuery), tag = "actions",
    responses((status = 200, body = ActionList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ActionList>, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(
            Status::parse(text)
                .ok_or_else(|| ApiError::bad_request("invalid_status", format!("unknown status `{text}`")))?,
        ),
    };
    let after = match query.cursor.as_deref() {
        None => None,
        Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "`cursor` must be a `next_cursor` this gateway gave")
        })?),
    };
    let filter = RequestFilter {
        status,
        principal: None,
        kind: query.kind,
        resource: query.resource,
        visible_to: None,
        after,
        limit: query.limit.unwrap_or(100).min(1000),
    };
    let page = state.visible_page(&caller, &filter).await?;
    let mut actions = Vec::with_capacity(page.requests.len());
    for request in page.requests {
        actions.push(ActionView::from(&state.as_read_by(&caller, request).await?));
    }
    Ok(Json(ActionList { actions, next_cursor: page.next.as_ref().map(Cursor::encode) }))
}

/// Approve (humans in an approver group, never the requester's side).
#[utoipa::path(post, path = "/v1/actions/{id}/approve", params(("id" = String, Path)), request_body = CommentBody,
    tag = "review", responses((status = 200, body = ActionView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<Json<ActionView>, ApiError> {
    let request = state.vote(&caller, &id, VoteKind::Approve, body.comment).await?;
    Ok(Json(ActionView::from(&state.as_read_by(&caller, request).await?)))
}

/// Deny; any eligible denial ends the request.
#[utoipa::path(post, path = "/v1/actions/{id}/deny", params(("id" = String, Path)), request_body = CommentBody,
    tag = "review", responses((status = 200, body = ActionView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn deny(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<Json<ActionView>, ApiError> {
    let request = state.vote(&caller, &id, VoteKind::Deny, body.comment).await?;
    Ok(Json(ActionView::from(&state.as_read_by(&caller, request).await?)))
}

/// Comment on a request.
#[utoipa::path(post, path = "/v1/actions/{id}/comments", params(("id" = String, Path)), request_body = CommentBody,
    tag = "review", responses((status = 200, body = ActionView), (status = 400, body = ErrorBody)))]
pub async fn comment(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<Json<ActionView>, ApiError> {
    let request = state.comment(&caller, &id, body.comment.unwrap_or_default()).await?;
    Ok(Json(ActionView::from(&state.as_read_by(&caller, request).await?)))
}

/// Cancel (the requester).
#[utoipa::path(post, path = "/v1/actions/{id}/cancel", params(("id" = String, Path)), tag = "requester",
    responses((status = 200, body = ActionView), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ActionView>, ApiError> {
    let request = state.cancel(&caller, &id).await?;
    Ok(Json(ActionView::from(&state.as_read_by(&caller, request).await?)))
}

/// Take an approval (the requester; single-use, within `valid_for`).
#[utoipa::path(post, path = "/v1/actions/{id}/release", params(("id" = String, Path)), tag = "requester",
    responses((status = 200, body = ActionView), (status = 409, body = ErrorBody)))]
pub async fn release(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ActionView>, ApiError> {
    let request = state.release(&caller, &id).await?;
    Ok(Json(ActionView::from(&state.as_read_by(&caller, request).await?)))
}

/// Report how the action went (the requester; once, for allowed or released requests).
#[utoipa::path(post, path = "/v1/actions/{id}/outcome", params(("id" = String, Path)), request_body = OutcomeBody,
    tag = "requester", responses((status = 200, body = ActionView), (status = 409, body = ErrorBody)))]
pub async fn outcome(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OutcomeBody>,
) -> Result<Json<ActionView>, ApiError> {
    let outcome = body.into_outcome(state.now())?;
    let request = state.report_outcome(&caller, &id, outcome).await?;
    Ok(Json(ActionView::from(&state.as_read_by(&caller, request).await?)))
}
