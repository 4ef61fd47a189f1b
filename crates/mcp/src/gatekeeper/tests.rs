//! Each decision of the gatekeeper, without transports or a gateway.

use std::time::Duration;

use async_trait::async_trait;
use countersign_core::Action;
use serde_json::json;

use super::*;
use crate::approvals::{GateError, Ticket};

/// Approvals that forbid tools named `forbidden*` outright and answer
/// nothing else (the gatekeeper never awaits them).
#[derive(Debug)]
struct Forbids;

#[async_trait]
impl Approvals for Forbids {
    async fn submit(&self, _action: Action) -> Result<Ticket, GateError> {
        Err(GateError::Unavailable("not in these tests".to_owned()))
    }
    async fn wait(&self, _id: &str, _up_to: Duration) -> Result<Ticket, GateError> {
        Err(GateError::Unavailable("not in these tests".to_owned()))
    }
    async fn release(&self, _id: &str) -> Result<Ticket, GateError> {
        Err(GateError::Unavailable("not in these tests".to_owned()))
    }
    async fn cancel(&self, _id: &str) -> Result<(), GateError> {
        Ok(())
    }
    async fn report(&self, _id: &str, _report: Report) -> Result<(), GateError> {
        Ok(())
    }
    fn forbids_outright(&self, action: &Action) -> bool {
        action.resource.starts_with("fs/forbidden")
    }
    async fn refused(&self, _refusal: Refusal) -> Result<(), GateError> {
        Ok(())
    }
}

fn gatekeeper(hide: bool) -> Gatekeeper {
    Gatekeeper::new("fs", "stdio", Arc::new(Forbids), Options { hide_forbidden_tools: hide })
}

/// The step for a client message (which must be valid).
fn client(g: &mut Gatekeeper, message: &Value) -> Step {
    let kind = jsonrpc::check(message, From::Client).unwrap();
    g.from_client(kind, message)
}

fn upstream(g: &mut Gatekeeper, message: &Value, scope: &Scope) -> Seen {
    g.from_upstream(message, message.to_string().as_bytes(), scope)
}

fn request(id: Value, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn call(id: i64, tool: &str) -> Value {
    request(json!(id), "tools/call", json!({"name": tool, "arguments": {"path": "/tmp"}}))
}

fn answer(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn held(step: Step) -> Held {
    match step {
        Step::Hold(held) => *held,
        other => panic!("not held: {other:?}"),
    }
}

fn dropped_because(seen: &Seen) -> String {
    match &seen.fate {
        Fate::Drop(Some(refusal)) => refusal.reason.clone(),
        other => panic!("not dropped and audited: {other:?}"),
    }
}

/// Holds call `id` and lets it through as approval request `req-<id>`.
fn forward_call(g: &mut Gatekeeper, id: i64) {
    let held = held(client(g, &call(id, "read")));
    let settled = g.settle(&held.hold, Verdict::Forward { request: format!("req-{id}") });
    assert_eq!(settled, Settled::Forward);
}

#[test]
fn requests_other_than_tool_calls_are_forwarded_and_tracked() {
    let mut g = gatekeeper(false);
    assert!(matches!(client(&mut g, &request(json!(1), "ping", json!({}))), Step::Forward));
    assert_eq!(g.open_requests(), 1);
    assert!(g.awaits(&json!(1)));
    // Notifications are not tracked.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert!(matches!(client(&mut g, &note), Step::Forward));
    assert_eq!(g.open_requests(), 1);
}

#[test]
fn a_reused_id_and_one_request_too_many_are_refused() {
    let mut g = gatekeeper(false);
    assert!(matches!(client(&mut g, &request(json!(1), "ping", json!({}))), Step::Forward));
    let again = request(json!(1), "ping", json!({}));
    let Step::Refuse(why) = client(&mut g, &again) else { panic!("a reused id passed") };
    assert!(why.0.contains("still in flight"), "{why}");
    assert_eq!(g.admits(jsonrpc::classify(&again)), Err(why));
    // `1` and `"1"` are different ids.
    assert!(matches!(client(&mut g, &request(json!("1"), "ping", json!({}))), Step::Forward));
    // A held call's id is in flight too.
    let _held = held(client(&mut g, &call(2, "read")));
    assert!(matches!(client(&mut g, &request(json!(2), "ping", json!({}))), Step::Refuse(_)));

    for n in 3..MAX_IN_FLIGHT {
        assert!(matches!(client(&mut g, &request(json!(n), "ping", json!({}))), Step::Forward));
    }
    let Step::Refuse(why) = client(&mut g, &request(json!(-1), "ping", json!({}))) else { panic!("no bound") };
    assert_eq!(why.0, "too many requests in flight");
}

#[test]
fn a_tool_call_is_held_with_what_the_policy_needs() {
    let mut g = gatekeeper(false);
    let message = request(
        json!(7),
        "tools/call",
        json!({"name": "Read", "arguments": {"path": "/etc"}, "_meta": {"progressToken": "p"}}),
    );
    let held = held(client(&mut g, &message));
    assert_eq!(held.id, json!(7));
    assert_eq!(held.hold.key(), "7");
    assert_eq!(held.token, Some(json!("p")));
    assert_eq!(held.call.resource(), "fs/read");
    assert_eq!(held.call.arguments, json!({"path": "/etc"}));
    assert_eq!(held.call.tool_context["listed"], false);
    assert_eq!(g.open_requests(), 1);
    assert!(!g.awaits(&json!(7)), "held, not forwarded");
}

#[test]
fn a_tool_call_without_a_name_is_answered_not_held() {
    let mut g = gatekeeper(false);
    let Step::Reply(reply) = client(&mut g, &request(json!(3), "tools/call", json!({}))) else {
        panic!("not answered")
    };
    assert_eq!(reply["id"], 3);
    assert_eq!(reply["error"]["code"], -32602);
    assert_eq!(g.open_requests(), 0);
}

#[tokio::test]
async fn cancelling_a_held_call_withdraws_it() {
    let mut g = gatekeeper(false);
    let held = held(client(&mut g, &call(5, "write")));
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}});
    assert!(matches!(client(&mut g, &cancel), Step::Withdrawn));
    tokio::time::timeout(Duration::from_secs(1), withdrawn(held.withdrawal)).await.unwrap();
    assert_eq!(g.open_requests(), 0);
    // Decided meanwhile: nothing to send, but an allowed call's approval is
    // accounted for.
    let Settled::Dropped(Some(outcome)) = g.settle(&held.hold, Verdict::Forward { request: "r".to_owned() }) else {
        panic!("a withdrawn call was let through")
    };
    assert_eq!(outcome.request, "r");
    assert!(!outcome.report.succeeded);
}

#[test]
fn cancelling_a_forwarded_request_is_passed_on_and_its_late_answer_dropped_quietly() {
    let mut g = gatekeeper(false);
    forward_call(&mut g, 5);
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}});
    assert!(matches!(client(&mut g, &cancel), Step::Forward));
    let outcome = g.forget("5").unwrap();
    assert_eq!(outcome.request, "req-5");
    assert!(outcome.report.summary.contains("cancelled by the client"));
    let seen = upstream(&mut g, &answer(json!(5), json!({"content": []})), &Scope::Session);
    assert_eq!(seen.fate, Fate::Drop(None));
    assert_eq!(seen.outcome, None);
}

#[test]
fn a_client_response_passes_once_and_only_to_what_the_upstream_asked() {
    let mut g = gatekeeper(false);
    let reply = answer(json!("q1"), json!({}));
    assert!(matches!(client(&mut g, &reply), Step::Refuse(_)));
    let asked = request(json!("q1"), "sampling/createMessage", json!({}));
    assert_eq!(upstream(&mut g, &asked, &Scope::Session), Seen::pass(None));
    assert_eq!(g.admits(jsonrpc::classify(&reply)), Ok(()));
    assert!(matches!(client(&mut g, &reply), Step::Forward));
    assert!(matches!(client(&mut g, &reply), Step::Refuse(_)), "answered twice");
    // The upstream may not ask twice under one id while it waits.
    assert_eq!(upstream(&mut g, &asked, &Scope::Session), Seen::pass(None));
    assert!(dropped_because(&upstream(&mut g, &asked, &Scope::Session)).contains("in flight"));
}

#[test]
fn settling_lets_a_call_through_answers_it_or_drops_it() {
    let mut g = gatekeeper(false);
    let modern = request(
        json!(1),
        "tools/call",
        json!({"name": "rm", "_meta": {"progressToken": 9, "io.modelcontextprotocol/protocolVersion": "2026-07-28"}}),
    );
    let one = held(client(&mut g, &modern));
    let refused = json!({"content": [], "isError": true});
    let Settled::Reply(reply) = g.settle(&one.hold, Verdict::Reply(refused.clone())) else { panic!("not answered") };
    assert_eq!(reply, jsonrpc::result(&json!(1), json!({"content": [], "isError": true, "resultType": "complete"})));
    assert_eq!(g.open_requests(), 0);

    let two = held(client(&mut g, &call(2, "rm")));
    let Settled::Reply(reply) = g.settle(&two.hold, Verdict::Reply(refused.clone())) else { panic!("not answered") };
    assert!(reply["result"].get("resultType").is_none(), "earlier protocols have no resultType");

    let three = held(client(&mut g, &call(3, "rm")));
    assert_eq!(g.settle(&three.hold, Verdict::Cancelled), Settled::Dropped(None));
    assert_eq!(g.open_requests(), 0);

    let with_progress = request(json!(4), "tools/call", json!({"name": "read", "_meta": {"progressToken": "t4"}}));
    let four = held(client(&mut g, &with_progress));
    assert_eq!(g.settle(&four.hold, Verdict::Forward { request: "req-4".to_owned() }), Settled::Forward);
    assert!(g.awaits(&json!(4)));
    let progress =
        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t4", "progress": 1}});
    assert_eq!(upstream(&mut g, &progress, &Scope::Session).related.as_deref(), Some("4"));
}

#[test]
fn a_decision_settles_only_the_hold_it_was_made_for() {
    let mut g = gatekeeper(false);
    let old = held(client(&mut g, &call(5, "rm")));
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}});
    assert!(matches!(client(&mut g, &cancel), Step::Withdrawn));
    // The client reuses the id for a new call before the old decision lands.
    let new = held(client(&mut g, &call(5, "read")));
    assert_eq!(g.settle(&old.hold, Verdict::Cancelled), Settled::Dropped(None));
    assert_eq!(g.open_requests(), 1, "the new call is still held");
    assert!(matches!(g.settle(&old.hold, Verdict::Reply(json!({}))), Settled::Dropped(None)));
    assert_eq!(g.settle(&new.hold, Verdict::Forward { request: "r".to_owned() }), Settled::Forward);
}

#[test]
fn the_answer_to_a_forwarded_call_passes_and_is_reported() {
    let mut g = gatekeeper(false);
    forward_call(&mut g, 1);
    let result = answer(json!(1), json!({"content": [{"type": "text", "text": "ok"}]}));
    let seen = upstream(&mut g, &result, &Scope::Session);
    assert_eq!(seen.fate, Fate::Pass);
    assert_eq!(seen.related.as_deref(), Some("1"));
    let outcome = seen.outcome.unwrap();
    assert_eq!(outcome.request, "req-1");
    assert!(outcome.report.succeeded);
    assert_eq!(g.open_requests(), 0);
    // Once only.
    let again = upstream(&mut g, &result, &Scope::Session);
    assert!(dropped_because(&again).contains("not forwarded or is already answered"));
}

#[test]
fn no_answer_passes_for_a_call_held_for_approval() {
    let mut g = gatekeeper(false);
    let _held = held(client(&mut g, &call(5, "rm")));
    for scope in [Scope::Session, Scope::Only(json!(5)), Scope::Any, Scope::Nothing] {
        let seen = upstream(&mut g, &answer(json!(5), json!({"content": []})), &scope);
        assert!(dropped_because(&seen).contains("held for approval"), "{scope:?}");
    }
    assert_eq!(g.open_requests(), 1);
}

#[test]
fn an_http_answer_carries_only_the_response_it_is_for() {
    let mut g = gatekeeper(false);
    for id in 1..=3 {
        assert!(matches!(client(&mut g, &request(json!(id), "ping", json!({}))), Step::Forward));
    }
    let pong = |id: i64| answer(json!(id), json!({}));
    let seen = upstream(&mut g, &pong(2), &Scope::Only(json!(1)));
    assert!(dropped_because(&seen).contains("another request"));
    assert!(dropped_because(&upstream(&mut g, &pong(2), &Scope::Nothing)).contains("another request"));
    assert_eq!(upstream(&mut g, &pong(1), &Scope::Only(json!(1))).fate, Fate::Pass);
    // A GET stream may carry any forwarded request's answer, and replay one.
    assert_eq!(upstream(&mut g, &pong(2), &Scope::Any).fate, Fate::Pass);
    assert_eq!(upstream(&mut g, &pong(2), &Scope::Any), Seen::pass(Some("2".to_owned())));
    let seen = upstream(&mut g, &pong(2), &Scope::Only(json!(2)));
    assert_eq!(dropped_because(&seen), "a response for a request that was not forwarded");
    // A response to nothing.
    assert!(dropped_because(&upstream(&mut g, &pong(9), &Scope::Any)).contains("not forwarded"));
}

#[test]
fn what_is_not_a_response_to_a_request_passes_if_valid() {
    let mut g = gatekeeper(false);
    let parse_error = jsonrpc::error(None, jsonrpc::PARSE_ERROR, "bad");
    assert_eq!(upstream(&mut g, &parse_error, &Scope::Only(json!(1))), Seen::pass(None));
    let log = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "hi"}});
    assert_eq!(upstream(&mut g, &log, &Scope::Nothing), Seen::pass(None));
    let unknown_progress =
        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1}});
    assert_eq!(upstream(&mut g, &unknown_progress, &Scope::Session), Seen::pass(None));
    let invalid = json!({"jsonrpc": "2.0", "id": 1, "result": {}, "Method": "x"});
    assert!(dropped_because(&upstream(&mut g, &invalid, &Scope::Session)).contains("does not define"));
    let batch = json!([answer(json!(1), json!({}))]);
    assert!(dropped_because(&upstream(&mut g, &batch, &Scope::Session)).contains("batches"));
}

fn tools(names: &[&str]) -> Value {
    json!({"tools": names.iter().map(|n| json!({"name": n, "annotations": {"readOnlyHint": true}})).collect::<Vec<_>>()})
}

#[test]
fn tools_list_teaches_hints_and_may_hide_forbidden_tools() {
    for hide in [false, true] {
        let mut g = gatekeeper(hide);
        assert!(matches!(client(&mut g, &request(json!(1), "tools/list", json!({}))), Step::Forward));
        let listed = answer(json!(1), tools(&["read", "forbidden_rm"]));
        let seen = upstream(&mut g, &listed, &Scope::Session);
        if hide {
            assert_eq!(seen.fate, Fate::Replace(answer(json!(1), tools(&["read"]))));
        } else {
            assert_eq!(seen.fate, Fate::Pass);
        }
        assert_eq!(seen.outcome, None);
        // A later call carries what the list said.
        let held = held(client(&mut g, &call(2, "read")));
        assert_eq!(held.call.tool_context["listed"], true);
        assert_eq!(held.call.tool_context["annotations"]["readOnlyHint"], true);
        // Hidden or not, a call to a forbidden tool is still held for the gate.
        assert!(matches!(client(&mut g, &call(3, "forbidden_rm")), Step::Hold(_)));
    }
    // A list with nothing to hide passes as received.
    let mut g = gatekeeper(true);
    assert!(matches!(client(&mut g, &request(json!(1), "tools/list", json!({}))), Step::Forward));
    assert_eq!(upstream(&mut g, &answer(json!(1), tools(&["read"])), &Scope::Session).fate, Fate::Pass);
    // Only a `tools/list` answer is read as one.
    assert!(matches!(client(&mut g, &request(json!(2), "ping", json!({}))), Step::Forward));
    assert_eq!(upstream(&mut g, &answer(json!(2), tools(&["forbidden_x"])), &Scope::Session).fate, Fate::Pass);
}

#[test]
fn an_unanswered_call_is_closed_and_reported_failed() {
    let mut g = gatekeeper(false);
    forward_call(&mut g, 1);
    let outcome = g.unanswered(&json!(1), "the upstream could not be reached").unwrap();
    assert_eq!(outcome.request, "req-1");
    assert!(!outcome.report.succeeded);
    assert!(outcome.report.summary.contains("could not be reached"));
    assert!(!g.awaits(&json!(1)));
    assert_eq!(g.unanswered(&json!(1), "again"), None);
    // A held call is not closed this way.
    let _held = held(client(&mut g, &call(2, "rm")));
    assert_eq!(g.unanswered(&json!(2), "no"), None);
    assert_eq!(g.open_requests(), 1);
}

#[tokio::test]
async fn when_the_upstream_goes_every_request_is_told_and_held_calls_withdrawn() {
    let mut g = gatekeeper(false);
    forward_call(&mut g, 1);
    let held = held(client(&mut g, &call(2, "rm")));
    assert!(matches!(client(&mut g, &request(json!(3), "ping", json!({}))), Step::Forward));
    let gone = g.upstream_gone("exited with status 1");
    let mut keys: Vec<&str> = gone.replies.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["1", "2", "3"]);
    assert!(gone
        .replies
        .iter()
        .all(|(_, e)| e["error"]["message"] == "the upstream MCP server `fs` exited with status 1"));
    assert_eq!(gone.outcomes.len(), 1);
    assert_eq!(gone.outcomes[0].request, "req-1");
    assert_eq!(gone.notice["params"]["level"], "error");
    tokio::time::timeout(Duration::from_secs(1), withdrawn(held.withdrawal)).await.unwrap();
    assert!(matches!(g.settle(&held.hold, Verdict::Forward { request: "r".to_owned() }), Settled::Dropped(Some(_))));
    let Step::Reply(reply) = client(&mut g, &request(json!(4), "ping", json!({}))) else { panic!("not answered") };
    assert_eq!(reply["error"]["code"], jsonrpc::INTERNAL_ERROR);
}

#[tokio::test]
async fn a_client_that_leaves_withdraws_every_held_call() {
    let mut g = gatekeeper(false);
    let one = held(client(&mut g, &call(1, "rm")));
    let two = held(client(&mut g, &call(2, "rm")));
    forward_call(&mut g, 3);
    g.withdraw_all();
    for held in [one, two] {
        tokio::time::timeout(Duration::from_secs(1), withdrawn(held.withdrawal)).await.unwrap();
    }
    assert_eq!(g.open_requests(), 1, "a forwarded request still waits for its answer");
}

#[tokio::test]
async fn a_settled_call_is_never_withdrawn() {
    let mut g = gatekeeper(false);
    let held = held(client(&mut g, &call(1, "read")));
    assert_eq!(g.settle(&held.hold, Verdict::Forward { request: "r".to_owned() }), Settled::Forward);
    g.withdraw_all();
    assert!(tokio::time::timeout(Duration::from_millis(50), withdrawn(held.withdrawal)).await.is_err());
}

#[test]
fn refusals_are_audited_within_the_budget() {
    let mut g = gatekeeper(false);
    let refusal = g.refusal(From::Client, "the message is not JSON", b"{").unwrap();
    assert_eq!((refusal.upstream.as_str(), refusal.transport, refusal.bytes), ("fs", "stdio", 1));
    assert_eq!(g.oversized(From::Upstream, 1 << 30).unwrap().bytes, 1 << 30);
    let admitted = (0..100).filter(|_| g.refusal(From::Upstream, "r", b"").is_some()).count();
    assert_eq!(admitted, 62, "a burst of 64 in all");
    // Drops beyond the budget are still drops.
    assert_eq!(upstream(&mut g, &json!([]), &Scope::Session).fate, Fate::Drop(None));
}
