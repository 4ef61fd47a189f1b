//! The JSON shapes of the API: what clients send and what they get back.
//! These are the documented contract (see `/openapi.json`); domain types
//! stay free of HTTP concerns.

use countersign_core::{Action, Outcome, OutcomeStatus, Request, Requirement, Timestamp, VoteKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// An action to decide on.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// e.g. `shell.exec`, `sql.execute`, `http.request`, `mcp.tool_call`.
    #[schema(example = "sql.execute")]
    pub kind: String,
    /// Where the action lands.
    #[schema(example = "prod-db")]
    pub resource: String,
    /// The exact thing to run; the approval binds to it.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Value,
    #[serde(default)]
    pub on_behalf_of: Option<String>,
    #[serde(default)]
    pub justification: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Free facts about the request, e.g. `{"confidence": 0.92}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
}

impl From<ActionBody> for Action {
    fn from(body: ActionBody) -> Self {
        Action {
            kind: body.kind,
            resource: body.resource,
            payload: body.payload,
            on_behalf_of: body.on_behalf_of,
            justification: body.justification,
            labels: body.labels,
            context: body.context,
        }
    }
}

/// One approval requirement and how far it has got.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequirementView {
    pub policy: String,
    pub groups: Vec<String>,
    pub quorum: u32,
    /// Distinct people in these groups who approved so far.
    pub approvals: usize,
    /// Seconds the request may wait.
    pub timeout_seconds: u64,
    /// Seconds an approval stays usable before release.
    pub valid_for_seconds: u64,
}

/// What approval a pending request needs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalView {
    pub requirements: Vec<RequirementView>,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub expires_at: Option<Timestamp>,
}

/// The answer to a submission.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubmitResponse {
    pub id: String,
    /// `allowed`, `denied` or `pending`; with `?reuse=open` also `approved`.
    pub status: String,
    /// `sha256:<hex>` of the canonical action.
    pub fingerprint: String,
    pub reason: String,
    /// Ids of the determining policies.
    pub policies: Vec<String>,
    pub policy_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalView>,
    /// `true` (with `200`) when `?reuse=open` answered with an earlier
    /// open request of the caller; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
}

/// An approval, denial or comment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryView {
    /// `user:NAME`.
    pub by: String,
    #[schema(value_type = String)]
    pub at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The reported outcome of an action.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeBody {
    /// `succeeded` or `failed`.
    pub status: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub summary: Option<String>,
    /// Hex SHA-256 of the action's output.
    #[serde(default)]
    pub output_sha256: Option<String>,
}

/// A request, its decision and its history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionView {
    pub id: String,
    /// `allowed`, `denied`, `pending`, `approved`, `released`, `expired`, `cancelled` or `revoked`.
    pub status: String,
    pub reason: String,
    pub fingerprint: String,
    /// `agent:NAME` or `user:NAME`.
    pub requester: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub kind: String,
    pub resource: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    pub labels: Vec<String>,
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
    pub policies: Vec<String>,
    pub policy_hash: String,
    pub requirements: Vec<RequirementView>,
    pub approvals: Vec<EntryView>,
    pub denials: Vec<EntryView>,
    pub comments: Vec<EntryView>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub approved_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub release_by: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub released_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub closed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<Outcome>,
}

/// A list of requests, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionList {
    pub actions: Vec<ActionView>,
    /// More may follow: pass this as `cursor` for the next page. Absent on
    /// the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A comment, or the reason given with an approval or denial.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    #[serde(default)]
    pub comment: Option<String>,
}

/// The error envelope of every failed call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable, e.g. `self_approval`.
    pub code: String,
    pub message: String,
}

pub fn requirement_views(request: &Request) -> Vec<RequirementView> {
    request.requirements.iter().map(|r| requirement_view(request, r)).collect()
}

fn requirement_view(request: &Request, requirement: &Requirement) -> RequirementView {
    RequirementView {
        policy: requirement.policy.clone(),
        groups: requirement.groups.clone(),
        quorum: requirement.quorum,
        approvals: request.approvals_for(requirement),
        timeout_seconds: requirement.timeout.as_secs(),
        valid_for_seconds: requirement.valid_for.as_secs(),
    }
}

impl From<&Request> for SubmitResponse {
    fn from(request: &Request) -> Self {
        let approval = (!request.requirements.is_empty())
            .then(|| ApprovalView { requirements: requirement_views(request), expires_at: request.expires_at });
        Self {
            id: request.id.clone(),
            status: request.status.as_str().to_owned(),
            fingerprint: request.fingerprint.to_string(),
            reason: request.reason.clone(),
            policies: request.policies.clone(),
            policy_hash: request.policy_hash.clone(),
            approval,
            reused: false,
        }
    }
}

impl From<&Request> for ActionView {
    fn from(r: &Request) -> Self {
        let entries = |kind: VoteKind| {
            r.votes
                .iter()
                .filter(|v| v.kind == kind)
                .map(|v| EntryView { by: v.by.to_string(), at: v.at, comment: v.comment.clone() })
                .collect()
        };
        Self {
            id: r.id.clone(),
            status: r.status.as_str().to_owned(),
            reason: r.reason.clone(),
            fingerprint: r.fingerprint.to_string(),
            requester: r.principal.to_string(),
            owner: r.owner.clone(),
            kind: r.action.kind.clone(),
            resource: r.action.resource.clone(),
            payload: r.action.payload.clone(),
            on_behalf_of: r.action.on_behalf_of.clone(),
            justification: r.action.justification.clone(),
            labels: r.action.labels.clone(),
            context: r.action.context.clone(),
            policies: r.policies.clone(),
            policy_hash: r.policy_hash.clone(),
            requirements: requirement_views(r),
            approvals: entries(VoteKind::Approve),
            denials: entries(VoteKind::Deny),
            comments: r
                .comments
                .iter()
                .map(|c| EntryView { by: c.by.to_string(), at: c.at, comment: Some(c.text.clone()) })
                .collect(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            approved_at: r.approved_at,
            release_by: r.release_by,
            released_at: r.released_at,
            closed_at: r.closed_at,
            outcome: r.outcome.clone(),
        }
    }
}

impl OutcomeBody {
    /// Checks the report and stamps it.
    pub fn into_outcome(self, now: Timestamp) -> Result<Outcome, crate::error::ApiError> {
        let bad = |m: &str| crate::error::ApiError::bad_request("invalid_outcome", m.to_owned());
        let status = match self.status.as_str() {
            "succeeded" => OutcomeStatus::Succeeded,
            "failed" => OutcomeStatus::Failed,
            other => return Err(bad(&format!("`status` must be `succeeded` or `failed`, not `{other}`"))),
        };
        if let Some(digest) = &self.output_sha256 {
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("`output_sha256` must be 64 hex digits"));
            }
        }
        if self.summary.as_ref().is_some_and(|s| s.chars().count() > 4096) {
            return Err(bad("`summary` is longer than 4096 characters"));
        }
        Ok(Outcome {
            status,
            exit_code: self.exit_code,
            summary: self.summary,
            output_sha256: self.output_sha256.map(|d| d.to_lowercase()),
            reported_at: now,
        })
    }
}
