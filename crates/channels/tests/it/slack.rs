//! Slack: the card, its updates, clicks, modals, refusals, signatures,
//! step-up, escalation and an outage.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use countersign_core::Timestamp;
use serde_json::{json, Value};

use crate::support::*;

fn text_of(message: &Value) -> String {
    message["blocks"].to_string()
}

#[tokio::test]
async fn a_card_is_posted_updated_and_closed_and_the_owner_hears() {
    let gw = gateway().await;
    let id = gw.submit(shell("prod-web")).await;
    gw.eventually("card posted", || async { !gw.slack.calls("chat.postMessage").is_empty() }).await;
    let posted = &gw.slack.calls("chat.postMessage")[0];
    // The requirement's @slack_channel wins over the default channel.
    assert_eq!(posted["channel"], "#prod-approvals");
    let card = text_of(posted);
    for expected in [
        "shell.exec",
        "prod-web",
        "systemctl",
        "agent:bot",
        "owen",
        "deploy 1.2.3",
        "90%",
        "prod-shell-sre",
        "History",
        &id,
    ] {
        assert!(card.contains(expected), "card lacks `{expected}`: {card}");
    }
    assert!(card.contains(countersign_channels::slack::blocks::APPROVE), "{card}");
    let channel = gw.slack.channel_id("#prod-approvals").unwrap();

    let started = Instant::now();
    let response = gw.slack_post(&click("UALICE", countersign_channels::slack::blocks::APPROVE, &id, &channel)).await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3), "Slack needs an answer within 3 s");
    gw.eventually("approved", || async { gw.request(&id).await.status.as_str() == "approved" }).await;
    gw.eventually("card shows the approval", || async {
        gw.slack.calls("chat.update").iter().any(|u| text_of(u).contains("Approved by alice"))
    })
    .await;
    let (status, _) = gw.api(reqwest::Method::POST, &format!("/v1/actions/{id}/release"), "bot", None).await;
    assert_eq!(status, 200);
    gw.eventually("card shows the release", || async {
        gw.slack.calls("chat.update").last().is_some_and(|u| text_of(u).contains("released to the agent"))
    })
    .await;
    let last = gw.slack.calls("chat.update").last().cloned().unwrap();
    assert!(!text_of(&last).contains("countersign_approve"), "a closed card has no buttons: {last}");
    assert_bolt_accepts_what_we_accepted(&gw);
    // The owner (owen, Slack UOWEN by email) gets one DM once it is decided.
    gw.eventually("DM to the owner", || async {
        gw.slack.calls("chat.postMessage").iter().any(|m| m["channel"] == "DUOWEN")
    })
    .await;
    assert_eq!(gw.slack.calls("conversations.open").iter().filter(|c| c["users"] == "UOWEN").count(), 1);
    // The click is audited with the Slack account it came from.
    let audit = gw.audit_types().await;
    assert!(audit.iter().any(|(t, b)| t == "channel.click" && b["account"] == "UALICE" && b["user"] == "alice"));
    assert!(audit.iter().any(|(t, b)| t == "approval.accepted" && b["id"] == id.as_str()));
    assert_slack_sdk_accepts_everything(&gw.slack);
}

#[tokio::test]
async fn expiry_shows_on_the_card() {
    let gw = gateway().await;
    let id = gw.submit(shell("short-fuse")).await;
    gw.eventually("expired card", || async {
        gw.slack.calls("chat.update").iter().any(|u| text_of(u).contains("Expired at"))
    })
    .await;
    assert_eq!(gw.request(&id).await.status.as_str(), "expired");
    assert_slack_sdk_accepts_everything(&gw.slack);
}

#[tokio::test]
async fn forged_stale_and_replayed_requests_get_401() {
    let gw = gateway().await;
    let id = gw.submit(shell("prod-web")).await;
    let body = slack_form(&click("UBOB", countersign_channels::slack::blocks::APPROVE, &id, "C1"));
    let now = Timestamp::now().as_millis() / 1000;
    let ts = now.to_string();
    let sign =
        |secret: &str, ts: &str| countersign_channels::slack::signature::sign(secret.as_bytes(), ts, body.as_bytes());

    assert_eq!(gw.slack_raw(&body, &ts, &sign("not-the-secret", &ts)).await.status(), 401, "forged");
    let stale = (now - 301).to_string();
    assert_eq!(gw.slack_raw(&body, &stale, &sign(SIGNING_SECRET, &stale)).await.status(), 401, "stale");
    assert_eq!(gw.slack_raw(&body, &ts, "v0=").await.status(), 401, "empty signature");
    assert_eq!(gw.slack_raw(&body, "soon", &sign(SIGNING_SECRET, "soon")).await.status(), 401, "bad timestamp");
    let tampered = body.replace("UBOB", "UALICE");
    assert_eq!(gw.slack_raw(&tampered, &ts, &sign(SIGNING_SECRET, &ts)).await.status(), 401, "tampered body");
    assert_eq!(gw.request(&id).await.votes.len(), 0, "nothing applied");

    // A request signed by Slack's own SDK is accepted, once.
    let sdk = slack_sdk(&json!({"sign": [{"secret": SIGNING_SECRET, "timestamp": ts, "body": body}]}));
    let signature = sdk["signatures"][0].as_str().unwrap().to_owned();
    assert_eq!(signature, sign(SIGNING_SECRET, &ts), "our signing matches slack_sdk's");
    assert_eq!(gw.slack_raw(&body, &ts, &signature).await.status(), 200);
    assert_eq!(gw.slack_raw(&body, &ts, &signature).await.status(), 401, "replayed");
    // Replayed to another gateway process on the same store: refused too, and audited.
    let replica = gw.replica().await;
    let before = rejections(&gw).await;
    assert_eq!(gw.slack_raw_to(&replica.url, &body, &ts, &signature).await.status(), 401, "replayed to a replica");
    assert_eq!(rejections(&gw).await, before + 1, "the replica audits the replay");
    assert_eq!(
        gw.audit_types().await.iter().rev().find(|(t, _)| t == "integration.rejected").unwrap().1["reason"],
        "this signed request was already received"
    );
    // A fresh signature is still welcome at the replica (it is a working gateway, not a dead one).
    let later = (now + 1).to_string();
    let deny = slack_form(&click("UBOB", "countersign_noop", &id, "C1"));
    let fresh = countersign_channels::slack::signature::sign(SIGNING_SECRET.as_bytes(), &later, deny.as_bytes());
    assert_eq!(gw.slack_raw_to(&replica.url, &deny, &later, &fresh).await.status(), 200);
    gw.eventually("approved once", || async { gw.request(&id).await.status.as_str() == "approved" }).await;

    // A Bolt app accepts exactly the requests countersign accepted (replays
    // aside: Bolt leaves those to the app).
    let sent: Vec<(String, String, String, u16)> = gw.slack_sent.lock().unwrap().clone();
    let mut first = std::collections::HashSet::new();
    let sent: Vec<_> =
        sent.into_iter().filter(|(b, t, s, _)| first.insert((b.clone(), t.clone(), s.clone()))).collect();
    let verdicts = bolt(&sent.iter().map(|(b, t, s, _)| (b.clone(), t.clone(), s.clone())).collect::<Vec<_>>());
    assert_eq!(sent.len(), 7);
    for ((_, ts, signature, ours), bolt) in sent.iter().zip(&verdicts) {
        assert_eq!(
            bolt["status"] == 200,
            *ours == 200,
            "ts {ts} signature {signature}: Bolt {bolt}, countersign {ours}"
        );
    }

    // slack_sdk's verifier and ours agree on every case.
    let cases = [
        (SIGNING_SECRET, now, now, true),
        ("wrong", now, now, false),
        (SIGNING_SECRET, now - 299, now, true),
        (SIGNING_SECRET, now - 301, now, false),
        (SIGNING_SECRET, now + 301, now, false),
    ];
    let verify: Vec<Value> = cases
        .iter()
        .map(|(secret, sent, at, _)| {
            let sent = sent.to_string();
            json!({"secret": SIGNING_SECRET, "timestamp": sent, "body": body, "signature": sign(secret, &sent), "now": at})
        })
        .collect();
    let sdk = slack_sdk(&json!({"verify": verify}));
    for (i, (secret, sent, at, expected)) in cases.iter().enumerate() {
        let sent = sent.to_string();
        let ours = countersign_channels::slack::signature::verify(
            SIGNING_SECRET.as_bytes(),
            Some(&sent),
            body.as_bytes(),
            Some(&sign(secret, &sent)),
            *at,
        )
        .is_ok();
        assert_eq!(ours, *expected, "case {i}");
        assert_eq!(sdk["verified"][i].as_bool(), Some(*expected), "slack_sdk disagrees on case {i}");
    }
    let rejected = gw.refusals_accounted("integration.rejected").await;
    assert_eq!(rejected, 7, "every rejected request is audited (the replica's too)");
}

/// A replay is the same verified request, however its signature header is
/// spelled: other spellings of an accepted signature are refused, before
/// and after the first use, and a Bolt app agrees on each of them.
#[tokio::test]
async fn a_signature_respelled_is_still_a_replay() {
    let gw = gateway().await;
    let id = gw.submit(shell("prod-web")).await;
    let body = slack_form(&click("UBOB", countersign_channels::slack::blocks::APPROVE, &id, "C1"));
    let ts = (Timestamp::now().as_millis() / 1000).to_string();
    let signature = countersign_channels::slack::signature::sign(SIGNING_SECRET.as_bytes(), &ts, body.as_bytes());
    let digits = signature.strip_prefix("v0=").unwrap().to_owned();
    let mixed: String =
        digits.chars().enumerate().map(|(i, c)| if i % 2 == 1 { c.to_ascii_uppercase() } else { c }).collect();
    let respelled = [format!("v0={}", digits.to_uppercase()), format!("v0={mixed}"), format!("V0={digits}")];
    assert_eq!(gw.slack_raw(&body, &ts, &respelled[0]).await.status(), 401, "upper case before first use");
    assert_eq!(gw.slack_raw(&body, &ts, &signature).await.status(), 200);
    for other in &respelled {
        assert_eq!(gw.slack_raw(&body, &ts, other).await.status(), 401, "{other} after first use");
    }
    let replica = gw.replica().await;
    assert_eq!(gw.slack_raw_to(&replica.url, &body, &ts, &respelled[1]).await.status(), 401, "to a replica");
    gw.eventually("one vote", || async { gw.request(&id).await.votes.len() == 1 }).await;
    let request = gw.request(&id).await;
    assert_eq!(request.votes.len(), 1, "the click was applied once");
    let sent: Vec<(String, String, String)> =
        gw.slack_sent.lock().unwrap().iter().map(|(b, t, s, _)| (b.clone(), t.clone(), s.clone())).collect();
    let verdicts = bolt(&sent);
    for ((_, _, signature), bolt) in sent.iter().zip(&verdicts) {
        let canonical = signature.strip_prefix("v0=") == Some(digits.as_str());
        assert_eq!(bolt["status"] == 200, canonical, "Bolt on {signature}: {bolt}");
    }
}

/// Slack accounts name countersign users under the console's rule: only an
/// address Slack confirmed names anyone, and a user belongs to the first
/// Slack account that acted as them; another account with the same
/// address is refused, audited, and never votes.
#[tokio::test]
async fn only_the_confirmed_first_slack_account_of_a_user_votes_as_them() {
    let gw = gateway().await;
    let sql = json!({"kind": "sql.execute", "resource": "prod-db", "payload": {"statement": "DELETE FROM users WHERE id = 7"},
                     "on_behalf_of": "owen", "justification": "GDPR erasure", "context": {"confidence": 0.75}});
    let id = gw.submit(sql).await;
    let approve = countersign_channels::slack::blocks::APPROVE;
    let refused = |user: &'static str| {
        let gw = &gw;
        async move {
            gw.eventually(&format!("ephemeral for {user}"), || async {
                gw.slack.calls("chat.postEphemeral").iter().any(|e| e["user"] == user)
            })
            .await;
            gw.slack.calls("chat.postEphemeral").into_iter().find(|e| e["user"] == user).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // An account whose address Slack has not confirmed names nobody.
    gw.slack.state.users.lock().unwrap().insert("UMALLORY".into(), "unconfirmed:carol@corp.example".into());
    assert_eq!(gw.slack_post(&click("UMALLORY", approve, &id, "C1")).await.status(), 200);
    assert!(refused("UMALLORY").await.contains("not verified"), "told why");
    // carol's own account votes, and is bound to carol.
    assert_eq!(gw.slack_post(&click("UCAROL", approve, &id, "C1")).await.status(), 200);
    gw.eventually("carol's vote", || async { gw.request(&id).await.votes.len() == 1 }).await;
    // Another confirmed account with carol's address is refused.
    gw.slack.state.users.lock().unwrap().insert("UIMPOSTOR".into(), "carol@corp.example".into());
    assert_eq!(gw.slack_post(&click("UIMPOSTOR", approve, &id, "C1")).await.status(), 200);
    assert!(refused("UIMPOSTOR").await.contains("another account"), "told why");
    let request = gw.request(&id).await;
    assert_eq!(request.votes.len(), 1);
    assert_eq!(request.votes[0].by.name, "carol");
    let audit = gw.audit_types().await;
    assert!(audit
        .iter()
        .any(|(t, b)| t == "identity.binding_refused" && b["name"] == "carol" && b["subject"] == "UIMPOSTOR"));
    assert!(audit.iter().any(|(t, b)| t == "identity.bound" && b["name"] == "carol" && b["subject"] == "UCAROL"));
    let clicks: Vec<&Value> = audit.iter().filter(|(t, _)| t == "channel.click").map(|(_, b)| b).collect();
    assert_eq!(clicks.iter().filter(|c| !c["refused"].is_null()).count(), 2, "{clicks:?}");
}

#[tokio::test]
async fn unknown_users_and_self_approval_get_an_ephemeral_refusal() {
    let gw = gateway().await;
    let id = gw.submit(shell("prod-web")).await;
    let approve = countersign_channels::slack::blocks::APPROVE;
    for (user, expected) in
        [("USTRANGER", "no countersign user has the email"), ("UNOEMAIL", "has no email"), ("UOWEN", "approve")]
    {
        assert_eq!(gw.slack_post(&click(user, approve, &id, "C1")).await.status(), 200);
        gw.eventually(&format!("ephemeral for {user}"), || async {
            gw.slack.calls("chat.postEphemeral").iter().any(|e| e["user"] == user)
        })
        .await;
        let message = gw.slack.calls("chat.postEphemeral").into_iter().find(|e| e["user"] == user).unwrap();
        assert_eq!(message["channel"], "C1");
        assert!(message["text"].as_str().unwrap().contains(expected), "{user}: {message}");
    }
    // Owen owns the agent: the rules refuse him, as over the API.
    let owen = gw.slack.calls("chat.postEphemeral").into_iter().find(|e| e["user"] == "UOWEN").unwrap();
    assert!(owen["text"].as_str().unwrap().contains("not applied"), "{owen}");
    let request = gw.request(&id).await;
    assert_eq!((request.status.as_str(), request.votes.len()), ("pending", 0));
    let audit = gw.audit_types().await;
    let clicks: Vec<&Value> = audit.iter().filter(|(t, _)| t == "channel.click").map(|(_, b)| b).collect();
    assert_eq!(clicks.len(), 3, "{clicks:?}");
    assert!(audit.iter().any(|(t, b)| t == "attempt.refused" && b["code"] == "self_approval"));
}

#[tokio::test]
async fn deny_and_approve_with_comment_ask_for_a_reason_in_a_modal() {
    let gw = gateway().await;
    let blocks = countersign_channels::slack::blocks::DENY;
    let first = gw.submit(shell("prod-web")).await;
    assert_eq!(gw.slack_post(&click("UBOB", blocks, &first, "C1")).await.status(), 200);
    gw.eventually("modal opened", || async { !gw.slack.calls("views.open").is_empty() }).await;
    let opened = gw.slack.calls("views.open")[0].clone();
    assert_eq!(opened["trigger_id"], "trigger-UBOB-countersign_deny");
    let view = opened["view"].clone();

    let empty = gw.slack_post(&submit_modal("UBOB", &view, "  ")).await;
    let answer: Value = empty.json().await.unwrap();
    assert_eq!(answer["response_action"], "errors", "{answer}");
    let done = gw.slack_post(&submit_modal("UBOB", &view, "not during the freeze")).await;
    assert_eq!(done.status(), 200);
    assert_eq!(done.text().await.unwrap(), "", "an empty answer closes the modal");
    let request = gw.request(&first).await;
    assert_eq!(request.status.as_str(), "denied");
    assert_eq!(request.votes[0].comment.as_deref(), Some("not during the freeze"));
    gw.eventually("denied card", || async {
        gw.slack.calls("chat.update").iter().any(|u| text_of(u).contains("Denied by bob"))
    })
    .await;
    // A refusal shows in the modal itself: owen may not vote.
    let again = gw.slack_post(&submit_modal("UOWEN", &view, "me too")).await;
    let answer: Value = again.json().await.unwrap();
    assert!(answer["errors"]["reason"].as_str().unwrap().contains("pending"), "{answer}");

    let second = gw.submit(shell("prod-web")).await;
    let with_comment = countersign_channels::slack::blocks::APPROVE_WITH_COMMENT;
    assert_eq!(gw.slack_post(&click("UALICE", with_comment, &second, "C1")).await.status(), 200);
    gw.eventually("second modal", || async { gw.slack.calls("views.open").len() == 2 }).await;
    let view = gw.slack.calls("views.open")[1]["view"].clone();
    assert_eq!(gw.slack_post(&submit_modal("UALICE", &view, "checked the diff")).await.status(), 200);
    let request = gw.request(&second).await;
    assert_eq!(request.status.as_str(), "approved");
    assert_eq!(request.votes[0].comment.as_deref(), Some("checked the diff"));
    assert_slack_sdk_accepts_everything(&gw.slack);
    assert_bolt_accepts_what_we_accepted(&gw);
}

#[tokio::test]
async fn step_up_requirements_cannot_be_approved_from_slack() {
    let gw = gateway().await;
    let id = gw.submit(shell("vault")).await;
    gw.eventually("card posted", || async { !gw.slack.calls("chat.postMessage").is_empty() }).await;
    let card = text_of(&gw.slack.calls("chat.postMessage")[0]);
    assert!(
        card.contains("Approve with fresh login") && card.contains(&format!("/console/requests/{id}")),
        "a link to a fresh login: {card}"
    );
    assert!(!card.contains("\"countersign_approve\""), "no approve button: {card}");
    // Even a hand-made approve click does not count.
    let approve = countersign_channels::slack::blocks::APPROVE;
    assert_eq!(gw.slack_post(&click("UALICE", approve, &id, "C1")).await.status(), 200);
    gw.eventually("refusal", || async { !gw.slack.calls("chat.postEphemeral").is_empty() }).await;
    assert_eq!(gw.request(&id).await.status.as_str(), "pending");
    assert_slack_sdk_accepts_everything(&gw.slack);
}

#[tokio::test]
async fn escalation_reaches_the_escalation_group_and_is_kept_up_to_date() {
    let gw = gateway().await;
    let id = gw.submit(shell("slow-web")).await;
    gw.eventually("escalation DM to lena", || async {
        gw.slack.calls("chat.postMessage").iter().any(|m| m["channel"] == "DULENA")
    })
    .await;
    let dm = gw.slack.calls("chat.postMessage").into_iter().find(|m| m["channel"] == "DULENA").unwrap();
    assert!(text_of(&dm).contains("Escalated"), "{dm}");
    let escalations = gw.audit_types().await.into_iter().filter(|(t, _)| t == "action.escalated").count();
    assert_eq!(escalations, 1, "escalated once");
    let (status, _) = gw
        .api(reqwest::Method::POST, &format!("/v1/actions/{id}/approve"), "alice", Some(json!({"comment": "ok"})))
        .await;
    assert_eq!(status, 200);
    gw.eventually("escalated copy updated", || async {
        gw.slack
            .calls("chat.update")
            .iter()
            .any(|u| u["channel"] == "DULENA" && text_of(u).contains("Approved by alice"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let escalations = gw.audit_types().await.into_iter().filter(|(t, _)| t == "action.escalated").count();
    assert_eq!(escalations, 1, "still once");
    assert_slack_sdk_accepts_everything(&gw.slack);
}

#[tokio::test]
async fn a_slack_outage_delays_the_card_and_loses_nothing() {
    let gw = gateway().await;
    gw.slack.state.down.store(true, Ordering::SeqCst);
    let id = gw.submit(shell("prod-web")).await;
    let metrics = || async { gw.http.get(format!("{}/metrics", gw.url)).send().await.unwrap().text().await.unwrap() };
    gw.eventually("outage visible in /metrics", || async {
        metrics().await.contains("countersign_channel_up{channel=\"slack\"} 0")
    })
    .await;
    // The admin page's probe says so too, with the reason and the backlog.
    let probe = || async {
        let all = gw.channels.health();
        let slack = all.iter().find(|p| p.name() == "slack").unwrap().snapshot(Timestamp::now()).await;
        let teams = all.iter().find(|p| p.name() == "teams").unwrap().snapshot(Timestamp::now()).await;
        (slack, teams)
    };
    gw.eventually("slack down in its health", || async { !probe().await.0.up }).await;
    let (slack, teams) = probe().await;
    assert!(slack.detail.contains("failing") && slack.detail.contains("503"), "{slack:?}");
    assert!(slack.detail.contains("backlog 1"), "{slack:?}");
    assert_eq!(slack.target, gw.slack.base.trim_end_matches("/api"));
    assert!(teams.up, "{teams:?}");
    // Deciding does not wait for Slack.
    let (status, _) = gw
        .api(reqwest::Method::POST, &format!("/v1/actions/{id}/approve"), "bob", Some(json!({"comment": "ok"})))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.slack.state.down.store(false, Ordering::SeqCst);
    gw.eventually("card posted after the outage, current", || async {
        gw.slack.calls("chat.postMessage").iter().any(|m| text_of(m).contains("Approved by bob"))
    })
    .await;
    gw.eventually("back up in /metrics", || async {
        metrics().await.contains("countersign_channel_up{channel=\"slack\"} 1")
    })
    .await;
    gw.eventually("slack up again in its health", || async {
        let (slack, _) = probe().await;
        slack.up && slack.detail.contains("last delivery") && slack.detail.contains("backlog 0")
    })
    .await;
    // Teams and webhooks were never held up.
    assert!(!gw.bot.cards().is_empty());
    assert!(!gw.hook.state.received.lock().unwrap().is_empty());
    assert_slack_sdk_accepts_everything(&gw.slack);
}

async fn rejections(gw: &Gateway) -> usize {
    gw.refusals_accounted("integration.rejected").await
}
