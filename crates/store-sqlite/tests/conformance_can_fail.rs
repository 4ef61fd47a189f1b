//! Proof that the conformance suite has teeth: a store with one classic
//! bug (a lost update, a stale token cache, unaudited refusals, …) must
//! fail the scenario written to catch it. Each flaw wraps a correct
//! SqliteStore and breaks one behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use countersign_audit::{AuditDraft, AuditEvent};
use countersign_core::{Fingerprint, Principal, PrincipalRef, Request, Status, Timestamp};
use countersign_store::conformance;
use countersign_store::{
    Agent, Cursor, NewAgent, NewUser, RequestFilter, Store, StoreError, Update, UpdateFn, Updated, User, UserProfile,
};
use countersign_store_sqlite::SqliteStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// Plain delegation.
    None,
    /// Reads, decides, then writes: two movers both see "pending".
    LostUpdate,
    /// Caches token lookups and never forgets a revoked one.
    StaleTokenCache,
    /// Drops the events of refused transitions.
    SilentRefusals,
    /// Reads limit 0 as "no limit".
    UnlimitedLists,
    /// Reports anything with a past `expires_at` as due.
    DueIgnoresStatus,
    /// Compares emails exactly.
    CaseSensitiveEmail,
    /// Forgets to report which requests a revocation withdrew.
    RevokeReportsNothing,
    /// Treats a duplicate insert as success.
    DuplicatesAccepted,
    /// Audits every login's profile, changed or not.
    AuditsUnchangedProfiles,
    /// Never deletes expired key-value entries.
    PurgeDeletesNothing,
    /// Applies the audience after the limit (issue 9: a flood for another
    /// group pushed a person's requests out of their list).
    VisibilityAfterLimit,
    /// Pages by creation time alone, skipping requests that share the
    /// cursor's creation time.
    CursorByTimeOnly,
    /// Finds open requests by fingerprint among the requester's 1,000
    /// newest of that kind and resource (the gateway's scan before issue
    /// 14's follow-up).
    OpenMatchByScan,
    /// Finds open requests by fingerprint whoever asked for them.
    OpenMatchIgnoresRequester,
}

#[derive(Debug)]
struct Flawed {
    inner: SqliteStore,
    flaw: Flaw,
    tokens: Mutex<HashMap<String, Principal>>,
}

async fn flawed(flaw: Flaw) -> (Flawed, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open(&dir.path().join("f.db")).unwrap();
    (Flawed { inner, flaw, tokens: Mutex::new(HashMap::new()) }, dir)
}

#[async_trait]
impl Store for Flawed {
    async fn create_user(&self, user: NewUser, events: Vec<AuditDraft>) -> Result<User, StoreError> {
        self.inner.create_user(user, events).await
    }

    async fn create_agent(&self, agent: NewAgent, events: Vec<AuditDraft>) -> Result<Agent, StoreError> {
        self.inner.create_agent(agent, events).await
    }

    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.inner.user(name).await
    }

    async fn users_with_email(&self, email: &str) -> Result<Vec<User>, StoreError> {
        let users = self.inner.users_with_email(email).await?;
        match self.flaw {
            Flaw::CaseSensitiveEmail => Ok(users.into_iter().filter(|u| u.email == email).collect()),
            _ => Ok(users),
        }
    }

    async fn agent(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        self.inner.agent(name).await
    }

    async fn update_user_profile(
        &self,
        name: &str,
        profile: UserProfile,
        events: Vec<AuditDraft>,
    ) -> Result<User, StoreError> {
        if self.flaw == Flaw::AuditsUnchangedProfiles {
            let before = self.inner.user(name).await?;
            if before.is_some_and(|u| !profile.changes(&u)) {
                self.inner.append_audit(events.clone()).await?;
            }
        }
        self.inner.update_user_profile(name, profile, events).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.inner.list_users().await
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.inner.list_agents().await
    }

    async fn revoke_user(
        &self,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError> {
        let revoked = self.inner.revoke_user(name, now, events).await?;
        match self.flaw {
            Flaw::RevokeReportsNothing => Ok(Vec::new()),
            _ => Ok(revoked),
        }
    }

    async fn revoke_agent(
        &self,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError> {
        let revoked = self.inner.revoke_agent(name, now, events).await?;
        match self.flaw {
            Flaw::RevokeReportsNothing => Ok(Vec::new()),
            _ => Ok(revoked),
        }
    }

    async fn principal_by_token_hash(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        if self.flaw == Flaw::StaleTokenCache {
            if let Some(p) = self.tokens.lock().unwrap().get(token_hash) {
                return Ok(Some(p.clone()));
            }
        }
        let found = self.inner.principal_by_token_hash(token_hash).await?;
        if let Some(p) = &found {
            self.tokens.lock().unwrap().insert(token_hash.to_owned(), p.clone());
        }
        Ok(found)
    }

    async fn insert_request(&self, request: Request, events: Vec<AuditDraft>) -> Result<(), StoreError> {
        match (self.flaw, self.inner.insert_request(request, events).await) {
            (Flaw::DuplicatesAccepted, Err(StoreError::AlreadyExists { .. })) => Ok(()),
            (_, result) => result,
        }
    }

    async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        self.inner.request(id).await
    }

    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<Request>, StoreError> {
        match self.flaw {
            Flaw::UnlimitedLists if filter.limit == 0 => {
                self.inner.list_requests(&RequestFilter { limit: usize::MAX, ..filter.clone() }).await
            }
            Flaw::VisibilityAfterLimit if filter.visible_to.is_some() => {
                let audience = filter.visible_to.clone().unwrap();
                let all = self.inner.list_requests(&RequestFilter { visible_to: None, ..filter.clone() }).await?;
                Ok(all.into_iter().filter(|r| audience.admits(r)).collect())
            }
            Flaw::CursorByTimeOnly if filter.after.is_some() => {
                let after = filter.after.clone().map(|c| Cursor { id: String::new(), ..c });
                self.inner.list_requests(&RequestFilter { after, ..filter.clone() }).await
            }
            _ => self.inner.list_requests(filter).await,
        }
    }

    async fn open_requests_by_fingerprint(
        &self,
        requester: &PrincipalRef,
        fingerprint: &Fingerprint,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Request>, StoreError> {
        match self.flaw {
            Flaw::OpenMatchByScan => {
                // What the gateway did before (issue 14): the requester's
                // 1,000 newest open requests of the action's kind and
                // resource per status, compared in memory.
                let Some(sample) =
                    self.inner.open_requests_by_fingerprint(requester, fingerprint, now, limit).await?.pop()
                else {
                    return Ok(Vec::new());
                };
                let mut found = Vec::new();
                for status in [Status::Approved, Status::Pending] {
                    let filter = RequestFilter {
                        status: Some(status),
                        principal: Some(requester.clone()),
                        kind: Some(sample.action.kind.clone()),
                        resource: Some(sample.action.resource.clone()),
                        limit: 1000,
                        ..RequestFilter::default()
                    };
                    let mut page = self.inner.list_requests(&filter).await?;
                    page.reverse();
                    found.extend(page.into_iter().filter(|r| {
                        &r.fingerprint == fingerprint && r.deadline().is_none_or(|deadline| deadline > now)
                    }));
                }
                found.truncate(if limit == 0 { 100 } else { limit });
                Ok(found)
            }
            Flaw::OpenMatchIgnoresRequester => {
                let all = self.inner.list_requests(&RequestFilter { limit: 1000, ..RequestFilter::default() }).await?;
                let mut found: Vec<Request> = all
                    .into_iter()
                    .rev()
                    .filter(|r| &r.fingerprint == fingerprint && r.status.is_open())
                    .filter(|r| r.deadline().is_none_or(|deadline| deadline > now))
                    .collect();
                found.sort_by_key(|r| r.status == Status::Pending);
                found.truncate(if limit == 0 { 100 } else { limit });
                Ok(found)
            }
            _ => self.inner.open_requests_by_fingerprint(requester, fingerprint, now, limit).await,
        }
    }

    async fn update_request(&self, id: &str, update: UpdateFn) -> Result<Updated, StoreError> {
        match self.flaw {
            Flaw::LostUpdate => {
                let current = self
                    .inner
                    .request(id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound { what: "request", name: id.to_owned() })?;
                tokio::time::sleep(Duration::from_millis(2)).await;
                let decided = update(&current);
                self.inner.update_request(id, Box::new(move |_: &Request| decided)).await
            }
            Flaw::SilentRefusals => {
                let wrapped: UpdateFn = Box::new(move |r: &Request| {
                    let u = update(r);
                    let events = if u.result.is_ok() { u.events } else { Vec::new() };
                    Update { events, ..u }
                });
                self.inner.update_request(id, wrapped).await
            }
            _ => self.inner.update_request(id, update).await,
        }
    }

    async fn due_requests(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
        match self.flaw {
            Flaw::DueIgnoresStatus => {
                let all = self.inner.list_requests(&RequestFilter { limit: 1000, ..RequestFilter::default() }).await?;
                Ok(all.into_iter().filter(|r| r.expires_at.is_some_and(|t| t <= now)).map(|r| r.id).collect())
            }
            _ => self.inner.due_requests(now).await,
        }
    }

    async fn append_audit(&self, events: Vec<AuditDraft>) -> Result<u64, StoreError> {
        self.inner.append_audit(events).await
    }

    async fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_events(after, limit).await
    }

    async fn change_counter(&self) -> Result<u64, StoreError> {
        self.inner.change_counter().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.kv_get(namespace, key).await
    }

    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
    ) -> Result<bool, StoreError> {
        self.inner.kv_compare_and_set(namespace, key, expected, value).await
    }

    async fn kv_compare_and_set_expiring(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        self.inner.kv_compare_and_set_expiring(namespace, key, expected, value, expires_at).await
    }

    async fn kv_purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        match self.flaw {
            Flaw::PurgeDeletesNothing => Ok(0),
            _ => self.inner.kv_purge_expired(now).await,
        }
    }
}

macro_rules! must_fail {
    ($test:ident, $flaw:expr, $scenario:ident, $message:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[should_panic(expected = $message)]
        async fn $test() {
            let (store, _dir) = flawed($flaw).await;
            conformance::$scenario(Arc::new(store)).await;
        }
    };
}

must_fail!(race_catches_lost_updates, Flaw::LostUpdate, racing_final_moves_have_one_winner, "exactly one move may win");
must_fail!(
    quorum_catches_lost_updates,
    Flaw::LostUpdate,
    quorum_counts_distinct_people_under_concurrency,
    "exactly the quorum of approvals is accepted"
);
must_fail!(
    revocation_catches_stale_tokens,
    Flaw::StaleTokenCache,
    revoke_makes_tokens_unknown_at_once,
    "token must be unknown at once"
);
must_fail!(
    refusals_must_be_audited,
    Flaw::SilentRefusals,
    update_request_audits_refusals,
    "the refused attempt must be audited"
);
must_fail!(
    limits_catch_unlimited_lists,
    Flaw::UnlimitedLists,
    list_requests_limits,
    "limit 0 means the default of 100"
);
must_fail!(
    due_catches_closed_requests,
    Flaw::DueIgnoresStatus,
    due_requests_are_open_and_past_deadline,
    "due requests"
);
must_fail!(
    email_lookup_ignores_case,
    Flaw::CaseSensitiveEmail,
    users_with_email_ignores_case,
    "emails compare case-insensitively"
);
must_fail!(
    revocation_reports_withdrawn_requests,
    Flaw::RevokeReportsNothing,
    revoke_agent_withdraws_its_open_requests,
    "the open requests are revoked"
);
must_fail!(
    unchanged_profiles_are_not_audited,
    Flaw::AuditsUnchangedProfiles,
    user_profile_updates_from_a_login,
    "a login that changes nothing is not audited"
);
must_fail!(
    expired_entries_must_be_purged,
    Flaw::PurgeDeletesNothing,
    kv_expired_entries_are_purged,
    "expiry is inclusive"
);
must_fail!(
    release_catches_lost_updates,
    Flaw::LostUpdate,
    release_racing_approvals_sees_them,
    "released once both approvals are accepted"
);
must_fail!(
    visibility_is_filtered_before_the_limit,
    Flaw::VisibilityAfterLimit,
    list_requests_visible_to_filters_before_the_limit,
    "who may see a request is filtered before the limit"
);
must_fail!(cursors_keep_ties, Flaw::CursorByTimeOnly, list_requests_pages_with_a_cursor, "page after");
must_fail!(
    open_lookup_is_not_a_scan_of_the_newest,
    Flaw::OpenMatchByScan,
    open_requests_by_fingerprint_finds_past_a_thousand_others,
    "past 2,010 newer open ones"
);
must_fail!(
    open_lookup_is_the_requesters_own,
    Flaw::OpenMatchIgnoresRequester,
    open_requests_by_fingerprint_are_the_requesters_open_ones,
    "the requester's open ones, in order"
);
must_fail!(duplicate_ids_are_refused, Flaw::DuplicatesAccepted, duplicate_request_already_exists, "duplicate id");

/// The same wrapper without a flaw passes every scenario, so the failures
/// above come from the flaws and not from the wrapper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrapper_without_a_flaw_conforms() {
    conformance::run_all(|| flawed(Flaw::None)).await;
}
