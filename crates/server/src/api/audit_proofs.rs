//! The audit log's signed checkpoint, verifier key and Merkle proofs
//! (auditors and admins, as for the log itself). Hashes are base64, as in
//! the C2SP formats.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use countersign_audit::merkle::Hash;
use countersign_core::Principal;
use countersign_gateway::checkpoints::AuditLogError;
use countersign_gateway::{AppState, GatewayError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::json::ApiQuery;
use super::middleware::Caller;
use super::views::ErrorBody;
use crate::error::ApiError;

fn require_auditor(caller: &Principal) -> Result<(), ApiError> {
    if !caller.is_auditor() {
        return Err(ApiError::forbidden("forbidden", "reading the audit log needs the `auditor` or `admin` group"));
    }
    Ok(())
}

fn text(body: String) -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn encode(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| BASE64.encode(h)).collect()
}

fn proof_error(error: AuditLogError) -> ApiError {
    match error {
        AuditLogError::Proof(e) => ApiError::bad_request("invalid_proof_request", e.to_string()),
        AuditLogError::Store(e) => e.into(),
        e @ (AuditLogError::Gap { .. } | AuditLogError::Inconsistent { .. } | AuditLogError::Checkpoint(_)) => {
            ApiError::Gateway(GatewayError::Internal(e.to_string()))
        }
    }
}

/// The latest signed checkpoint of the audit log: a C2SP signed note
/// (`c2sp.org/tlog-checkpoint`), as text.
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn checkpoint(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Result<Response, ApiError> {
    require_auditor(&caller)?;
    match state.latest_checkpoint().await? {
        Some(note) => Ok(text(note)),
        None => Err(ApiError::Gateway(GatewayError::NotFound { what: "checkpoint", id: "latest".to_owned() })),
    }
}

/// The key that verifies checkpoints: a C2SP verifier key (vkey) string.
#[utoipa::path(get, path = "/v1/audit/key", tag = "audit",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn key(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Result<Response, ApiError> {
    require_auditor(&caller)?;
    match state.audit_verifier() {
        Some(verifier) => Ok(text(format!("{}\n", verifier.vkey()))),
        None => Err(ApiError::Gateway(GatewayError::NotFound { what: "checkpoint key", id: "signer".to_owned() })),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The event's sequence number (its leaf index is `seq - 1`).
    pub seq: u64,
    /// The tree size the proof is for (a checkpoint's size); default: now.
    pub size: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionView {
    pub seq: u64,
    /// Zero-based leaf index.
    pub index: u64,
    pub size: u64,
    /// The event's leaf hash, SHA-256(0x00 ‖ its canonical bytes).
    pub leaf_hash: String,
    /// The root of the tree of `size` events.
    pub root: String,
    /// From the leaf's sibling up (RFC 9162 §2.1.3).
    pub proof: Vec<String>,
}

/// The proof that event `seq` is in the log of `size` events.
#[utoipa::path(get, path = "/v1/audit/proof/inclusion", params(InclusionQuery), tag = "audit",
    responses((status = 200, body = InclusionView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn inclusion(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiQuery(query): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionView>, ApiError> {
    require_auditor(&caller)?;
    let size = match query.size {
        Some(size) => size,
        None => state.audit_tree_size().await.map_err(proof_error)?,
    };
    let proof = state.inclusion_proof(query.seq, size).await.map_err(proof_error)?;
    Ok(Json(InclusionView {
        seq: query.seq,
        index: proof.index,
        size: proof.size,
        leaf_hash: BASE64.encode(proof.leaf),
        root: BASE64.encode(proof.root),
        proof: encode(&proof.proof),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The earlier tree size (at least 1).
    pub from: u64,
    /// The later tree size; default: now.
    pub to: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyView {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    /// RFC 9162 §2.1.4.
    pub proof: Vec<String>,
}

/// The proof that the log of `to` events extends the log of `from` events.
#[utoipa::path(get, path = "/v1/audit/proof/consistency", params(ConsistencyQuery), tag = "audit",
    responses((status = 200, body = ConsistencyView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn consistency(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyView>, ApiError> {
    require_auditor(&caller)?;
    let to = match query.to {
        Some(to) => to,
        None => state.audit_tree_size().await.map_err(proof_error)?,
    };
    let proof = state.consistency_proof(query.from, to).await.map_err(proof_error)?;
    Ok(Json(ConsistencyView {
        from: proof.from,
        to: proof.to,
        from_root: BASE64.encode(proof.from_root),
        to_root: BASE64.encode(proof.to_root),
        proof: encode(&proof.proof),
    }))
}
