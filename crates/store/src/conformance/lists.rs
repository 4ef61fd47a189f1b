//! Scenarios for lists: who sees what (filtered in the store, before the
//! limit) and paging with a cursor.

use std::sync::Arc;
use std::time::Duration;

use countersign_core::{PrincipalRef, Request, Status};

use super::{must, pending, set_status, with_status, T0};
use crate::{Audience, Cursor, RequestFilter, Store};

/// A pending request by `by` that members of `group` decide, created at
/// `T0 + millis`.
fn for_group(id: &str, by: PrincipalRef, group: &str, millis: u64) -> Request {
    let mut request = pending(id, by, 1);
    for requirement in &mut request.requirements {
        requirement.groups = vec![group.to_owned()];
    }
    request.created_at = T0.plus(Duration::from_millis(millis));
    request
}

/// Inserts `requests` from a few tasks at once.
pub(super) async fn insert_all<S: Store>(store: &Arc<S>, requests: Vec<Request>) {
    const TASKS: usize = 8;
    let requests = Arc::new(requests);
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (store, requests) = (Arc::clone(store), Arc::clone(&requests));
        tasks.push(tokio::spawn(async move {
            for request in requests.iter().skip(t).step_by(TASKS) {
                must(store.insert_request(request.clone(), Vec::new()).await, "insert");
            }
        }));
    }
    for task in tasks {
        must(task.await, "insert task");
    }
}

/// What a list must return: `all` filtered by `filter`'s fields, newest
/// first (ties by id, descending), after the cursor, up to the limit.
fn expected(all: &[Request], filter: &RequestFilter) -> Vec<String> {
    let mut matching: Vec<&Request> = all
        .iter()
        .filter(|r| filter.status.is_none_or(|s| r.status == s))
        .filter(|r| filter.principal.as_ref().is_none_or(|p| &r.principal == p))
        .filter(|r| filter.visible_to.as_ref().is_none_or(|a| a.admits(r)))
        .filter(|r| filter.after.as_ref().is_none_or(|c| (r.created_at, &r.id) < (c.created_at, &c.id)))
        .collect();
    matching.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let limit = match filter.limit {
        0 => 100,
        n => n.min(1000),
    };
    matching.into_iter().take(limit).map(|r| r.id.clone()).collect()
}

async fn ids<S: Store>(store: &S, filter: &RequestFilter) -> Vec<String> {
    must(store.list_requests(filter).await, "list_requests").into_iter().map(|r| r.id).collect()
}

fn audience(principal: Option<PrincipalRef>, groups: &[&str]) -> Audience {
    Audience { principal, groups: groups.iter().map(|g| (*g).to_owned()).collect() }
}

/// 1,005 newer pending requests for `dba` must not hide an SRE's older
/// ones: who may see a request is filtered before the limit, by the
/// requester and by the groups named in its requirements.
pub async fn list_requests_visible_to_filters_before_the_limit<S: Store>(store: Arc<S>) {
    let flood = PrincipalRef::agent("flood");
    let mut all: Vec<Request> =
        (0..1005u64).map(|i| for_group(&format!("flood-{i:04}"), flood.clone(), "dba", 1000 + i)).collect();
    // Older than the flood: an SRE request, a closed one, and the SRE's own.
    all.push(for_group("sre-1", PrincipalRef::agent("bot"), "sre", 10));
    all.push(for_group("sre-2", PrincipalRef::agent("bot"), "sre", 20));
    all.push(with_status(for_group("sre-denied", PrincipalRef::agent("bot"), "sre", 30), Status::Denied));
    all.push(for_group("alice-own", PrincipalRef::user("alice"), "dba", 40));
    // Another's request naming a group whose name contains alice's.
    all.push(for_group("sre-ops", PrincipalRef::agent("bot"), "sre-ops", 50));
    insert_all(&store, all.clone()).await;

    let alice = audience(Some(PrincipalRef::user("alice")), &["sre"]);
    let mine = RequestFilter { status: Some(Status::Pending), visible_to: Some(alice.clone()), ..Default::default() };
    assert_eq!(
        ids(&*store, &mine).await,
        vec!["alice-own", "sre-2", "sre-1"],
        "who may see a request is filtered before the limit"
    );
    let any_status = RequestFilter { visible_to: Some(alice.clone()), ..Default::default() };
    assert_eq!(ids(&*store, &any_status).await, expected(&all, &any_status));
    let dba = RequestFilter {
        status: Some(Status::Pending),
        visible_to: Some(audience(None, &["dba", "sre"])),
        limit: 300,
        ..Default::default()
    };
    assert_eq!(ids(&*store, &dba).await, expected(&all, &dba));
    let agent =
        RequestFilter { visible_to: Some(audience(Some(PrincipalRef::agent("bot")), &[])), ..Default::default() };
    assert_eq!(ids(&*store, &agent).await, vec!["sre-ops", "sre-denied", "sre-2", "sre-1"]);
    let nobody = RequestFilter { visible_to: Some(Audience::default()), ..Default::default() };
    assert!(ids(&*store, &nobody).await.is_empty(), "an audience with no keys sees nothing");
    // The user alice is not the agent alice, nor the other way round.
    let agent_alice =
        RequestFilter { visible_to: Some(audience(Some(PrincipalRef::agent("alice")), &[])), ..Default::default() };
    assert!(ids(&*store, &agent_alice).await.is_empty(), "a user's requests are not an agent's");

    // A status change moves the request between the audience's lists.
    let denied = set_status(&*store, "sre-1", Status::Denied, "deny").await;
    for request in &mut all {
        if request.id == "sre-1" {
            *request = denied.request.clone();
        }
    }
    assert_eq!(ids(&*store, &mine).await, vec!["alice-own", "sre-2"], "a decided request leaves the pending list");
    let closed = RequestFilter { status: Some(Status::Denied), visible_to: Some(alice), ..Default::default() };
    assert_eq!(ids(&*store, &closed).await, vec!["sre-denied", "sre-1"]);
    assert_eq!(ids(&*store, &closed).await, expected(&all, &closed));
}

/// Following cursors page by page reads every matching request exactly
/// once, in order, also when many share a creation time.
pub async fn list_requests_pages_with_a_cursor<S: Store>(store: Arc<S>) {
    let groups = ["dba", "sre", "web"];
    let mut all = Vec::new();
    for i in 0..240u64 {
        let by = if i % 5 == 0 { PrincipalRef::user("alice") } else { PrincipalRef::agent("bot") };
        // Twelve requests share each creation time.
        let mut request = for_group(&format!("p-{:03}", (i * 37) % 240), by, groups[(i % 3) as usize], i / 12);
        if i % 4 == 0 {
            request = with_status(request, Status::Denied);
        }
        all.push(request);
    }
    insert_all(&store, all.clone()).await;
    let filters = [
        RequestFilter { limit: 7, ..Default::default() },
        RequestFilter { status: Some(Status::Pending), limit: 11, ..Default::default() },
        RequestFilter {
            status: Some(Status::Pending),
            visible_to: Some(audience(Some(PrincipalRef::user("alice")), &["sre"])),
            limit: 5,
            ..Default::default()
        },
        RequestFilter { visible_to: Some(audience(None, &["dba", "web"])), limit: 12, ..Default::default() },
    ];
    for filter in filters {
        let whole = expected(&all, &RequestFilter { limit: 1000, after: None, ..filter.clone() });
        let mut read = Vec::new();
        let mut page_filter = filter.clone();
        for _ in 0..=all.len() {
            let page = must(store.list_requests(&page_filter).await, "list_requests");
            assert_eq!(
                page.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
                expected(&all, &page_filter),
                "page after {:?}",
                page_filter.after
            );
            let Some(last) = page.last() else { break };
            page_filter.after = Some(Cursor::after(last));
            read.extend(page.into_iter().map(|r| r.id));
        }
        assert_eq!(read, whole, "following the cursor reads every request once, in order: {filter:?}");
    }
    // A cursor is a position, not a row: one naming no stored request works.
    let between = Cursor { created_at: T0.plus(Duration::from_millis(10)), id: "p-1".to_owned() };
    let filter = RequestFilter { after: Some(between), limit: 30, ..Default::default() };
    assert_eq!(ids(&*store, &filter).await, expected(&all, &filter));
}
