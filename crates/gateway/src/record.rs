//! Record: the audit log, appended to with what belongs to no request
//! transition and read back in order; and requests as stored, for
//! integrations that act for nobody in particular (a chat message to
//! update, a pending list to compare). Answers to a caller go through
//! [`crate::visibility`] instead, so that ids leak nothing.

use std::sync::Arc;

use async_trait::async_trait;
use countersign_audit::{AuditDraft, AuditEvent};
use countersign_core::Request;
use countersign_store::{RequestFilter, RequestReader, Store, StoreError};

use crate::error::GatewayError;
use crate::AppState;

impl AppState {
    /// Records events that belong to no request transition.
    pub async fn audit(&self, events: Vec<AuditDraft>) -> Result<(), GatewayError> {
        self.append_audit(events).await?;
        Ok(())
    }

    /// As [`AppState::audit`], returning the sequence number of the last
    /// event appended (where a reader of the log starts after them).
    pub async fn append_audit(&self, events: Vec<AuditDraft>) -> Result<u64, StoreError> {
        self.0.store.append_audit(events).await
    }

    /// Up to `limit` audit events after sequence number `after`, in order.
    pub async fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.0.store.audit_events(after, limit).await
    }

    /// Request `id` as stored, whoever may see it.
    pub async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        self.0.store.request(id).await
    }

    /// The stored requests `filter` selects, whoever may see them.
    pub async fn requests(&self, filter: &RequestFilter) -> Result<Vec<Request>, StoreError> {
        self.0.store.list_requests(filter).await
    }
}

/// Stored requests, read only: what review cards read their history from.
#[derive(Debug)]
struct Reader(Arc<dyn Store>);

#[async_trait]
impl RequestReader for Reader {
    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<Request>, StoreError> {
        self.0.list_requests(filter).await
    }
}

impl AppState {
    /// Read-only access to stored requests, whoever may see them (review
    /// cards' history).
    pub fn request_reader(&self) -> Arc<dyn RequestReader> {
        Arc::new(Reader(self.0.store.clone()))
    }
}
