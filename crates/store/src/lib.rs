//! The storage contract every backend (SQLite, PostgreSQL) implements, and
//! the conformance suite that holds them to it.
//!
//! Two promises matter most:
//! - **Atomic moves.** [`Store::update_request`] runs the caller's pure
//!   transition against the current request and saves the result in one
//!   transaction, serialised against every other move on that request, so
//!   racing approve / deny / cancel / expire / revoke end in exactly one
//!   final state.
//! - **Durable audit.** Every mutating method takes the audit drafts that
//!   describe it and appends them, hash-chained, in the same transaction.
//!   The method returns only after that transaction is durable (fsync), so
//!   nobody hears of a change the log could lose.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod row;
mod types;

use async_trait::async_trait;
use countersign_audit::{AuditDraft, AuditEvent};
use countersign_core::{Fingerprint, Principal, PrincipalRef, Request, Timestamp};

pub use error::StoreError;
pub use row::RequestRow;
pub use types::{
    audience_keys, page_limit, Agent, Audience, Change, Cursor, NewAgent, NewUser, RequestFilter, Update, UpdateFn,
    Updated, User, UserProfile, DEFAULT_LIMIT, MAX_LIMIT,
};

/// Read-only access to stored requests, for what only reads their history
/// (review cards) and so need not hold the whole store.
#[async_trait]
pub trait RequestReader: Send + Sync + std::fmt::Debug {
    /// As [`Store::list_requests`].
    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<Request>, StoreError>;
}

/// The gateway's persistent state: identities, requests, and the audit log.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    // ---- identities -------------------------------------------------------

    /// Creates a user and its first credential. `AlreadyExists` if the name is taken.
    async fn create_user(&self, user: NewUser, events: Vec<AuditDraft>) -> Result<User, StoreError>;

    /// Creates an agent and its key. `AlreadyExists` if the name is taken.
    async fn create_agent(&self, agent: NewAgent, events: Vec<AuditDraft>) -> Result<Agent, StoreError>;

    async fn user(&self, name: &str) -> Result<Option<User>, StoreError>;

    /// Every user (revoked or not) with this email, compared case-insensitively.
    async fn users_with_email(&self, email: &str) -> Result<Vec<User>, StoreError>;

    async fn agent(&self, name: &str) -> Result<Option<Agent>, StoreError>;

    /// Replaces a user's email, display name and groups with `profile` and
    /// stamps its login time, in one transaction. `events` are appended in
    /// that transaction only if the email, display name or groups changed
    /// (compared there, so racing logins cannot both skip or both report a
    /// change); a login that changes nothing else is no identity change.
    /// A revoked user stays revoked. Returns the user as saved; `NotFound`
    /// if no such user.
    async fn update_user_profile(
        &self,
        name: &str,
        profile: UserProfile,
        events: Vec<AuditDraft>,
    ) -> Result<User, StoreError>;

    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError>;

    /// Revokes a user's credentials at once and, in the same transaction,
    /// applies what that does to the open requests: the moves
    /// [`countersign_core::lifecycle::revoke_identity`] decides on the open
    /// requests as they are inside the transaction, saved with their events
    /// (its own requests revoked, `action.revoked`; its votes on others
    /// withdrawn, `action.revoked` for an approved request that loses its
    /// quorum, `votes.withdrawn` for any other), after `events`. The rule is
    /// core's; a backend only reads and persists. Returns every request it
    /// revoked. `NotFound` if no such user.
    async fn revoke_user(
        &self,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError>;

    /// Revokes an agent's key at once and revokes its open requests, as above.
    async fn revoke_agent(
        &self,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError>;

    /// The live principal holding a credential with this SHA-256 hex hash;
    /// `None` for unknown or revoked credentials.
    async fn principal_by_token_hash(&self, token_hash: &str) -> Result<Option<Principal>, StoreError>;

    // ---- requests ---------------------------------------------------------

    /// Stores a new request. `AlreadyExists` if the id is taken.
    async fn insert_request(&self, request: Request, events: Vec<AuditDraft>) -> Result<(), StoreError>;

    async fn request(&self, id: &str) -> Result<Option<Request>, StoreError>;

    /// Requests matching `filter`, newest first (by creation time, then id,
    /// both descending), every filter applied before the limit.
    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<Request>, StoreError>;

    /// The requester's open requests for exactly the action `fingerprint`
    /// names, still within their deadline at `now` (none set, or later
    /// than `now`): `approved` ones (not yet released) first, then
    /// `pending` ones, each oldest first (by creation time, then id); at
    /// most `limit` (0 means the store's default of 100, and never more
    /// than 1000). Released, allowed and closed requests are never
    /// returned, nor another requester's, whatever their fingerprint.
    ///
    /// A lookup through an index on the fingerprint: its cost does not
    /// grow with how many other requests the requester has open.
    async fn open_requests_by_fingerprint(
        &self,
        requester: &PrincipalRef,
        fingerprint: &Fingerprint,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Request>, StoreError>;

    /// Applies a transition atomically: `update` sees the current request and
    /// returns what to save, what to audit, and the caller's result.
    /// `NotFound` if no such request.
    async fn update_request(&self, id: &str, update: UpdateFn) -> Result<Updated, StoreError>;

    /// Ids of open requests (pending or approved) whose deadline is at or
    /// before `now`.
    async fn due_requests(&self, now: Timestamp) -> Result<Vec<String>, StoreError>;

    // ---- audit ------------------------------------------------------------

    /// Appends events on their own. Returns the sequence number of the last.
    async fn append_audit(&self, events: Vec<AuditDraft>) -> Result<u64, StoreError>;

    /// Up to `limit` events with `seq > after`, in order.
    async fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;

    // ---- key-value area ---------------------------------------------------

    /// A value components keep for themselves (delivery cursors, chat
    /// message references, shared settings), by namespace and key.
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError>;

    /// Sets `key` to `value` (`None` deletes it) only if its current value
    /// is `expected` (`None`: absent). Returns whether it was set; racing
    /// setters with the same `expected` get exactly one `true`.
    /// The value set carries no expiry (it replaces any the entry had).
    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
    ) -> Result<bool, StoreError>;

    /// As [`kv_compare_and_set`](Store::kv_compare_and_set), and a value it
    /// sets expires at `expires_at` (`None`: never): from then on
    /// [`kv_purge_expired`](Store::kv_purge_expired) deletes it. Until the
    /// purge [`kv_get`](Store::kv_get) still returns it, so a caller whose
    /// value carries a deadline (a session) checks that deadline itself.
    async fn kv_compare_and_set_expiring(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Result<bool, StoreError>;

    /// Deletes every key-value entry whose expiry is at or before `now`.
    /// Returns how many it deleted.
    async fn kv_purge_expired(&self, now: Timestamp) -> Result<u64, StoreError>;

    // ---- operations -------------------------------------------------------

    /// A number that changes whenever another process or replica commits,
    /// so waiters can re-check what they wait for without polling rows.
    async fn change_counter(&self) -> Result<u64, StoreError>;

    /// Pushed notice of what *other* processes or replicas committed, for a
    /// store that several gateways share (PostgreSQL: LISTEN/NOTIFY), so a
    /// waiter on one replica wakes the moment another replica decides.
    /// Best effort: a notice can be lost (a dropped connection), which is
    /// why [`change_counter`](Store::change_counter) is still polled.
    /// `None` (the default) for a store without such a feed; a gateway also
    /// takes `Some` to mean "other replicas may share this store" and then
    /// shares its policy set through the key-value area.
    fn change_feed(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }

    /// Fails when the store cannot serve (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}
