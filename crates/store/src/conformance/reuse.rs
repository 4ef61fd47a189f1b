//! Scenarios for the lookup behind `?reuse=open`: a requester's open
//! requests for exactly one action, by fingerprint.

use std::sync::Arc;
use std::time::Duration;

use countersign_core::{testing, Fingerprint, PrincipalRef, Request, Status, Timestamp};
use serde_json::json;

use super::lists::insert_all;
use super::{must, set_status, with_status, MINUTE, T0};
use crate::Store;

/// Restarting `unit` on `prod-web`: the same `unit`, the same action.
fn restart(id: &str, by: PrincipalRef, unit: &str, created_at: Timestamp) -> Request {
    let action = testing::action("shell.exec", "prod-web", json!({"argv": ["systemctl", "restart", unit]}));
    testing::pending(id, by, action, vec![testing::requirement("needs-ops", &["ops"], 1)], created_at)
}

fn at(millis: u64) -> Timestamp {
    T0.plus(Duration::from_millis(millis))
}

async fn found<S: Store>(
    store: &S,
    by: &PrincipalRef,
    fingerprint: &Fingerprint,
    now: Timestamp,
    limit: usize,
) -> Vec<String> {
    must(store.open_requests_by_fingerprint(by, fingerprint, now, limit).await, "open_requests_by_fingerprint")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Only the requester's own open requests for exactly this action, within
/// their deadline, come back: approved ones first, then pending ones, each
/// oldest first (ties by id); released, allowed and closed ones never, nor
/// another requester's with the same fingerprint.
pub async fn open_requests_by_fingerprint_are_the_requesters_open_ones<S: Store>(store: Arc<S>) {
    let bot = PrincipalRef::agent("bot");
    let same = |id: &str, millis: u64| restart(id, bot.clone(), "web", at(millis));
    let fingerprint = same("probe", 0).fingerprint;
    let now = T0.plus(5 * MINUTE);
    let mut all = vec![
        same("p-old", 10),
        same("p-tie-b", 15),
        same("p-tie-a", 15),
        same("p-new", 20),
        with_status(same("a-new", 30), Status::Approved),
        with_status(same("a-old", 5), Status::Approved),
    ];
    for (id, status) in [
        ("released", Status::Released),
        ("allowed", Status::Allowed),
        ("denied", Status::Denied),
        ("cancelled", Status::Cancelled),
        ("expired", Status::Expired),
        ("revoked", Status::Revoked),
    ] {
        all.push(with_status(same(id, 1), status));
    }
    // Open, but past its deadline (the sweep has not closed it yet): a
    // deadline at `now` is past.
    all.push(Request { expires_at: Some(now), ..same("due", 2) });
    // Approved long ago: its release deadline passed.
    all.push(Request { release_by: Some(now), ..with_status(same("a-stale", 3), Status::Approved) });
    // Pending with no deadline at all is within it.
    all.push(Request { expires_at: None, ..same("p-forever", 25) });
    // Another requester's, even with the same fingerprint (the user `bot`
    // is not the agent `bot`), and another action of the requester.
    all.push(Request {
        fingerprint: fingerprint.clone(),
        ..restart("theirs", PrincipalRef::agent("ci"), "web", at(0))
    });
    all.push(Request {
        fingerprint: fingerprint.clone(),
        ..restart("user-bot", PrincipalRef::user("bot"), "web", at(0))
    });
    all.push(restart("other-unit", bot.clone(), "api", at(0)));
    insert_all(&store, all).await;

    let open = ["a-old", "a-new", "p-old", "p-tie-a", "p-tie-b", "p-new", "p-forever"];
    assert_eq!(found(&*store, &bot, &fingerprint, now, 0).await, open, "the requester's open ones, in order");
    assert_eq!(found(&*store, &bot, &fingerprint, now, 1).await, ["a-old"], "approved before pending");
    assert_eq!(found(&*store, &bot, &fingerprint, now, 3).await, open[..3], "the limit counts matching rows only");
    assert_eq!(found(&*store, &PrincipalRef::agent("ci"), &fingerprint, now, 0).await, ["theirs"]);
    assert_eq!(found(&*store, &PrincipalRef::user("bot"), &fingerprint, now, 0).await, ["user-bot"]);
    assert!(found(&*store, &PrincipalRef::agent("nobody"), &fingerprint, now, 0).await.is_empty());
    let unknown = Fingerprint::from_stored("sha256:0000".to_owned());
    assert!(found(&*store, &bot, &unknown, now, 0).await.is_empty(), "an unknown fingerprint finds nothing");
    // Before the deadlines passed, those requests were within them.
    let earlier = at(2);
    assert_eq!(
        found(&*store, &bot, &fingerprint, earlier, 3).await,
        ["a-stale", "a-old", "a-new"],
        "an approval within its release deadline is found"
    );

    // Moves keep the lookup current: released and closed requests leave it.
    set_status(&*store, "a-old", Status::Released, "release").await;
    set_status(&*store, "p-old", Status::Denied, "deny").await;
    set_status(&*store, "p-tie-a", Status::Cancelled, "cancel").await;
    set_status(&*store, "p-new", Status::Expired, "expire").await;
    set_status(&*store, "p-forever", Status::Approved, "approve").await;
    assert_eq!(
        found(&*store, &bot, &fingerprint, now, 0).await,
        ["p-forever", "a-new", "p-tie-b"],
        "after release, denial, cancellation, expiry and approval"
    );
}

/// A requester with more than 1,000 newer open requests of the same kind
/// on the same resource (other payloads) still finds its request for this
/// action: the lookup is by fingerprint, not a scan of the newest.
pub async fn open_requests_by_fingerprint_finds_past_a_thousand_others<S: Store>(store: Arc<S>) {
    let bot = PrincipalRef::agent("bot");
    let target = restart("target", bot.clone(), "web", at(0));
    let approved = with_status(restart("target-approved", bot.clone(), "db", at(0)), Status::Approved);
    let mut all = vec![target.clone(), approved.clone()];
    for i in 0..1005u64 {
        all.push(restart(&format!("flood-p-{i:04}"), bot.clone(), &format!("unit-{i}"), at(100 + i)));
        let flood = restart(&format!("flood-a-{i:04}"), bot.clone(), &format!("unit-a-{i}"), at(100 + i));
        all.push(with_status(flood, Status::Approved));
    }
    insert_all(&store, all).await;
    let now = T0.plus(5 * MINUTE);
    assert_eq!(
        found(&*store, &bot, &target.fingerprint, now, 1).await,
        ["target"],
        "the pending request past 2,010 newer open ones of that kind and resource"
    );
    assert_eq!(
        found(&*store, &bot, &approved.fingerprint, now, 1).await,
        ["target-approved"],
        "the approved request past 1,005 newer approved ones"
    );
}
