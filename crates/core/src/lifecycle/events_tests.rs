//! The audit events each move returns: who causes them, in which order,
//! and with which body.

use serde_json::json;

use super::tests::{exclusions, pending, requirement, user, T0};
use super::*;
use crate::events::{Actor, Caused, Event};
use crate::{Outcome, OutcomeStatus};

fn kinds(moved: &Moved) -> Vec<(String, &'static str)> {
    moved.events.iter().map(|c| (c.actor.to_string(), c.event.kind())).collect()
}

fn body(caused: &Caused) -> serde_json::Value {
    caused.event.body().unwrap()
}

#[test]
fn an_approval_records_the_vote_and_the_decision_it_completes() {
    let r = pending(vec![requirement("p", &["dba"], 2)]);
    let (dana, dave) = (user("dana", "dana@corp", &["dba"]), user("dave", "dave@corp", &["dba"]));
    let first = vote(&r, &dana, &exclusions(), VoteKind::Approve, Some("ok".into()), T0).unwrap();
    assert_eq!(kinds(&first), [("user:dana".to_owned(), "approval.accepted")]);
    assert_eq!(
        body(&first.events[0]),
        json!({"id": "r1", "fingerprint": r.fingerprint, "person": "dana@corp", "groups": ["dba"],
               "comment": "ok", "login": {"method": "credential"}})
    );
    let second = vote(&first.request, &dave, &exclusions(), VoteKind::Approve, None, T0).unwrap();
    assert_eq!(
        kinds(&second),
        [("user:dave".to_owned(), "approval.accepted"), ("system".to_owned(), "action.approved")]
    );
    assert_eq!(body(&second.events[0])["comment"], json!(null), "no comment is written as null");
    assert_eq!(
        body(&second.events[1]),
        json!({"id": "r1", "reason": "every approval requirement is met", "release_by": second.request.release_by})
    );
}

#[test]
fn a_denial_records_the_vote_and_the_end_and_a_late_veto_keeps_release_by() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    let dana = user("dana", "dana@corp", &["dba"]);
    let denied = vote(&r, &dana, &exclusions(), VoteKind::Deny, None, T0).unwrap();
    assert_eq!(kinds(&denied), [("user:dana".to_owned(), "denial.accepted"), ("system".to_owned(), "action.denied")]);
    assert_eq!(body(&denied.events[1]), json!({"id": "r1", "reason": "denied by dana", "release_by": null}));

    let approved = vote(&r, &dana, &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    let vetoed =
        vote(&approved, &user("dave", "dave@corp", &["dba"]), &exclusions(), VoteKind::Deny, None, T0).unwrap();
    assert_eq!(body(&vetoed.events[1])["release_by"], json!(approved.release_by.unwrap()));
}

#[test]
fn a_fresh_login_is_written_with_its_time() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    let login = Assurance::IdpLogin { auth_time: T0, max_age: std::time::Duration::from_secs(60) };
    let moved =
        vote_with(&r, &user("dana", "dana@corp", &["dba"]), &exclusions(), VoteKind::Approve, None, T0, login).unwrap();
    assert_eq!(body(&moved.events[0])["login"], json!({"method": "idp_session", "auth_time": T0}));
}

#[test]
fn the_requesters_moves_are_theirs_and_closing_moves_the_systems() {
    let bot = PrincipalRef::agent("bot");
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    let cancelled = cancel(&r, &bot, T0).unwrap();
    assert_eq!(
        cancelled.events,
        [Caused::by(&bot, Event::ActionCancelled(crate::events::Cancelled { id: "r1".into() }))]
    );

    let revoked = revoke(&r, "policy changed", T0).unwrap();
    assert_eq!(kinds(&revoked), [("system".to_owned(), "action.revoked")]);
    assert_eq!(body(&revoked.events[0]), json!({"id": "r1", "reason": "policy changed"}));

    let expired = settle_deadline(&r, r.expires_at.unwrap()).unwrap();
    assert_eq!(body(&expired.events[0]), json!({"id": "r1", "reason": "the deadline passed without a decision"}));
    assert_eq!(expired.events[0].actor, Actor::System);

    let approved =
        vote(&r, &user("dana", "dana@corp", &["dba"]), &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    let released = release(&approved, &bot, T0).unwrap();
    assert_eq!(kinds(&released), [("agent:bot".to_owned(), "action.released")]);
    assert_eq!(body(&released.events[0]), json!({"id": "r1", "fingerprint": r.fingerprint}));

    let outcome = Outcome {
        status: OutcomeStatus::Failed,
        exit_code: Some(2),
        summary: None,
        output_sha256: None,
        reported_at: T0,
    };
    let reported = report_outcome(&released.request, &bot, outcome.clone()).unwrap();
    assert_eq!(body(&reported.events[0]), json!({"id": "r1", "fingerprint": r.fingerprint, "outcome": outcome}));

    let commented = comment(&r, &PrincipalRef::user("ann"), "why?".into(), T0);
    assert_eq!(kinds(&commented), [("user:ann".to_owned(), "comment.added")]);
    assert_eq!(body(&commented.events[0]), json!({"id": "r1", "text": "why?"}));
}

#[test]
fn withdrawn_votes_are_recorded_or_the_request_revoked() {
    let r = pending(vec![requirement("p", &["dba"], 2)]);
    let dana = user("dana", "dana@corp", &["dba"]);
    let one = vote(&r, &dana, &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    let gone = [dana.principal.clone(), PrincipalRef::user("zed")];
    let waiting = withdraw_votes(&one, &gone, T0).unwrap();
    assert_eq!(kinds(&waiting), [("system".to_owned(), "votes.withdrawn")], "only voters' votes are withdrawn");
    assert_eq!(body(&waiting.events[0]), json!({"id": "r1", "by": "user:dana"}));

    let approved =
        vote(&one, &user("erin", "erin@corp", &["dba"]), &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    let revoked = withdraw_votes(&approved, &gone[..1], T0).unwrap();
    assert_eq!(kinds(&revoked), [("system".to_owned(), "action.revoked")]);
    assert_eq!(body(&revoked.events[0])["reason"], json!(revoked.request.reason));
}

#[test]
fn revoking_an_identity_revokes_its_requests_then_withdraws_its_votes() {
    let dana = user("dana", "dana@corp", &["dba"]);
    let mut own = pending(vec![requirement("p", &["dba"], 1)]);
    own.id = "own".into();
    own.principal = dana.principal.clone();
    let mut closed = own.clone();
    closed.id = "closed".into();
    closed.status = Status::Denied;
    let base = pending(vec![requirement("p", &["dba"], 1)]);
    let approved = vote(&base, &dana, &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    let two = pending(vec![requirement("p", &["dba"], 2)]);
    let mut waiting = vote(&two, &dana, &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    waiting.id = "waiting".into();
    let mut untouched = pending(vec![requirement("p", &["dba"], 1)]);
    untouched.id = "untouched".into();

    let open = [approved, own, waiting, closed, untouched];
    let cascade = revoke_identity(&dana.principal, &open, T0);
    let moved: Vec<(&str, &str)> =
        cascade.moves.iter().flat_map(|m| m.events.iter().map(|c| (m.request.id.as_str(), c.event.kind()))).collect();
    assert_eq!(moved, [("own", "action.revoked"), ("r1", "action.revoked"), ("waiting", "votes.withdrawn")]);
    assert_eq!(body(&cascade.moves[0].events[0])["reason"], json!("user `dana` was revoked"));
    assert_eq!(cascade.skipped, [("closed".to_owned(), Refusal::NotOpen("denied"))]);
    let revoked: Vec<String> = cascade.revoked().into_iter().map(|r| r.id).collect();
    assert_eq!(revoked, ["own", "r1"]);
}
