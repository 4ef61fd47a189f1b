//! The store conformance suite against three stores on one database, as
//! three gateway replicas would hold them: every call goes to the next
//! store in turn, so racing moves, quorum votes, concurrent appends and
//! compare-and-set contenders land on different connections and writer
//! tasks. Exactly-once must then come from the database alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use countersign_audit::{AuditDraft, AuditEvent};
use countersign_core::{Fingerprint, Principal, PrincipalRef, Request, Timestamp};
use countersign_store::{
    Agent, NewAgent, NewUser, RequestFilter, Store, StoreError, UpdateFn, Updated, User, UserProfile,
};
use countersign_store_postgres::testing::TempCluster;
use countersign_store_postgres::PostgresStore;

#[derive(Debug)]
struct Replicas {
    stores: Vec<PostgresStore>,
    next: AtomicUsize,
}

impl Replicas {
    fn pick(&self) -> &PostgresStore {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.stores[i % self.stores.len()]
    }
}

async fn make() -> (Replicas, ()) {
    let cluster = TempCluster::shared().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().await.expect("a fresh database");
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(PostgresStore::connect(&url).await.expect("connect"));
    }
    (Replicas { stores, next: AtomicUsize::new(0) }, ())
}

#[async_trait]
impl Store for Replicas {
    async fn create_user(&self, user: NewUser, events: Vec<AuditDraft>) -> Result<User, StoreError> {
        self.pick().create_user(user, events).await
    }
    async fn create_agent(&self, agent: NewAgent, events: Vec<AuditDraft>) -> Result<Agent, StoreError> {
        self.pick().create_agent(agent, events).await
    }
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.pick().user(name).await
    }
    async fn users_with_email(&self, email: &str) -> Result<Vec<User>, StoreError> {
        self.pick().users_with_email(email).await
    }
    async fn agent(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        self.pick().agent(name).await
    }
    async fn update_user_profile(
        &self,
        name: &str,
        profile: UserProfile,
        events: Vec<AuditDraft>,
    ) -> Result<User, StoreError> {
        self.pick().update_user_profile(name, profile, events).await
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.pick().list_users().await
    }
    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.pick().list_agents().await
    }
    async fn revoke_user(
        &self,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError> {
        self.pick().revoke_user(name, now, events).await
    }
    async fn revoke_agent(
        &self,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError> {
        self.pick().revoke_agent(name, now, events).await
    }
    async fn principal_by_token_hash(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        self.pick().principal_by_token_hash(token_hash).await
    }
    async fn insert_request(&self, request: Request, events: Vec<AuditDraft>) -> Result<(), StoreError> {
        self.pick().insert_request(request, events).await
    }
    async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        self.pick().request(id).await
    }
    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<Request>, StoreError> {
        self.pick().list_requests(filter).await
    }
    async fn open_requests_by_fingerprint(
        &self,
        requester: &PrincipalRef,
        fingerprint: &Fingerprint,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Request>, StoreError> {
        self.pick().open_requests_by_fingerprint(requester, fingerprint, now, limit).await
    }
    async fn update_request(&self, id: &str, update: UpdateFn) -> Result<Updated, StoreError> {
        self.pick().update_request(id, update).await
    }
    async fn due_requests(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
        self.pick().due_requests(now).await
    }
    async fn append_audit(&self, events: Vec<AuditDraft>) -> Result<u64, StoreError> {
        self.pick().append_audit(events).await
    }
    async fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.pick().audit_events(after, limit).await
    }
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.pick().kv_get(namespace, key).await
    }
    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
    ) -> Result<bool, StoreError> {
        self.pick().kv_compare_and_set(namespace, key, expected, value).await
    }
    async fn kv_compare_and_set_expiring(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        self.pick().kv_compare_and_set_expiring(namespace, key, expected, value, expires_at).await
    }
    async fn kv_purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.pick().kv_purge_expired(now).await
    }
    async fn change_counter(&self) -> Result<u64, StoreError> {
        self.pick().change_counter().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.pick().ping().await
    }
}

countersign_store::conformance_tests!(make);
