//! The scenarios every store backend must pass.
//!
//! A backend wires them into its tests with [`conformance_tests!`], which
//! expands to one `#[tokio::test]` per scenario, each on a fresh store:
//!
//! ```ignore
//! async fn make() -> (MyStore, tempfile::TempDir) { /* a fresh, empty store */ }
//! countersign_store::conformance_tests!(make);
//! ```
//!
//! The factory returns the store and a guard that must outlive it (a
//! temporary directory, a scratch database schema); use `()` if there is
//! none. [`run_all`] runs every scenario in turn, for harnesses that want
//! one test.
//!
//! Scenarios assert the trait's documented promises, not one backend's
//! choices: identities compare as sets, error kinds by variant, and the
//! audit chain by verifying it. Each scenario starts from an empty store,
//! so audit sequence numbers start at 1.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use countersign_audit::{AuditDraft, AuditEvent, ChainVerifier, GENESIS_HASH};
use countersign_core::{
    lifecycle, testing, Action, Approver, Exclusions, PersonKey, PrincipalKind, PrincipalRef, Refusal, Request, Status,
    Timestamp, VoteKind,
};
use serde_json::{json, Value};

use crate::{Agent, NewAgent, NewUser, RequestFilter, Store, StoreError, Update, UpdateFn, Updated, User, UserProfile};

mod lists;
mod moves;
mod reuse;
mod withdrawals;

pub use lists::{list_requests_pages_with_a_cursor, list_requests_visible_to_filters_before_the_limit};
pub use moves::release_racing_approvals_sees_them;
pub use reuse::{
    open_requests_by_fingerprint_are_the_requesters_open_ones,
    open_requests_by_fingerprint_finds_past_a_thousand_others,
};
pub use withdrawals::revoke_user_withdraws_its_votes;

/// Expands to one `#[tokio::test]` per scenario. `$make` is a function or
/// closure taking nothing and returning a future of `(store, guard)`.
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread`
/// features.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_scenarios!($crate::conformance_tests; @each $make;);
    };
    (@each $make:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                // The guard (a temporary directory, say) outlives the store.
                let (store, _guard) = ($make)().await;
                $crate::conformance::$scenario(::std::sync::Arc::new(store)).await;
            }
        )*
    };
}

/// Calls `$callback!` with the given leading tokens followed by every
/// scenario name: the one list that the test macro and [`run_all`] share.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_scenarios {
    ($callback:path; $($lead:tt)*) => {
        $callback!($($lead)*
            users_create_get_list,
            agents_create_get_list,
            duplicate_identities_already_exist,
            users_with_email_ignores_case,
            user_profile_updates_from_a_login,
            user_profile_unknown_is_not_found,
            tokens_identify_live_principals,
            revoke_makes_tokens_unknown_at_once,
            revoke_unknown_is_not_found,
            revoke_agent_withdraws_its_open_requests,
            revoke_user_withdraws_its_open_requests,
            revoke_user_withdraws_its_votes,
            requests_insert_and_get,
            duplicate_request_already_exists,
            list_requests_filters,
            list_requests_limits,
            list_requests_visible_to_filters_before_the_limit,
            list_requests_pages_with_a_cursor,
            open_requests_by_fingerprint_are_the_requesters_open_ones,
            open_requests_by_fingerprint_finds_past_a_thousand_others,
            update_request_saves_and_audits,
            update_request_audits_refusals,
            update_unknown_request_is_not_found,
            racing_final_moves_have_one_winner,
            quorum_counts_distinct_people_under_concurrency,
            release_racing_approvals_sees_them,
            due_requests_are_open_and_past_deadline,
            audit_pages_form_one_chain,
            concurrent_appends_form_one_chain,
            change_counter_moves_on_commit,
            kv_compare_and_set_has_one_winner,
            kv_expired_entries_are_purged,
        );
    };
}

/// Runs every scenario in turn, each on a fresh store from `make`.
pub async fn run_all<S, G, F, Fut>(make: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = (S, G)>,
{
    macro_rules! each {
        ($($scenario:ident),* $(,)?) => {
            $({
                let (store, _guard) = make().await;
                $scenario(Arc::new(store)).await;
            })*
        };
    }
    crate::conformance_scenarios!(each;);
}

// ---- fixtures ---------------------------------------------------------------

const T0: Timestamp = Timestamp(1_790_000_000_000);
const MINUTE: Duration = Duration::from_secs(60);

/// Unwraps a result the scenario needs to go on.
#[track_caller]
#[expect(clippy::panic, reason = "a failed store call must fail the conformance test that made it")]
fn must<T, E: Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what}: {e:?}"),
    }
}

fn new_user(name: &str, email: &str, groups: &[&str]) -> NewUser {
    NewUser {
        name: name.to_owned(),
        email: email.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        token_hash: token_hash(name),
        created_at: T0,
    }
}

fn new_agent(name: &str, owner: Option<&str>, groups: &[&str]) -> NewAgent {
    NewAgent {
        name: name.to_owned(),
        owner: owner.map(str::to_owned),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        token_hash: token_hash(name),
        created_at: T0,
    }
}

/// A stand-in for the SHA-256 hex of an identity's token.
fn token_hash(seed: &str) -> String {
    let hex: String = seed.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0>64}")
}

fn draft(kind: &str, body: Value) -> AuditDraft {
    AuditDraft::raw("system", kind, body)
}

/// A pending request by `principal` needing `quorum` approvals from `ops`.
fn pending(id: &str, principal: PrincipalRef, quorum: u32) -> Request {
    let statement = format!("DELETE FROM jobs WHERE id = '{id}'");
    let action = Action {
        justification: Some("conformance".to_owned()),
        labels: vec!["test".to_owned()],
        ..testing::action("sql.execute", "prod-db", json!({"statement": statement}))
    };
    testing::pending(id, principal, action, vec![testing::requirement("needs-ops", &["ops"], quorum)], T0)
}

/// Moves request `id` to `status` through `update_request`, with no events.
async fn set_status<S: Store + ?Sized>(store: &S, id: &str, status: Status, what: &str) -> Updated {
    must(
        store
            .update_request(
                id,
                Box::new(move |r: &Request| Update {
                    save: Some(with_status(r.clone(), status)),
                    events: Vec::new(),
                    result: Ok(()),
                }),
            )
            .await,
        what,
    )
}

/// `request` moved to `status`, with the timestamps that status implies.
fn with_status(mut request: Request, status: Status) -> Request {
    request.status = status;
    match status {
        Status::Allowed | Status::Pending => {}
        Status::Approved => {
            request.approved_at = Some(T0.plus(MINUTE));
            request.release_by = Some(T0.plus(11 * MINUTE));
        }
        Status::Released => {
            request.approved_at = Some(T0.plus(MINUTE));
            request.release_by = Some(T0.plus(11 * MINUTE));
            request.released_at = Some(T0.plus(2 * MINUTE));
        }
        Status::Denied | Status::Expired | Status::Cancelled | Status::Revoked => {
            request.closed_at = Some(T0.plus(MINUTE));
        }
    }
    request
}

fn ops_approver(name: &str, email: &str) -> Approver {
    Approver {
        principal: PrincipalRef::user(name),
        person: PersonKey::from_email(email),
        groups: vec!["ops".to_owned()],
    }
}

fn exclusions_for(request: &Request) -> Exclusions {
    let mut exclusions = Exclusions::default();
    exclusions.principal(request.principal.clone());
    exclusions
}

fn body_id(event: &AuditEvent) -> Option<String> {
    event.body_value().get("id").and_then(Value::as_str).map(str::to_owned)
}

/// Every audit event after `after`, read in small pages so that paging is
/// exercised everywhere.
async fn events_after<S: Store>(store: &S, after: u64) -> Vec<AuditEvent> {
    let mut events: Vec<AuditEvent> = Vec::new();
    let mut cursor = after;
    loop {
        let page = must(store.audit_events(cursor, 64).await, "audit_events");
        let Some(last) = page.last() else {
            return events;
        };
        assert!(page.len() <= 64, "audit_events returned more than the limit");
        cursor = last.seq;
        events.extend(page);
    }
}

/// The sequence number of the newest event (0 for an empty log).
async fn head_seq<S: Store>(store: &S) -> u64 {
    events_after(store, 0).await.last().map_or(0, |e| e.seq)
}

/// Reads the whole log, checks it is numbered 1, 2, 3, … and verifies the
/// chain. Returns the events.
async fn verified_log<S: Store>(store: &S) -> Vec<AuditEvent> {
    let events = events_after(store, 0).await;
    let mut verifier = ChainVerifier::new();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.seq, i as u64 + 1, "audit sequence numbers must be contiguous from 1");
        must(verifier.push(event), "the audit chain must verify");
    }
    if let Some(first) = events.first() {
        assert_eq!(first.prev_hash, GENESIS_HASH, "the first event must link to the genesis hash");
    }
    events
}

fn names_of_users(mut users: Vec<User>) -> Vec<String> {
    users.sort_by(|a, b| a.name.cmp(&b.name));
    users.into_iter().map(|u| u.name).collect()
}

// ---- identities -------------------------------------------------------------

/// Users come back as created, singly and in the list, and creating them is
/// audited.
pub async fn users_create_get_list<S: Store>(store: Arc<S>) {
    let alice = must(
        store
            .create_user(
                new_user("alice", "alice@example.com", &["ops", "admin"]),
                vec![draft("user.created", json!({"name": "alice"}))],
            )
            .await,
        "create alice",
    );
    let expected = User {
        name: "alice".to_owned(),
        email: "alice@example.com".to_owned(),
        groups: vec!["ops".to_owned(), "admin".to_owned()],
        created_at: T0,
        revoked_at: None,
        display_name: None,
        last_login: None,
    };
    assert_eq!(alice, expected);
    let bob = must(
        store
            .create_user(new_user("bob", "bob@example.com", &[]), vec![draft("user.created", json!({"name": "bob"}))])
            .await,
        "create bob",
    );

    assert_eq!(must(store.user("alice").await, "get alice"), Some(expected.clone()));
    assert_eq!(must(store.user("bob").await, "get bob"), Some(bob.clone()));
    assert_eq!(must(store.user("carol").await, "get carol"), None);
    let mut all = must(store.list_users().await, "list users");
    all.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(all, vec![expected, bob]);
    assert!(must(store.list_agents().await, "list agents").is_empty(), "users are not agents");

    let log = verified_log(&*store).await;
    let created: Vec<Value> = log.iter().filter(|e| e.kind == "user.created").map(AuditEvent::body_value).collect();
    assert_eq!(created, vec![json!({"name": "alice"}), json!({"name": "bob"})]);
}

/// A login replaces the user's email, display name and groups everywhere
/// they are read (by name, by email, by token), stamps the login time, and
/// is audited only when something besides the login time changed.
pub async fn user_profile_updates_from_a_login<S: Store>(store: Arc<S>) {
    must(store.create_user(new_user("alice", "alice@example.com", &["ops"]), Vec::new()).await, "create alice");
    let c0 = must(store.change_counter().await, "counter");
    let profile = UserProfile {
        email: "Alice@Corp.example".to_owned(),
        display_name: Some("Alice Liddell".to_owned()),
        groups: vec!["sre".to_owned(), "admin".to_owned()],
        login_at: T0.plus(MINUTE),
    };
    let changed = draft("identity.user_updated", json!({"name": "alice", "groups": ["sre", "admin"]}));
    let saved = must(store.update_user_profile("alice", profile.clone(), vec![changed]).await, "update alice");
    let expected = User {
        name: "alice".to_owned(),
        email: "Alice@Corp.example".to_owned(),
        groups: vec!["sre".to_owned(), "admin".to_owned()],
        created_at: T0,
        revoked_at: None,
        display_name: Some("Alice Liddell".to_owned()),
        last_login: Some(T0.plus(MINUTE)),
    };
    assert_eq!(saved, expected);
    assert_eq!(must(store.user("alice").await, "get alice"), Some(expected.clone()));
    assert_eq!(must(store.list_users().await, "list"), vec![expected.clone()]);
    assert_eq!(names_of_users(must(store.users_with_email("alice@corp.example").await, "by new email")), ["alice"]);
    assert!(
        must(store.users_with_email("alice@example.com").await, "by old email").is_empty(),
        "the old email is gone"
    );
    let principal = must(store.principal_by_token_hash(&token_hash("alice")).await, "by token");
    let principal = principal.unwrap_or_else(|| must(Err("none"), "alice's token still identifies her"));
    assert_eq!(principal.groups, ["sre", "admin"], "a token carries the current groups");
    assert_eq!(principal.email.as_deref(), Some("Alice@Corp.example"));
    assert_ne!(must(store.change_counter().await, "counter"), c0, "an update must move the counter");

    // The same profile at a later login: only the login time moves, and the
    // events describing a change are not appended.
    let again = UserProfile { login_at: T0.plus(2 * MINUTE), ..profile };
    let unchanged = draft("identity.user_updated", json!({"name": "alice", "again": true}));
    let saved = must(store.update_user_profile("alice", again, vec![unchanged]).await, "log in again");
    assert_eq!(saved, User { last_login: Some(T0.plus(2 * MINUTE)), ..expected });
    let updates: Vec<Value> = verified_log(&*store)
        .await
        .iter()
        .filter(|e| e.kind == "identity.user_updated")
        .map(AuditEvent::body_value)
        .collect();
    assert_eq!(
        updates,
        vec![json!({"name": "alice", "groups": ["sre", "admin"]})],
        "a change is audited once; a login that changes nothing is not audited"
    );

    // A revoked user stays revoked whatever the provider says.
    must(store.revoke_user("alice", T0.plus(3 * MINUTE), Vec::new()).await, "revoke alice");
    let profile = UserProfile {
        email: "alice@corp.example".to_owned(),
        display_name: None,
        groups: vec!["ops".to_owned()],
        login_at: T0.plus(4 * MINUTE),
    };
    let saved = must(store.update_user_profile("alice", profile, Vec::new()).await, "update revoked alice");
    assert_eq!(saved.revoked_at, Some(T0.plus(3 * MINUTE)));
    assert_eq!(saved.groups, ["ops"]);
    assert_eq!(must(store.principal_by_token_hash(&token_hash("alice")).await, "by token"), None);
}

/// Updating the profile of a user that does not exist is `NotFound`, and
/// creates nothing.
pub async fn user_profile_unknown_is_not_found<S: Store>(store: Arc<S>) {
    let profile = UserProfile {
        email: "ghost@example.com".to_owned(),
        display_name: None,
        groups: vec!["ops".to_owned()],
        login_at: T0,
    };
    let result = store.update_user_profile("ghost", profile, vec![draft("identity.user_updated", json!({}))]).await;
    assert!(matches!(result, Err(StoreError::NotFound { .. })), "{result:?}");
    assert!(must(store.list_users().await, "list").is_empty());
    assert!(verified_log(&*store).await.iter().all(|e| e.kind != "identity.user_updated"), "nothing audited");
}

/// Agents come back as created, with or without an owner.
pub async fn agents_create_get_list<S: Store>(store: Arc<S>) {
    let bot = must(
        store
            .create_agent(
                new_agent("deploy-bot", Some("alice"), &["deployers"]),
                vec![draft("agent.created", json!({"name": "deploy-bot"}))],
            )
            .await,
        "create deploy-bot",
    );
    let expected = Agent {
        name: "deploy-bot".to_owned(),
        owner: Some("alice".to_owned()),
        groups: vec!["deployers".to_owned()],
        created_at: T0,
        revoked_at: None,
    };
    assert_eq!(bot, expected);
    let orphan = must(store.create_agent(new_agent("orphan", None, &[]), Vec::new()).await, "create orphan");
    assert_eq!(orphan.owner, None);

    assert_eq!(must(store.agent("deploy-bot").await, "get agent"), Some(expected.clone()));
    assert_eq!(must(store.agent("orphan").await, "get orphan"), Some(orphan.clone()));
    assert_eq!(must(store.agent("nobody").await, "get unknown"), None);
    let mut all = must(store.list_agents().await, "list agents");
    all.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(all, vec![expected, orphan]);
    assert!(must(store.list_users().await, "list users").is_empty(), "agents are not users");

    let log = verified_log(&*store).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, "agent.created");
}

/// A taken name or token is refused, and the refused call leaves nothing
/// behind: no identity, no audit event.
pub async fn duplicate_identities_already_exist<S: Store>(store: Arc<S>) {
    must(
        store
            .create_user(new_user("alice", "alice@example.com", &["ops"]), vec![draft("user.created", json!({}))])
            .await,
        "create alice",
    );
    must(store.create_agent(new_agent("bot", None, &[]), vec![draft("agent.created", json!({}))]).await, "create bot");

    let mut again = new_user("alice", "other@example.com", &["admin"]);
    again.token_hash = token_hash("alice-2");
    let err = store.create_user(again, vec![draft("user.created", json!({"dup": true}))]).await;
    assert!(matches!(err, Err(StoreError::AlreadyExists { .. })), "duplicate user: {err:?}");

    let mut again = new_agent("bot", Some("x"), &[]);
    again.token_hash = token_hash("bot-2");
    let err = store.create_agent(again, vec![draft("agent.created", json!({"dup": true}))]).await;
    assert!(matches!(err, Err(StoreError::AlreadyExists { .. })), "duplicate agent: {err:?}");

    // A token already in use must not be handed to a second identity: a
    // lookup would not know whom it names.
    let mut stolen = new_user("mallory", "mallory@example.com", &["admin"]);
    stolen.token_hash = token_hash("alice");
    let err = store.create_user(stolen, vec![draft("user.created", json!({"dup": true}))]).await;
    assert!(err.is_err(), "a reused token hash must be refused: {err:?}");
    assert_eq!(must(store.user("mallory").await, "get mallory"), None, "a refused create must leave no user");

    let alice = must(store.user("alice").await, "get alice");
    assert_eq!(alice.map(|u| u.email), Some("alice@example.com".to_owned()), "the first alice must be kept");
    let bot = must(store.agent("bot").await, "get bot");
    assert_eq!(bot.and_then(|a| a.owner), None, "the first bot must be kept");
    let principal = must(store.principal_by_token_hash(&token_hash("alice")).await, "token lookup");
    assert_eq!(principal.map(|p| p.name), Some("alice".to_owned()));

    let log = verified_log(&*store).await;
    assert_eq!(log.len(), 2, "refused creates must not be audited as if they happened");
    assert!(log.iter().all(|e| e.body_value().get("dup").is_none()));
}

/// One person with several identities is found by email in any case.
pub async fn users_with_email_ignores_case<S: Store>(store: Arc<S>) {
    for (name, email) in
        [("alice", "Alice@Example.com"), ("alice-sso", "alice@example.COM"), ("bob", "bob@example.com")]
    {
        must(store.create_user(new_user(name, email, &[]), Vec::new()).await, "create user");
    }
    let found = must(store.users_with_email("ALICE@example.com").await, "users_with_email");
    assert_eq!(names_of_users(found), vec!["alice", "alice-sso"], "emails compare case-insensitively");

    // Revoked identities still belong to the person.
    must(store.revoke_user("alice-sso", T0.plus(MINUTE), Vec::new()).await, "revoke alice-sso");
    let found = must(store.users_with_email("alice@example.com").await, "users_with_email");
    assert_eq!(names_of_users(found), vec!["alice", "alice-sso"], "emails compare case-insensitively");

    assert_eq!(names_of_users(must(store.users_with_email("bob@EXAMPLE.com").await, "bob")), vec!["bob"]);
    assert!(must(store.users_with_email("carol@example.com").await, "carol").is_empty());
}

/// A token hash names its live principal, with the attributes policy needs.
pub async fn tokens_identify_live_principals<S: Store>(store: Arc<S>) {
    let alice = must(store.create_user(new_user("alice", "alice@example.com", &["ops"]), Vec::new()).await, "alice");
    let bot = must(store.create_agent(new_agent("bot", Some("alice"), &["deployers"]), Vec::new()).await, "bot");

    let found = must(store.principal_by_token_hash(&token_hash("alice")).await, "alice's token");
    assert_eq!(found, Some(alice.principal()));
    let found = must(store.principal_by_token_hash(&token_hash("bot")).await, "bot's token");
    assert_eq!(found, Some(bot.principal()));
    let found = must(store.principal_by_token_hash(&token_hash("nobody")).await, "unknown token");
    assert_eq!(found, None);
}

/// Revocation kills a token the moment it returns, keeps the identity
/// listed with its revocation time, and is audited.
pub async fn revoke_makes_tokens_unknown_at_once<S: Store>(store: Arc<S>) {
    must(store.create_user(new_user("alice", "alice@example.com", &["ops"]), Vec::new()).await, "alice");
    must(store.create_user(new_user("bob", "bob@example.com", &["ops"]), Vec::new()).await, "bob");
    must(store.create_agent(new_agent("bot", Some("alice"), &[]), Vec::new()).await, "bot");
    let t1 = T0.plus(5 * MINUTE);
    // Look the tokens up first, as a server does on every call: a store
    // that caches lookups must still forget a revoked token at once.
    for name in ["alice", "bob", "bot"] {
        let found = must(store.principal_by_token_hash(&token_hash(name)).await, "token before revocation");
        assert_eq!(found.map(|p| p.name), Some(name.to_owned()));
    }

    let revoked = store.revoke_user("alice", t1, vec![draft("user.revoked", json!({"name": "alice"}))]).await;
    assert_eq!(must(revoked, "revoke alice"), Vec::new());
    assert_eq!(
        must(store.principal_by_token_hash(&token_hash("alice")).await, "alice's token"),
        None,
        "a revoked user's token must be unknown at once"
    );
    let alice = must(store.user("alice").await, "get alice");
    assert_eq!(alice.and_then(|u| u.revoked_at), Some(t1));
    assert_eq!(names_of_users(must(store.list_users().await, "list")), vec!["alice", "bob"]);
    assert!(
        must(store.principal_by_token_hash(&token_hash("bob")).await, "bob's token").is_some(),
        "revoking alice must not touch bob"
    );

    let revoked = store.revoke_agent("bot", t1, vec![draft("agent.revoked", json!({"name": "bot"}))]).await;
    assert_eq!(must(revoked, "revoke bot"), Vec::new());
    assert_eq!(
        must(store.principal_by_token_hash(&token_hash("bot")).await, "bot's token"),
        None,
        "a revoked agent's token must be unknown at once"
    );
    let bot = must(store.agent("bot").await, "get bot");
    assert_eq!(bot.and_then(|a| a.revoked_at), Some(t1));

    let kinds: Vec<String> = verified_log(&*store).await.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["user.revoked", "agent.revoked"]);
}

/// Revoking someone who does not exist is `NotFound` and audits nothing.
pub async fn revoke_unknown_is_not_found<S: Store>(store: Arc<S>) {
    must(store.create_user(new_user("alice", "alice@example.com", &[]), Vec::new()).await, "alice");
    let err = store.revoke_user("nobody", T0, vec![draft("user.revoked", json!({}))]).await;
    assert!(matches!(err, Err(StoreError::NotFound { .. })), "unknown user: {err:?}");
    let err = store.revoke_agent("nobody", T0, vec![draft("agent.revoked", json!({}))]).await;
    assert!(matches!(err, Err(StoreError::NotFound { .. })), "unknown agent: {err:?}");
    // Names are per kind: a user called alice is not an agent called alice.
    let err = store.revoke_agent("alice", T0, Vec::new()).await;
    assert!(matches!(err, Err(StoreError::NotFound { .. })), "a user is not an agent: {err:?}");
    assert!(must(store.principal_by_token_hash(&token_hash("alice")).await, "token").is_some());
    assert!(verified_log(&*store).await.is_empty(), "a failed revocation must not be audited");
}

/// Revoking an agent withdraws its pending and approved requests, one
/// `action.revoked` event each, and touches nothing else.
pub async fn revoke_agent_withdraws_its_open_requests<S: Store>(store: Arc<S>) {
    must(store.create_agent(new_agent("bot", None, &[]), Vec::new()).await, "bot");
    must(store.create_agent(new_agent("other", None, &[]), Vec::new()).await, "other");
    revocation_withdraws_open_requests(store, PrincipalRef::agent("bot"), PrincipalRef::agent("other")).await;
}

/// Revoking a user withdraws the requests it submitted, as for agents.
pub async fn revoke_user_withdraws_its_open_requests<S: Store>(store: Arc<S>) {
    must(store.create_user(new_user("uma", "uma@example.com", &[]), Vec::new()).await, "uma");
    // Same name, other kind: must be left alone.
    let mut agent = new_agent("uma", None, &[]);
    agent.token_hash = token_hash("agent-uma");
    must(store.create_agent(agent, Vec::new()).await, "agent uma");
    revocation_withdraws_open_requests(store, PrincipalRef::user("uma"), PrincipalRef::agent("uma")).await;
}

async fn revocation_withdraws_open_requests<S: Store>(store: Arc<S>, target: PrincipalRef, bystander: PrincipalRef) {
    let mut untouched = Vec::new();
    for (id, status) in [
        ("t-allowed", Status::Allowed),
        ("t-released", Status::Released),
        ("t-denied", Status::Denied),
        ("t-expired", Status::Expired),
        ("t-cancelled", Status::Cancelled),
    ] {
        untouched.push(with_status(pending(id, target.clone(), 1), status));
    }
    for (id, status) in [("b-pending", Status::Pending), ("b-approved", Status::Approved)] {
        untouched.push(with_status(pending(id, bystander.clone(), 1), status));
    }
    let open = vec![
        with_status(pending("t-pending", target.clone(), 1), Status::Pending),
        with_status(pending("t-approved", target.clone(), 1), Status::Approved),
    ];
    for request in untouched.iter().chain(&open) {
        must(store.insert_request(request.clone(), Vec::new()).await, "insert");
    }
    let before = head_seq(&*store).await;
    let t1 = T0.plus(3 * MINUTE);
    let caller_event = draft("identity.revoked", json!({"name": target.name}));
    let revoked = match target.kind {
        PrincipalKind::Agent => store.revoke_agent(&target.name, t1, vec![caller_event]).await,
        PrincipalKind::User => store.revoke_user(&target.name, t1, vec![caller_event]).await,
    };
    let revoked = must(revoked, "revoke");

    let ids: BTreeSet<String> = revoked.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, BTreeSet::from(["t-pending".to_owned(), "t-approved".to_owned()]), "the open requests are revoked");
    for request in &revoked {
        assert_eq!(request.status, Status::Revoked);
        assert_eq!(request.closed_at, Some(t1));
        assert!(request.reason.contains(&target.name), "reason should name the identity: {}", request.reason);
        let stored = must(store.request(&request.id).await, "get revoked");
        assert_eq!(stored.as_ref(), Some(request), "the returned request must be the stored one");
    }
    for request in &untouched {
        let stored = must(store.request(&request.id).await, "get untouched");
        assert_eq!(stored.as_ref(), Some(request), "{} must be left alone", request.id);
    }

    let log = verified_log(&*store).await;
    let after: Vec<&AuditEvent> = log.iter().filter(|e| e.seq > before).collect();
    assert_eq!(after.len(), 3, "the caller's event and one per revoked request");
    assert_eq!(after[0].kind, "identity.revoked");
    let mut audited = BTreeSet::new();
    for event in &after[1..] {
        assert_eq!(event.kind, "action.revoked");
        assert_eq!(event.actor, "system");
        let body = event.body_value();
        assert!(body.get("reason").and_then(Value::as_str).is_some(), "action.revoked needs a reason: {body}");
        audited.insert(body_id(event).unwrap_or_default());
    }
    assert_eq!(audited, ids);
    let due = must(store.due_requests(T0.plus(24 * 60 * MINUTE)).await, "due");
    assert!(due.iter().all(|id| !ids.contains(id)), "revoked requests are no longer due: {due:?}");
}

// ---- requests ---------------------------------------------------------------

/// A request comes back exactly as stored, and inserting it is audited.
pub async fn requests_insert_and_get<S: Store>(store: Arc<S>) {
    let mut request = pending("r1", PrincipalRef::agent("bot"), 2);
    request.owner = Some("alice".to_owned());
    request.action.payload = json!({"statement": "UPDATE t SET a = 1", "nested": {"list": [1, "two", null, true]}});
    request.action.context.insert("confidence".to_owned(), json!("high"));
    let events = vec![
        AuditDraft::raw("agent:bot", "action.submitted", json!({"id": "r1"})),
        AuditDraft::raw("system", "action.decided", json!({"id": "r1", "status": "pending"})),
    ];
    must(store.insert_request(request.clone(), events).await, "insert");
    assert_eq!(must(store.request("r1").await, "get"), Some(request));
    assert_eq!(must(store.request("r2").await, "get unknown"), None);

    let log = verified_log(&*store).await;
    let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["action.submitted", "action.decided"]);
    assert_eq!(log[0].actor, "agent:bot");
}

/// A taken id is refused, the first request is kept, and the refused
/// insert is not audited.
pub async fn duplicate_request_already_exists<S: Store>(store: Arc<S>) {
    let first = pending("r1", PrincipalRef::agent("bot"), 1);
    must(store.insert_request(first.clone(), vec![draft("action.submitted", json!({"id": "r1"}))]).await, "insert");
    let mut second = pending("r1", PrincipalRef::agent("mallory"), 1);
    second.status = Status::Allowed;
    let err = store.insert_request(second, vec![draft("action.submitted", json!({"id": "r1", "dup": true}))]).await;
    assert!(matches!(err, Err(StoreError::AlreadyExists { .. })), "duplicate id: {err:?}");
    assert_eq!(must(store.request("r1").await, "get"), Some(first));
    assert_eq!(verified_log(&*store).await.len(), 1, "the refused insert must not be audited");
}

/// Each filter, alone and combined, returns exactly the matching requests,
/// newest first, and follows status changes.
pub async fn list_requests_filters<S: Store>(store: Arc<S>) {
    let principals = [PrincipalRef::agent("a"), PrincipalRef::agent("b"), PrincipalRef::user("a")];
    let kinds = ["sql.execute", "shell.exec"];
    let resources = ["prod-db", "staging"];
    let statuses = [Status::Pending, Status::Allowed, Status::Denied, Status::Approved];
    let mut all = Vec::new();
    for i in 0..24usize {
        let mut request = pending(&format!("r{i:02}"), principals[i % 3].clone(), 1);
        request.action.kind = kinds[i % 2].to_owned();
        request.action.resource = resources[(i / 2) % 2].to_owned();
        // Created out of insertion order, so "newest first" is not "last inserted first".
        request.created_at = T0.plus(Duration::from_secs(((i * 7) % 24) as u64));
        all.push(with_status(request, statuses[(i / 3) % 4]));
    }
    for request in &all {
        must(store.insert_request(request.clone(), Vec::new()).await, "insert");
    }
    let check = |all: Vec<Request>, filter: RequestFilter| {
        let store = Arc::clone(&store);
        async move {
            let mut expected: Vec<&Request> = all
                .iter()
                .filter(|r| filter.status.is_none_or(|s| r.status == s))
                .filter(|r| filter.principal.as_ref().is_none_or(|p| &r.principal == p))
                .filter(|r| filter.kind.as_ref().is_none_or(|k| &r.action.kind == k))
                .filter(|r| filter.resource.as_ref().is_none_or(|res| &r.action.resource == res))
                .collect();
            expected.sort_by_key(|r| std::cmp::Reverse(r.created_at));
            if filter.limit > 0 {
                expected.truncate(filter.limit);
            }
            let expected: Vec<String> = expected.into_iter().map(|r| r.id.clone()).collect();
            let found = must(store.list_requests(&filter).await, "list_requests");
            let found: Vec<String> = found.into_iter().map(|r| r.id).collect();
            assert_eq!(found, expected, "filter {filter:?}");
        }
    };
    check(all.clone(), RequestFilter::default()).await;
    for status in Status::ALL {
        check(all.clone(), RequestFilter { status: Some(status), ..RequestFilter::default() }).await;
    }
    for principal in &principals {
        check(all.clone(), RequestFilter { principal: Some(principal.clone()), ..RequestFilter::default() }).await;
    }
    for kind in kinds {
        check(all.clone(), RequestFilter { kind: Some(kind.to_owned()), ..RequestFilter::default() }).await;
    }
    for resource in resources {
        check(all.clone(), RequestFilter { resource: Some(resource.to_owned()), ..RequestFilter::default() }).await;
    }
    let combined = RequestFilter {
        status: Some(Status::Pending),
        principal: Some(PrincipalRef::agent("a")),
        kind: Some("sql.execute".to_owned()),
        resource: Some("prod-db".to_owned()),
        visible_to: None,
        after: None,
        limit: 0,
    };
    check(all.clone(), combined).await;
    check(all.clone(), RequestFilter { limit: 5, ..RequestFilter::default() }).await;
    check(all.clone(), RequestFilter { status: Some(Status::Pending), limit: 2, ..RequestFilter::default() }).await;
    let nothing = RequestFilter { kind: Some("k8s.apply".to_owned()), ..RequestFilter::default() };
    check(all.clone(), nothing).await;

    // A status change moves the request between status filters.
    let target = all.iter().find(|r| r.status == Status::Pending).map(|r| r.id.clone()).unwrap_or_default();
    let denied = set_status(&*store, &target, Status::Denied, "deny").await;
    for request in &mut all {
        if request.id == target {
            *request = denied.request.clone();
        }
    }
    check(all.clone(), RequestFilter { status: Some(Status::Pending), ..RequestFilter::default() }).await;
    check(all, RequestFilter { status: Some(Status::Denied), ..RequestFilter::default() }).await;
}

/// A zero limit means 100; no list returns more than 1000.
pub async fn list_requests_limits<S: Store>(store: Arc<S>) {
    const TOTAL: usize = 1005;
    const TASKS: usize = 15;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in (t..TOTAL).step_by(TASKS) {
                let mut request = pending(&format!("r{i:04}"), PrincipalRef::agent("bot"), 1);
                request.created_at = T0.plus(Duration::from_millis(i as u64));
                must(store.insert_request(request, Vec::new()).await, "insert");
            }
        }));
    }
    for task in tasks {
        must(task.await, "insert task");
    }
    let ids = |requests: Vec<Request>| requests.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let newest = |n: usize| (TOTAL - n..TOTAL).rev().map(|i| format!("r{i:04}")).collect::<Vec<_>>();
    let list = |limit: usize| {
        let store = Arc::clone(&store);
        async move { must(store.list_requests(&RequestFilter { limit, ..RequestFilter::default() }).await, "list") }
    };
    assert_eq!(ids(list(0).await), newest(100), "limit 0 means the default of 100");
    assert_eq!(ids(list(1).await), newest(1));
    assert_eq!(ids(list(250).await), newest(250));
    assert_eq!(ids(list(5000).await), newest(1000), "lists are capped at 1000");
}

/// A transition's result is saved, returned and audited together.
pub async fn update_request_saves_and_audits<S: Store>(store: Arc<S>) {
    let request = pending("r1", PrincipalRef::agent("bot"), 1);
    must(store.insert_request(request.clone(), Vec::new()).await, "insert");
    let now = T0.plus(MINUTE);
    let exclusions = exclusions_for(&request);
    let updated = must(
        store
            .update_request(
                "r1",
                Box::new(move |r: &Request| {
                    let approver = ops_approver("dana", "dana@example.com");
                    match lifecycle::vote(r, &approver, &exclusions, VoteKind::Approve, None, now).map(|m| m.request) {
                        Ok(next) => Update {
                            save: Some(next),
                            events: vec![AuditDraft::raw("user:dana", "approval.accepted", json!({"id": "r1"}))],
                            result: Ok(()),
                        },
                        Err(refusal) => Update { save: None, events: Vec::new(), result: Err(refusal) },
                    }
                }),
            )
            .await,
        "approve",
    );
    assert_eq!(updated.result, Ok(()));
    assert_eq!(updated.request.status, Status::Approved);
    assert_eq!(updated.request.release_by, Some(now.plus(10 * MINUTE)));
    assert_eq!(must(store.request("r1").await, "get"), Some(updated.request.clone()));
    let listed = must(
        store.list_requests(&RequestFilter { status: Some(Status::Approved), ..RequestFilter::default() }).await,
        "list approved",
    );
    assert_eq!(listed, vec![updated.request]);
    let log = verified_log(&*store).await;
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].actor.as_str(), log[0].kind.as_str()), ("user:dana", "approval.accepted"));
}

/// A refused transition changes nothing, but its events are still
/// recorded: refused attempts are part of the audit trail.
pub async fn update_request_audits_refusals<S: Store>(store: Arc<S>) {
    let request = pending("r1", PrincipalRef::agent("bot"), 1);
    must(store.insert_request(request.clone(), Vec::new()).await, "insert");
    let exclusions = exclusions_for(&request);
    let updated = must(
        store
            .update_request(
                "r1",
                Box::new(move |r: &Request| {
                    // The requester approving itself.
                    let approver = Approver {
                        principal: PrincipalRef::agent("bot"),
                        person: PersonKey::from_email("bot@agents"),
                        groups: vec!["ops".to_owned()],
                    };
                    let refusal = lifecycle::vote(r, &approver, &exclusions, VoteKind::Approve, None, T0).err();
                    Update {
                        save: None,
                        events: vec![AuditDraft::raw(
                            "agent:bot",
                            "attempt.refused",
                            json!({"id": "r1", "code": refusal.as_ref().map(Refusal::code)}),
                        )],
                        result: refusal.map_or(Ok(()), Err),
                    }
                }),
            )
            .await,
        "self-approval attempt",
    );
    assert_eq!(updated.result, Err(Refusal::SelfApproval));
    assert_eq!(updated.request, request, "a refused move returns the request unchanged");
    assert_eq!(must(store.request("r1").await, "get"), Some(request));
    let log = verified_log(&*store).await;
    assert_eq!(log.len(), 1, "the refused attempt must be audited");
    assert_eq!(log[0].kind, "attempt.refused");
    assert_eq!(log[0].body_value(), json!({"id": "r1", "code": "self_approval"}));
}

/// Updating a request that does not exist is `NotFound`; the transition
/// never runs and nothing is audited.
pub async fn update_unknown_request_is_not_found<S: Store>(store: Arc<S>) {
    must(store.insert_request(pending("r1", PrincipalRef::agent("bot"), 1), Vec::new()).await, "insert");
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let err = store
        .update_request(
            "nope",
            Box::new(move |r: &Request| {
                flag.store(true, Ordering::SeqCst);
                Update { save: Some(r.clone()), events: vec![draft("x", json!({}))], result: Ok(()) }
            }),
        )
        .await;
    assert!(matches!(err, Err(StoreError::NotFound { .. })), "unknown id: {err:?}");
    assert!(!ran.load(Ordering::SeqCst), "the transition must not run for an unknown request");
    assert!(verified_log(&*store).await.is_empty());
}

// ---- races ------------------------------------------------------------------

/// One contender in the race to decide a pending request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Move {
    Approve(usize),
    Deny(usize),
    Cancel,
    Expire,
    Revoke,
}

impl Move {
    const ALL: [Move; 7] =
        [Move::Approve(0), Move::Approve(1), Move::Deny(2), Move::Deny(3), Move::Cancel, Move::Expire, Move::Revoke];

    fn name(self) -> String {
        format!("{self:?}")
    }

    /// The status the request is in if this move wins.
    fn target(self) -> Status {
        match self {
            Move::Approve(_) => Status::Approved,
            Move::Deny(_) => Status::Denied,
            Move::Cancel => Status::Cancelled,
            Move::Expire => Status::Expired,
            Move::Revoke => Status::Revoked,
        }
    }

    /// The transition, built from the state machine. Every contender acts
    /// only on a still-pending request, as a decision does: whoever the
    /// store runs first wins, and every later one must see the decided
    /// request and be refused. A store that let two closures read the same
    /// pending request would let two of them win.
    fn transition(self, id: String) -> UpdateFn {
        Box::new(move |r: &Request| {
            let now = T0.plus(MINUTE);
            let next = if r.status == Status::Pending {
                match self {
                    Move::Approve(i) | Move::Deny(i) => {
                        let approver = ops_approver(&format!("ap{i}"), &format!("ap{i}@example.com"));
                        let kind = if matches!(self, Move::Approve(_)) { VoteKind::Approve } else { VoteKind::Deny };
                        lifecycle::vote(r, &approver, &exclusions_for(r), kind, None, now).map(|m| m.request)
                    }
                    Move::Cancel => lifecycle::cancel(r, &r.principal, now).map(|m| m.request),
                    Move::Expire => {
                        let late = r.expires_at.unwrap_or(now);
                        lifecycle::settle_deadline(r, late)
                            .map(|m| m.request)
                            .ok_or(Refusal::NotOpen(r.status.as_str()))
                    }
                    Move::Revoke => lifecycle::revoke(r, "agent `bot` was revoked", now).map(|m| m.request),
                }
            } else {
                Err(Refusal::NotPending(r.status.as_str()))
            };
            match next {
                Ok(next) => Update {
                    events: vec![draft(
                        "race.won",
                        json!({"id": id, "move": self.name(), "status": next.status.as_str()}),
                    )],
                    save: Some(next),
                    result: Ok(()),
                },
                Err(refusal) => Update {
                    save: None,
                    events: vec![draft("race.refused", json!({"id": id, "move": self.name(), "code": refusal.code()}))],
                    result: Err(refusal),
                },
            }
        })
    }
}

/// Fifty times: seven tasks race to decide one pending request (two
/// approvals each completing the quorum, two denials, cancel, expire,
/// revoke). Exactly one wins, the stored status is the winner's, and
/// exactly one winning transition is audited.
pub async fn racing_final_moves_have_one_winner<S: Store>(store: Arc<S>) {
    for round in 0..50usize {
        let id = format!("race-{round:02}");
        must(store.insert_request(pending(&id, PrincipalRef::agent("bot"), 1), Vec::new()).await, "insert");
        let before = head_seq(&*store).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(Move::ALL.len()));
        let mut tasks = Vec::new();
        // Rotate the spawn order so that no move is always first in line.
        for k in 0..Move::ALL.len() {
            let m = Move::ALL[(k + round) % Move::ALL.len()];
            let (store, barrier, id) = (Arc::clone(&store), Arc::clone(&barrier), id.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                (m, store.update_request(&id, m.transition(id.clone())).await)
            }));
        }
        let mut winners = Vec::new();
        let mut outcomes = Vec::new();
        for task in tasks {
            let (m, updated) = must(task.await, "race task");
            let updated = must(updated, "update_request");
            if updated.result.is_ok() {
                winners.push(m);
            }
            outcomes.push((m, updated));
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one move may win, got {winners:?}");
        let winner = winners[0];
        let stored = must(store.request(&id).await, "get");
        assert_eq!(stored.as_ref().map(|r| r.status), Some(winner.target()), "round {round}: winner {winner:?}");
        for (m, updated) in &outcomes {
            // Losers ran after the winner, so they saw its result.
            assert_eq!(updated.request.status, winner.target(), "round {round}: {m:?} saw another state");
            if *m != winner {
                assert!(updated.result.is_err(), "round {round}: {m:?} must be refused");
            }
        }

        let events: Vec<AuditEvent> =
            events_after(&*store, before).await.into_iter().filter(|e| body_id(e).as_deref() == Some(&id)).collect();
        let won: Vec<Value> =
            events.iter().filter(|e| e.kind == "race.won").map(|e| e.body_value()["move"].clone()).collect();
        assert_eq!(won, vec![json!(winner.name())], "round {round}: exactly one transition event, the winner's");
        let refused = events.iter().filter(|e| e.kind == "race.refused").count();
        assert_eq!(refused, Move::ALL.len() - 1, "round {round}: every refused attempt is audited");
    }
    verified_log(&*store).await;
}

/// Quorum 3; ten people approve at once, each also through a second
/// identity and a repeated call. The request is approved exactly once, by
/// three distinct people, and every other attempt is refused and audited.
pub async fn quorum_counts_distinct_people_under_concurrency<S: Store>(store: Arc<S>) {
    let request = pending("q1", PrincipalRef::agent("bot"), 3);
    must(store.insert_request(request.clone(), Vec::new()).await, "insert");
    let mut attempts = Vec::new();
    for i in 0..10 {
        attempts.push(ops_approver(&format!("p{i}"), &format!("p{i}@example.com")));
        attempts.push(ops_approver(&format!("p{i}-sso"), &format!("P{i}@Example.com")));
        attempts.push(ops_approver(&format!("p{i}"), &format!("p{i}@example.com")));
    }
    let total = attempts.len();
    let barrier = Arc::new(tokio::sync::Barrier::new(total));
    let mut tasks = Vec::new();
    for approver in attempts {
        let (store, barrier, exclusions) = (Arc::clone(&store), Arc::clone(&barrier), exclusions_for(&request));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let by = approver.principal.to_string();
            let update: UpdateFn = Box::new(move |r: &Request| {
                match lifecycle::vote(r, &approver, &exclusions, VoteKind::Approve, None, T0.plus(MINUTE))
                    .map(|m| m.request)
                {
                    Ok(next) => {
                        let mut events = vec![AuditDraft::raw(
                            by.clone(),
                            "approval.accepted",
                            json!({"id": "q1", "person": approver.person.as_str()}),
                        )];
                        if r.status == Status::Pending && next.status == Status::Approved {
                            events.push(draft("action.approved", json!({"id": "q1"})));
                        }
                        Update { save: Some(next), events, result: Ok(()) }
                    }
                    Err(refusal) => Update {
                        save: None,
                        events: vec![AuditDraft::raw(
                            by.clone(),
                            "attempt.refused",
                            json!({"id": "q1", "code": refusal.code()}),
                        )],
                        result: Err(refusal),
                    },
                }
            });
            store.update_request("q1", update).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        let updated = must(must(task.await, "vote task"), "update_request");
        match updated.result {
            Ok(()) => accepted += 1,
            Err(refusal) => assert!(
                matches!(refusal, Refusal::DuplicateVote | Refusal::NotPending(_)),
                "only duplicates and late votes may be refused, not {refusal:?}"
            ),
        }
    }
    assert_eq!(accepted, 3, "exactly the quorum of approvals is accepted");

    let stored = must(must(store.request("q1").await, "get").ok_or("the request is gone"), "get");
    assert_eq!(stored.status, Status::Approved);
    let people: BTreeSet<&PersonKey> = stored.approvals().map(|v| &v.person).collect();
    assert_eq!(stored.approvals().count(), 3, "three approvals are recorded");
    assert_eq!(people.len(), 3, "the approvals are three distinct people");

    let events = verified_log(&*store).await;
    let count = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(count("action.approved"), 1, "the request is approved exactly once");
    assert_eq!(count("approval.accepted"), 3);
    assert_eq!(count("attempt.refused"), total - 3, "every refused attempt is audited");
    let accepted_people: BTreeSet<String> =
        events.iter().filter(|e| e.kind == "approval.accepted").map(|e| e.body_value()["person"].to_string()).collect();
    assert_eq!(accepted_people.len(), 3);
}

// ---- expiry -----------------------------------------------------------------

/// Due means open and past the deadline that applies to the status:
/// `expires_at` while pending, `release_by` while approved.
pub async fn due_requests_are_open_and_past_deadline<S: Store>(store: Arc<S>) {
    let now = T0.plus(60 * MINUTE);
    let at = |delta: i64| Some(Timestamp(now.as_millis() + delta));
    let bot = PrincipalRef::agent("bot");
    let mut requests = Vec::new();
    let mut add = |id: &str, status: Status, expires_at: Option<Timestamp>, release_by: Option<Timestamp>| {
        let mut r = with_status(pending(id, bot.clone(), 1), status);
        r.expires_at = expires_at;
        r.release_by = release_by;
        requests.push(r);
    };
    add("pending-past", Status::Pending, at(-1), None);
    add("pending-now", Status::Pending, at(0), None);
    add("pending-future", Status::Pending, at(1), None);
    add("pending-no-deadline", Status::Pending, None, None);
    // An approved request's own deadline is release_by; a past expires_at
    // no longer applies once it is approved.
    add("approved-past", Status::Approved, at(1000), at(-1));
    add("approved-future", Status::Approved, at(-1000), at(1));
    add("released", Status::Released, at(-1000), at(-1000));
    add("allowed", Status::Allowed, at(-1000), None);
    add("denied", Status::Denied, at(-1000), None);
    add("expired", Status::Expired, at(-1000), None);
    add("cancelled", Status::Cancelled, at(-1000), None);
    add("revoked", Status::Revoked, at(-1000), at(-1000));
    add("to-deny", Status::Pending, at(-1), None);
    add("to-approve", Status::Pending, at(1000), None);
    for r in &requests {
        must(store.insert_request(r.clone(), Vec::new()).await, "insert");
    }
    // Deadlines follow status changes.
    set_status(&*store, "to-deny", Status::Denied, "deny").await;
    must(
        store
            .update_request(
                "to-approve",
                Box::new(move |r: &Request| {
                    let mut next = with_status(r.clone(), Status::Approved);
                    next.release_by = Some(Timestamp(now.as_millis() - 5));
                    Update { save: Some(next), events: Vec::new(), result: Ok(()) }
                }),
            )
            .await,
        "approve",
    );

    let due: BTreeSet<String> = must(store.due_requests(now).await, "due").into_iter().collect();
    let expected: BTreeSet<String> =
        ["pending-past", "pending-now", "approved-past", "to-approve"].into_iter().map(str::to_owned).collect();
    assert_eq!(due, expected, "due requests");
    assert!(must(store.due_requests(T0).await, "due early").is_empty(), "nothing is due before any deadline");
}

// ---- audit ------------------------------------------------------------------

/// Appends return the newest sequence number; pages read back every event,
/// numbered from 1 without gaps, as one verifiable chain.
pub async fn audit_pages_form_one_chain<S: Store>(store: Arc<S>) {
    let mut drafts = Vec::new();
    let mut total = 0u64;
    for size in [1usize, 5, 17, 100, 127] {
        let batch: Vec<AuditDraft> = (0..size)
            .map(|i| {
                let n = drafts.len() + i;
                AuditDraft::raw(
                    format!("agent:a{}", n % 3),
                    "test.event",
                    json!({"n": n, "text": "é\"\n", "z": [1, 2]}),
                )
            })
            .collect();
        drafts.extend(batch.iter().cloned());
        total += size as u64;
        assert_eq!(must(store.append_audit(batch).await, "append"), total, "append returns the last seq");
    }

    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = must(store.audit_events(after, 7).await, "page");
        assert!(page.len() <= 7, "a page holds at most the limit");
        let Some(last) = page.last() else { break };
        after = last.seq;
        events.extend(page);
    }
    assert_eq!(events.len(), drafts.len());
    let mut verifier = ChainVerifier::new();
    for (i, (event, draft)) in events.iter().zip(&drafts).enumerate() {
        assert_eq!(event.seq, i as u64 + 1);
        assert_eq!(event.actor, draft.actor());
        assert_eq!(event.kind, draft.kind());
        assert_eq!(event.body_value(), must(draft.body(), "draft body"));
        must(verifier.push(event), "chain");
    }
    assert_eq!(verifier.finish().count, total);
    assert_eq!(events.first().map(|e| e.prev_hash.as_str()), Some(GENESIS_HASH));

    let tail = must(store.audit_events(total - 5, 100).await, "tail");
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), (total - 4..=total).collect::<Vec<_>>());
    assert!(must(store.audit_events(total, 100).await, "past the end").is_empty());
    assert_eq!(must(store.audit_events(0, 3).await, "first page"), events[..3].to_vec());
}

/// Many tasks appending at once still build one chain, and each call's
/// events are contiguous and in the order given.
pub async fn concurrent_appends_form_one_chain<S: Store>(store: Arc<S>) {
    const TASKS: usize = 16;
    const CALLS: usize = 25;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            for k in 0..CALLS {
                let batch: Vec<AuditDraft> = (0..1 + k % 3)
                    .map(|j| AuditDraft::raw(format!("agent:t{t}"), "test.concurrent", json!({"t": t, "k": k, "j": j})))
                    .collect();
                let last = must(store.append_audit(batch.clone()).await, "append");
                calls.push((last, batch));
            }
            calls
        }));
    }
    let mut calls = Vec::new();
    for task in tasks {
        calls.extend(must(task.await, "append task"));
    }
    let events = verified_log(&*store).await;
    let expected: usize = calls.iter().map(|(_, batch)| batch.len()).sum();
    assert_eq!(events.len(), expected, "every appended event is in the log, once");
    let by_seq: BTreeMap<u64, &AuditEvent> = events.iter().map(|e| (e.seq, e)).collect();
    for (last, batch) in &calls {
        let first = last + 1 - batch.len() as u64;
        for (offset, draft) in batch.iter().enumerate() {
            let event = by_seq.get(&(first + offset as u64));
            assert_eq!(
                event.map(|e| e.body_value()),
                Some(must(draft.body(), "draft body")),
                "a call's events are contiguous"
            );
        }
    }
}

// ---- operations -------------------------------------------------------------

/// Every commit moves the change counter, and a healthy store answers ping.
pub async fn change_counter_moves_on_commit<S: Store>(store: Arc<S>) {
    must(store.ping().await, "ping");
    let c0 = must(store.change_counter().await, "counter");
    must(store.append_audit(vec![draft("test.event", json!({}))]).await, "append");
    let c1 = must(store.change_counter().await, "counter");
    assert_ne!(c0, c1, "an audit append must move the counter");
    must(store.insert_request(pending("r1", PrincipalRef::agent("bot"), 1), Vec::new()).await, "insert");
    let c2 = must(store.change_counter().await, "counter");
    assert_ne!(c1, c2, "an insert must move the counter");
    set_status(&*store, "r1", Status::Cancelled, "cancel").await;
    let c3 = must(store.change_counter().await, "counter");
    assert_ne!(c2, c3, "an update must move the counter");
    assert_eq!(must(store.change_counter().await, "counter"), c3, "no commit, no change");
}

// ---- key-value area -----------------------------------------------------------

/// Compare-and-set sets, replaces and deletes only from the expected value,
/// and racing setters get exactly one winner.
pub async fn kv_compare_and_set_has_one_winner<S: Store>(store: Arc<S>) {
    assert_eq!(must(store.kv_get("ns", "k").await, "get"), None);
    assert!(!must(store.kv_compare_and_set("ns", "k", Some("x".into()), Some("y".into())).await, "cas"));
    assert!(must(store.kv_compare_and_set("ns", "k", None, Some("1".into())).await, "cas"));
    assert!(!must(store.kv_compare_and_set("ns", "k", None, Some("2".into())).await, "cas"), "already present");
    assert_eq!(must(store.kv_get("ns", "k").await, "get").as_deref(), Some("1"));
    assert_eq!(must(store.kv_get("other", "k").await, "get"), None, "namespaces are separate");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.kv_compare_and_set("ns", "k", Some("1".into()), Some(format!("v{i}"))).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if must(must(task.await.map_err(|e| StoreError::Internal(e.to_string())), "join"), "cas") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one racing setter wins");
    let current = must(store.kv_get("ns", "k").await, "get");
    assert!(must(store.kv_compare_and_set("ns", "k", current, None).await, "delete"));
    assert_eq!(must(store.kv_get("ns", "k").await, "get"), None);
}

/// Entries set with an expiry are deleted by the purge once it has passed,
/// and only those; a plain compare-and-set clears an entry's expiry.
pub async fn kv_expired_entries_are_purged<S: Store>(store: Arc<S>) {
    let set = |key: &'static str, expires_at: Option<Timestamp>| {
        let store = Arc::clone(&store);
        async move {
            must(
                store.kv_compare_and_set_expiring("sessions", key, None, Some(format!("v-{key}")), expires_at).await,
                "set",
            )
        }
    };
    assert!(set("early", Some(T0)).await);
    assert!(set("late", Some(T0.plus(MINUTE))).await);
    assert!(set("forever", None).await);
    assert!(set("renewed", Some(T0)).await);
    assert!(!set("early", Some(T0)).await, "the expiring set is a compare-and-set too");
    assert!(must(store.kv_compare_and_set("plain", "k", None, Some("v".into())).await, "plain set"));
    // A plain set on an expiring entry leaves it without an expiry.
    assert!(must(
        store.kv_compare_and_set("sessions", "renewed", Some("v-renewed".into()), Some("kept".into())).await,
        "renew"
    ));
    assert_eq!(must(store.kv_get("sessions", "early").await, "get").as_deref(), Some("v-early"), "kept until purged");

    assert_eq!(must(store.kv_purge_expired(Timestamp::from_millis(T0.as_millis() - 1)).await, "purge before"), 0);
    assert_eq!(must(store.kv_purge_expired(T0).await, "purge at T0"), 1, "expiry is inclusive");
    assert_eq!(must(store.kv_get("sessions", "early").await, "get"), None);
    assert_eq!(must(store.kv_get("sessions", "late").await, "get").as_deref(), Some("v-late"));
    assert_eq!(must(store.kv_purge_expired(T0.plus(60 * MINUTE)).await, "purge later"), 1);
    assert_eq!(must(store.kv_get("sessions", "late").await, "get"), None);
    assert_eq!(must(store.kv_purge_expired(T0.plus(600 * MINUTE)).await, "purge again"), 0);
    assert_eq!(must(store.kv_get("sessions", "forever").await, "get").as_deref(), Some("v-forever"));
    assert_eq!(must(store.kv_get("sessions", "renewed").await, "get").as_deref(), Some("kept"));
    assert_eq!(must(store.kv_get("plain", "k").await, "get").as_deref(), Some("v"));
    // A purged key can be set afresh.
    assert!(set("early", None).await);
}
