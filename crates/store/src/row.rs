//! A request encoded into the columns every backend indexes, plus the whole
//! request as JSON (so new fields need no migration). Encoded on the
//! caller's task, so JSON encoding never holds up a backend's writer.

use countersign_core::{Request, Timestamp};

use crate::StoreError;

/// The indexed columns of a request row and its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub id: String,
    pub status: &'static str,
    pub principal_kind: &'static str,
    pub principal_name: String,
    pub kind: String,
    pub resource: String,
    /// [`Request::fingerprint`], for the lookup of a requester's open
    /// requests for one action.
    pub fingerprint: String,
    pub created_at: i64,
    /// [`Request::deadline`], for the expiry sweep's index.
    pub deadline: Option<i64>,
    pub body: String,
    /// [`crate::audience_keys`], for the visibility index.
    pub audiences: Vec<String>,
}

impl RequestRow {
    pub fn encode(request: &Request) -> Result<Self, StoreError> {
        Ok(Self {
            id: request.id.clone(),
            status: request.status.as_str(),
            principal_kind: request.principal.kind.as_str(),
            principal_name: request.principal.name.clone(),
            kind: request.action.kind.clone(),
            resource: request.action.resource.clone(),
            fingerprint: request.fingerprint.as_str().to_owned(),
            created_at: request.created_at.as_millis(),
            deadline: request.deadline().map(Timestamp::as_millis),
            body: serde_json::to_string(request)
                .map_err(|e| StoreError::Internal(format!("cannot encode request: {e}")))?,
            audiences: crate::audience_keys(request),
        })
    }
}
