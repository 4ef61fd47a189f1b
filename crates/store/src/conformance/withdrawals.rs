//! Scenario for revoking an approver: its votes on others' open requests
//! stop counting in the same transaction that revokes it.

use std::collections::BTreeSet;
use std::sync::Arc;

use countersign_core::{PersonKey, PrincipalRef, Request, Status, Vote, VoteKind};

use super::{head_seq, must, new_user, pending, verified_log, with_status, MINUTE, T0};
use crate::Store;

fn approval(by: &str) -> Vote {
    Vote {
        kind: VoteKind::Approve,
        by: PrincipalRef::user(by),
        person: PersonKey::from_email(&format!("{by}@example.com")),
        groups: vec!["ops".to_owned()],
        comment: None,
        at: T0,
        withdrawn_at: None,
    }
}

fn voted(mut request: Request, by: &[&str]) -> Request {
    request.votes = by.iter().map(|b| approval(b)).collect();
    request
}

/// An approved request that loses its quorum is revoked (and returned); one
/// that keeps it stays approved; a pending one keeps waiting; a closed one
/// is left alone. Each change is audited.
pub async fn revoke_user_withdraws_its_votes<S: Store>(store: Arc<S>) {
    must(store.create_user(new_user("vic", "vic@example.com", &["ops"]), Vec::new()).await, "vic");
    let bot = PrincipalRef::agent("bot");
    let lost = voted(with_status(pending("v-lost", bot.clone(), 1), Status::Approved), &["vic"]);
    let kept = voted(with_status(pending("v-kept", bot.clone(), 1), Status::Approved), &["vic", "wes"]);
    let waiting = voted(pending("v-waiting", bot.clone(), 2), &["vic"]);
    let released = voted(with_status(pending("v-released", bot.clone(), 1), Status::Released), &["vic"]);
    let others = voted(with_status(pending("v-others", bot, 1), Status::Approved), &["wes"]);
    for request in [&lost, &kept, &waiting, &released, &others] {
        must(store.insert_request(request.clone(), Vec::new()).await, "insert");
    }
    let before = head_seq(&*store).await;
    let t1 = T0.plus(3 * MINUTE);
    let revoked = must(store.revoke_user("vic", t1, Vec::new()).await, "revoke vic");
    let ids: Vec<&str> = revoked.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["v-lost"], "only the request that lost its quorum is revoked");

    let get = |id: &'static str| {
        let store = store.clone();
        async move {
            must(store.request(id).await, "get").unwrap_or_else(|| pending("missing", PrincipalRef::agent("-"), 0))
        }
    };
    let stored = get("v-lost").await;
    assert_eq!(stored.status, Status::Revoked);
    assert_eq!(Some(&stored), revoked.first(), "the returned request is the stored one");
    assert_eq!(stored.votes.first().and_then(|v| v.withdrawn_at), Some(t1), "the vote stays on record, withdrawn");
    assert!(stored.reason.contains("user:vic"), "{}", stored.reason);

    let stored = get("v-kept").await;
    assert_eq!((stored.status, stored.approvals().count()), (Status::Approved, 1));
    let stored = get("v-waiting").await;
    assert_eq!((stored.status, stored.approvals().count(), stored.votes.len()), (Status::Pending, 0, 1));
    assert_eq!(get("v-released").await, released, "a closed request is left alone");
    assert_eq!(get("v-others").await, others, "a request vic did not vote on is left alone");

    let log = verified_log(&*store).await;
    let after: BTreeSet<(String, String)> = log
        .iter()
        .filter(|e| e.seq > before)
        .map(|e| (e.kind.clone(), e.body_value()["id"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> =
        [("action.revoked", "v-lost"), ("votes.withdrawn", "v-kept"), ("votes.withdrawn", "v-waiting")]
            .into_iter()
            .map(|(k, id)| (k.to_owned(), id.to_owned()))
            .collect();
    assert_eq!(after, expected);
}
