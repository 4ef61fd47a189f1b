//! Tests of the approval rules, including property tests over arbitrary
//! sequences of moves.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::testing;
pub(super) use crate::testing::requirement;
use crate::{Action, OutcomeStatus, Requirement};

pub(super) const T0: Timestamp = Timestamp(1_000_000);

/// bot's request to delete a user on alice's behalf; owen owns bot.
pub(super) fn pending(requirements: Vec<Requirement>) -> Request {
    let action = Action {
        on_behalf_of: Some("alice".into()),
        ..testing::action("sql.execute", "prod-db", json!({"statement": "DELETE FROM users WHERE id = 7"}))
    };
    let request = testing::pending("r1", PrincipalRef::agent("bot"), action, requirements, T0);
    Request { owner: Some("owen".into()), ..request }
}

pub(super) fn user(name: &str, email: &str, groups: &[&str]) -> Approver {
    Approver {
        principal: PrincipalRef::user(name),
        person: PersonKey::from_email(email),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

pub(super) fn exclusions() -> Exclusions {
    let mut e = Exclusions::default();
    e.principal(PrincipalRef::agent("bot"))
        .user_name("owen")
        .person(PersonKey::from_email("owen@corp"))
        .user_name("alice")
        .person(PersonKey::from_email("alice@corp"));
    e
}

#[test]
fn one_approval_meets_a_quorum_of_one() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    let next =
        vote(&r, &user("dana", "dana@corp", &["dba"]), &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    assert_eq!(next.status, Status::Approved);
    assert_eq!(next.release_by, Some(T0.plus(Duration::from_secs(600))));
}

#[test]
fn self_approval_is_refused_for_owner_on_behalf_of_and_their_other_identities() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    let e = exclusions();
    for approver in [
        user("owen", "owen@corp", &["dba"]),
        user("alice", "alice@corp", &["dba"]),
        user("owen-sso", "OWEN@corp", &["dba"]),
        user("alice2", "alice@corp", &["dba"]),
    ] {
        assert_eq!(vote(&r, &approver, &e, VoteKind::Approve, None, T0), Err(Refusal::SelfApproval));
        assert_eq!(vote(&r, &approver, &e, VoteKind::Deny, None, T0), Err(Refusal::SelfApproval));
    }
}

/// A request naming `Carol` (say, a user created as `Carol`, or an
/// on_behalf_of written so) still keeps carol from approving it: names
/// compare in their canonical form.
#[test]
fn self_approval_compares_canonical_names() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    let mut e = Exclusions::default();
    e.principal(PrincipalRef::user("Erin")).user_name("Carol");
    for approver in [user("carol", "carol@corp", &["dba"]), user("erin", "erin@corp", &["dba"])] {
        assert_eq!(vote(&r, &approver, &e, VoteKind::Approve, None, T0), Err(Refusal::SelfApproval));
    }
    assert!(vote(&r, &user("dana", "dana@corp", &["dba"]), &e, VoteKind::Approve, None, T0).is_ok());
}

#[test]
fn only_approver_groups_count() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    assert_eq!(
        vote(&r, &user("sam", "sam@corp", &["sre"]), &exclusions(), VoteKind::Approve, None, T0),
        Err(Refusal::NotAnApprover)
    );
}

#[test]
fn quorum_counts_distinct_people() {
    let r = pending(vec![requirement("p", &["dba"], 2)]);
    let e = exclusions();
    let r = vote(&r, &user("dana", "dana@corp", &["dba"]), &e, VoteKind::Approve, None, T0).unwrap().request;
    assert_eq!(r.status, Status::Pending);
    assert_eq!(
        vote(&r, &user("dana", "dana@corp", &["dba"]), &e, VoteKind::Approve, None, T0),
        Err(Refusal::DuplicateVote)
    );
    // The same person under a second identity does not make two.
    assert_eq!(
        vote(&r, &user("dana-sso", "Dana@Corp", &["dba"]), &e, VoteKind::Approve, None, T0),
        Err(Refusal::DuplicateVote)
    );
    let r = vote(&r, &user("dave", "dave@corp", &["dba"]), &e, VoteKind::Approve, None, T0).unwrap().request;
    assert_eq!(r.status, Status::Approved);
}

#[test]
fn every_requirement_must_be_met() {
    let r = pending(vec![requirement("a", &["dba"], 1), requirement("b", &["sre"], 1)]);
    let e = exclusions();
    let r = vote(&r, &user("dana", "dana@corp", &["dba"]), &e, VoteKind::Approve, None, T0).unwrap().request;
    assert_eq!(r.status, Status::Pending);
    let r = vote(&r, &user("sam", "sam@corp", &["sre"]), &e, VoteKind::Approve, None, T0).unwrap().request;
    assert_eq!(r.status, Status::Approved);
}

#[test]
fn any_deny_is_final() {
    let r = pending(vec![requirement("p", &["dba"], 2)]);
    let e = exclusions();
    let r = vote(&r, &user("dana", "dana@corp", &["dba"]), &e, VoteKind::Approve, None, T0).unwrap().request;
    let r = vote(&r, &user("dave", "dave@corp", &["dba"]), &e, VoteKind::Deny, Some("no".into()), T0).unwrap().request;
    assert_eq!(r.status, Status::Denied);
    assert!(r.status.is_final());
    assert_eq!(
        vote(&r, &user("dora", "dora@corp", &["dba"]), &e, VoteKind::Approve, None, T0),
        Err(Refusal::NotPending("denied"))
    );
}

#[test]
fn withdrawn_votes_stop_counting_and_an_approval_that_loses_its_quorum_is_revoked() {
    let r = pending(vec![requirement("p", &["dba"], 2)]);
    let (dana, erin) = (user("dana", "dana@corp", &["dba"]), user("erin", "erin@corp", &["dba"]));
    let one = vote(&r, &dana, &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    let gone = [dana.principal.clone()];

    // Pending: the vote stays on record, uncounted; the request waits.
    let waiting = withdraw_votes(&one, &gone, T0).unwrap().request;
    assert_eq!(waiting.status, Status::Pending);
    assert_eq!((waiting.votes.len(), waiting.approvals().count()), (1, 0));
    assert!(withdraw_votes(&waiting, &gone, T0).is_none(), "nothing left to withdraw");
    let still = vote(&waiting, &erin, &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    assert_eq!(still.status, Status::Pending, "one counted approval of two");

    // Approved: losing a needed approval revokes it.
    let approved = vote(&one, &erin, &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    assert_eq!(approved.status, Status::Approved);
    let revoked = withdraw_votes(&approved, &gone, T0).unwrap().request;
    assert_eq!(revoked.status, Status::Revoked);
    assert!(revoked.reason.contains("user:dana"), "{}", revoked.reason);
    assert!(withdraw_votes(&approved, &[PrincipalRef::user("zed")], T0).is_none(), "not a voter");
    assert!(withdraw_votes(&revoked, &gone, T0).is_none(), "a closed request is left alone");
}

#[test]
fn pending_requests_expire_at_their_deadline() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    let deadline = r.expires_at.unwrap();
    assert!(settle_deadline(&r, Timestamp(deadline.0 - 1)).is_none());
    let expired = settle_deadline(&r, deadline).unwrap().request;
    assert_eq!(expired.status, Status::Expired);
    assert_eq!(
        vote(&r, &user("dana", "dana@corp", &["dba"]), &exclusions(), VoteKind::Approve, None, deadline),
        Err(Refusal::Expired)
    );
}

#[test]
fn approvals_expire_unless_released_in_time() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    let r = vote(&r, &user("dana", "dana@corp", &["dba"]), &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    let by = r.release_by.unwrap();
    assert_eq!(release(&r, &PrincipalRef::agent("bot"), by), Err(Refusal::Expired));
    assert_eq!(settle_deadline(&r, by).map(|m| m.request.status), Some(Status::Expired));
    let released = release(&r, &PrincipalRef::agent("bot"), T0).unwrap().request;
    assert_eq!(released.status, Status::Released);
}

#[test]
fn release_is_single_use_and_only_for_the_requester() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    let r = vote(&r, &user("dana", "dana@corp", &["dba"]), &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    assert_eq!(release(&r, &PrincipalRef::agent("other"), T0), Err(Refusal::NotRequester));
    let r = release(&r, &PrincipalRef::agent("bot"), T0).unwrap().request;
    assert_eq!(release(&r, &PrincipalRef::agent("bot"), T0), Err(Refusal::AlreadyReleased));
}

#[test]
fn outcome_is_accepted_once_and_only_after_release() {
    let outcome = Outcome {
        status: OutcomeStatus::Succeeded,
        exit_code: Some(0),
        summary: None,
        output_sha256: None,
        reported_at: T0,
    };
    let bot = PrincipalRef::agent("bot");
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    assert_eq!(report_outcome(&r, &bot, outcome.clone()), Err(Refusal::OutcomeNotAccepted("pending")));
    let r = vote(&r, &user("dana", "dana@corp", &["dba"]), &exclusions(), VoteKind::Approve, None, T0).unwrap().request;
    let r = release(&r, &bot, T0).unwrap().request;
    let r = report_outcome(&r, &bot, outcome.clone()).unwrap().request;
    assert_eq!(report_outcome(&r, &bot, outcome), Err(Refusal::OutcomeAlreadyReported));
}

#[test]
fn cancel_is_for_the_requester_while_open() {
    let r = pending(vec![requirement("p", &["dba"], 1)]);
    assert_eq!(cancel(&r, &PrincipalRef::user("dana"), T0), Err(Refusal::NotRequester));
    let c = cancel(&r, &PrincipalRef::agent("bot"), T0).unwrap().request;
    assert_eq!(c.status, Status::Cancelled);
    assert_eq!(cancel(&c, &PrincipalRef::agent("bot"), T0), Err(Refusal::NotOpen("cancelled")));
    assert_eq!(revoke(&c, "x", T0), Err(Refusal::NotOpen("cancelled")));
}

#[derive(Debug, Clone)]
enum Move {
    Vote(usize, bool),
    Cancel,
    Revoke,
    Release,
    Tick(u64),
    Comment,
}

fn moves() -> impl Strategy<Value = Vec<Move>> {
    let one = prop_oneof![
        4 => (0usize..6, any::<bool>()).prop_map(|(who, approve)| Move::Vote(who, approve)),
        1 => Just(Move::Cancel),
        1 => Just(Move::Revoke),
        2 => Just(Move::Release),
        1 => (0u64..3_000_000).prop_map(Move::Tick),
        1 => Just(Move::Comment),
    ];
    proptest::collection::vec(one, 0..24)
}

// People 0..6: 0 is the owner (excluded), 1 has a second identity of 2's
// email, 3 is in no approver group.
fn person(i: usize) -> Approver {
    match i {
        0 => user("owen", "owen@corp", &["dba"]),
        1 => user("dana-sso", "dana@corp", &["dba"]),
        2 => user("dana", "dana@corp", &["dba"]),
        3 => user("sam", "sam@corp", &["web"]),
        4 => user("dave", "dave@corp", &["dba", "sre"]),
        _ => user("sue", "sue@corp", &["sre"]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever happens, the rules hold: final states never change, no
    /// excluded or non-member vote is ever recorded, approval implies
    /// a quorum of distinct people, and release happens at most once.
    #[test]
    fn rules_hold_for_any_sequence(moves in moves(), quorum in 1u32..3) {
        let e = exclusions();
        let mut r = pending(vec![requirement("a", &["dba"], quorum), requirement("b", &["sre"], 1)]);
        let mut now = T0;
        let mut releases = 0;
        for m in moves {
            let before = r.clone();
            let result = match m {
                Move::Vote(who, approve) => {
                    let kind = if approve { VoteKind::Approve } else { VoteKind::Deny };
                    vote(&r, &person(who), &e, kind, None, now).map(|m| m.request)
                }
                Move::Cancel => cancel(&r, &PrincipalRef::agent("bot"), now).map(|m| m.request),
                Move::Revoke => revoke(&r, "policy changed", now).map(|m| m.request),
                Move::Release => release(&r, &PrincipalRef::agent("bot"), now).map(|m| m.request),
                Move::Tick(ms) => {
                    now = Timestamp(now.0 + i64::try_from(ms).unwrap());
                    Ok(settle_deadline(&r, now).map_or_else(|| r.clone(), |m| m.request))
                }
                Move::Comment => Ok(comment(&r, &PrincipalRef::user("x"), "hi".into(), now).request),
            };
            if let Ok(next) = result {
                if before.status.is_final() {
                    prop_assert_eq!(next.status, before.status, "a final status changed");
                    prop_assert_eq!(&next.votes, &before.votes);
                }
                if next.status == Status::Released && before.status != Status::Released {
                    releases += 1;
                }
                r = next;
            }
            for v in &r.votes {
                let voter = Approver { principal: v.by.clone(), person: v.person.clone(), groups: v.groups.clone() };
                prop_assert!(!e.excludes(&voter), "an excluded person voted");
                prop_assert!(r.requirements.iter().any(|q| q.admits(&v.groups)), "a non-member voted");
            }
            if matches!(r.status, Status::Approved | Status::Released) {
                prop_assert!(r.quorum_met());
                prop_assert!(r.votes.iter().all(|v| v.kind == VoteKind::Approve));
            }
            if r.votes.iter().any(|v| v.kind == VoteKind::Deny) {
                prop_assert_eq!(r.status, Status::Denied);
            }
        }
        prop_assert!(releases <= 1);
    }
}
