//! Reading stored events back: known kinds into their variant, anything
//! else kept as it was, never a panic.

use serde_json::json;

use super::*;

#[test]
fn kinds_are_unique_and_dotted() {
    let mut kinds = Event::KINDS.to_vec();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), Event::KINDS.len());
    assert!(Event::KINDS.iter().all(|k| k.contains('.') && !k.starts_with('.')));
}

#[test]
fn a_known_event_reads_back_into_its_variant() {
    let body = r#"{"id":"r1","reason":"the deadline passed without a decision"}"#;
    let Parsed::Known(event) = Parsed::read("action.expired", body) else { panic!("not read") };
    assert_eq!(event.kind(), "action.expired");
    assert_eq!(event.request(), Some("r1"));
    assert_eq!(event.body().unwrap(), serde_json::from_str::<Value>(body).unwrap());
}

#[test]
fn unknown_kinds_and_unfit_bodies_are_kept_not_fatal() {
    let unknown = Parsed::read("webhook.renamed", r#"{"id":"r1"}"#);
    assert_eq!(
        unknown,
        Parsed::Unknown(Unknown { kind: "webhook.renamed".into(), body: json!({"id": "r1"}), why: Unreadable::Kind })
    );
    for (kind, body) in [
        ("action.expired", r#"{"id":"r1"}"#),
        ("action.approved", r#"{"no_id":1}"#),
        ("action.decided", r#"{"id":"r1","status":"sideways"}"#),
        ("action.cancelled", "[1,2]"),
        ("action.cancelled", "not json"),
        ("console.logout", "null"),
    ] {
        let Parsed::Unknown(unknown) = Parsed::read(kind, body) else { panic!("{kind} {body} was read") };
        assert!(matches!(unknown.why, Unreadable::Body(_)), "{kind} {body}");
    }
}

#[test]
fn fields_a_newer_version_adds_are_ignored() {
    let Parsed::Known(Event::ActionCancelled(cancelled)) =
        Parsed::read("action.cancelled", r#"{"id":"r1","why":"later"}"#)
    else {
        panic!("not read")
    };
    assert_eq!(cancelled.id, "r1");
}

#[test]
fn a_move_refusal_and_a_login_refusal_record_read_apart() {
    let moved = r#"{"attempt":"approve","code":"self_approval","id":"r1","message":"no"}"#;
    assert!(matches!(
        Parsed::read("attempt.refused", moved),
        Parsed::Known(Event::AttemptRefused(AttemptRefused::Move(MoveRefused { attempt: Attempt::Approve, .. })))
    ));
    let login = r#"{"attempt":"console_login","code":"unauthenticated","source":"192.0.2.1"}"#;
    let Parsed::Known(event @ Event::AttemptRefused(AttemptRefused::Record(_))) =
        Parsed::read("attempt.refused", login)
    else {
        panic!("not a record")
    };
    assert_eq!(event.request(), None);
    assert_eq!(event.body().unwrap(), serde_json::from_str::<Value>(login).unwrap());
}

#[test]
fn votes_recorded_before_step_up_have_no_login() {
    let old = r#"{"comment":null,"fingerprint":"sha256:00","groups":["sre"],"id":"r1","person":"a@corp"}"#;
    let Parsed::Known(event @ Event::ApprovalAccepted(VoteAccepted { login: None, .. })) =
        Parsed::read("approval.accepted", old)
    else {
        panic!("not read")
    };
    assert_eq!(event.body().unwrap(), serde_json::from_str::<Value>(old).unwrap(), "nothing is added");
}

#[test]
fn actors_are_written_as_before() {
    assert_eq!(Actor::System.to_string(), "system");
    assert_eq!(Actor::Principal(PrincipalRef::user("dana")).to_string(), "user:dana");
}
