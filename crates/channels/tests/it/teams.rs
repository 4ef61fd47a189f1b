//! Teams: Bot Framework JWT validation (held to the Bot Framework SDK's own
//! verdicts), Universal Action clicks answered with the refreshed card,
//! the Action.Submit fallback, and card updates.

use serde_json::{json, Value};

use crate::standins::APP_ID;
use crate::support::*;

fn sql() -> Value {
    json!({"kind": "sql.execute", "resource": "prod-db", "payload": {"statement": "DELETE FROM users WHERE id = 7"},
           "on_behalf_of": "owen", "justification": "GDPR erasure, ticket 42", "context": {"confidence": 0.75}})
}

#[tokio::test]
async fn tokens_are_accepted_exactly_when_the_bot_framework_sdk_accepts_them() {
    let gw = gateway().await;
    let id = gw.submit(sql()).await;
    let service = gw.bot.service_url.clone();
    let now = countersign_core::Timestamp::now().as_millis() / 1000;
    let other_key = {
        // Signed by a key the JWKS does not hold.
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("test-key-1".into());
        let claims =
            json!({"serviceurl": service, "exp": now + 600, "iss": "https://api.botframework.com", "aud": APP_ID});
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(b"guess")).unwrap()
    };
    let good = bot_token(&service, json!({}));
    // Change a signature character that carries only signature bits (the
    // last one also holds padding bits that decoders may ignore).
    let mut tampered: Vec<char> = good.chars().collect();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let cases: Vec<(&str, String, &str, bool)> = vec![
        ("valid", good.clone(), "msteams", true),
        ("wrong audience", bot_token(&service, json!({"aud": "someone-else"})), "msteams", false),
        ("wrong issuer", bot_token(&service, json!({"iss": "https://evil.example"})), "msteams", false),
        ("expired", bot_token(&service, json!({"exp": now - 600, "nbf": now - 7200})), "msteams", false),
        ("not yet valid", bot_token(&service, json!({"nbf": now + 3600, "exp": now + 7200})), "msteams", false),
        ("unknown key", bot_token(&service, json!({"kid": "rotated-away"})), "msteams", false),
        ("bad signature", tampered, "msteams", false),
        ("HS256 with a guessed key", other_key, "msteams", false),
        ("other service URL", bot_token("https://evil.example/", json!({})), "msteams", false),
        ("no service URL", bot_token(&service, json!({"serviceurl": null})), "msteams", false),
        ("channel not endorsed", good.clone(), "skype", false),
        ("no token", String::new(), "msteams", false),
    ];
    let mut ours = Vec::new();
    for (name, token, channel, _) in &cases {
        let mut activity = invoke(&gw, "29:dave", "aad-dave", "refresh", &id, None);
        activity["channelId"] = json!(channel);
        let (status, _) = teams_post(&gw, (!token.is_empty()).then_some(token.as_str()), &activity).await;
        assert!(status == 200 || status == 401, "{name}: {status}");
        ours.push(status == 200);
    }
    let sdk = botframework_verdicts(
        &gw.bot.metadata_url,
        &cases.iter().map(|(_, t, c, _)| (t.clone(), service.clone(), (*c).to_owned())).collect::<Vec<_>>(),
    )
    .await;
    for (i, (name, _, _, expected)) in cases.iter().enumerate() {
        assert_eq!(ours[i], *expected, "countersign on `{name}`");
        assert_eq!(sdk[i], *expected, "the Bot Framework SDK on `{name}`");
    }
    let rejected = gw.refusals_accounted("integration.rejected").await;
    assert_eq!(rejected, cases.iter().filter(|c| !c.3).count(), "every rejection is audited");
}

/// Stricter than the SDK (which lets a key without endorsements sign for
/// any channel, and any endorsed channel in): only Teams activities, signed
/// by keys that endorse Teams, reach the vote. Every refusal is audited and
/// no vote is recorded.
#[tokio::test]
async fn only_teams_activities_signed_by_keys_endorsing_teams_can_vote() {
    let gw = gateway().await;
    let id = gw.submit(sql()).await;
    let service = gw.bot.service_url.clone();
    let token = |kid: &str| bot_token(&service, json!({"kid": kid}));
    let refused = [
        ("endorsed key, webchat activity", token("test-key-1"), json!("webchat")),
        ("endorsed key, directline activity", token("test-key-1"), json!("directline")),
        ("endorsed key, channel in upper case", token("test-key-1"), json!("MSTEAMS")),
        ("endorsed key, no channel", token("test-key-1"), Value::Null),
        ("endorsed key, channel not a string", token("test-key-1"), json!(["msteams"])),
        ("webchat key, webchat activity", token("webchat-only"), json!("webchat")),
        ("webchat key, Teams activity", token("webchat-only"), json!("msteams")),
        ("key without endorsements, Teams activity", token("no-endorsements"), json!("msteams")),
        ("key without endorsements, webchat activity", token("no-endorsements"), json!("webchat")),
        ("key with empty endorsements, Teams activity", token("empty-endorsements"), json!("msteams")),
    ];
    for (name, token, channel) in &refused {
        let mut activity = invoke(&gw, "29:dave", "aad-dave", "approve", &id, None);
        activity["channelId"] = channel.clone();
        let (status, _) = teams_post(&gw, Some(token), &activity).await;
        assert_eq!(status, 401, "{name}");
    }
    assert!(gw.request(&id).await.votes.is_empty(), "no refused activity voted");
    let rejected = gw.refusals_accounted("integration.rejected").await;
    assert_eq!(rejected, refused.len(), "every rejection is audited");
    // The same click from Teams, signed by the Teams key, votes.
    let (status, answer) =
        teams_post(&gw, Some(&token("test-key-1")), &invoke(&gw, "29:dave", "aad-dave", "approve", &id, None)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(gw.request(&id).await.votes.len(), 1);
}

#[tokio::test]
async fn a_click_answers_with_the_refreshed_card_and_the_posted_card_follows() {
    let gw = gateway().await;
    let id = gw.submit(sql()).await;
    gw.eventually("card posted to Teams", || async { !gw.bot.calls("send").is_empty() }).await;
    let (conversation, _, sent) = gw.bot.calls("send")[0].clone();
    assert_eq!(conversation, "19:approvals@thread.tacv2");
    let card = &sent["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    let text = card["content"].to_string();
    for expected in [
        "sql.execute",
        "prod-db",
        "DELETE FROM users",
        "GDPR erasure",
        "75%",
        "prod-db-three-dbas",
        "Action.Execute",
        "Action.Submit",
    ] {
        assert!(text.contains(expected), "card lacks `{expected}`: {text}");
    }
    // dave (by email) approves with a comment: the answer is the refreshed card.
    let token = bot_token(&gw.bot.service_url, json!({}));
    let (status, answer) =
        teams_post(&gw, Some(&token), &invoke(&gw, "29:dave", "aad-dave", "approve", &id, Some("looks right"))).await;
    assert_eq!(status, 200);
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["type"], "application/vnd.microsoft.card.adaptive", "{answer}");
    assert!(answer["value"].to_string().contains("1 approved so far"), "{answer}");
    let request = gw.request(&id).await;
    assert_eq!(request.votes[0].by.name, "dave");
    assert_eq!(request.votes[0].comment.as_deref(), Some("looks right"));
    // erin (by UPN, different case) approves twice: the second is refused, only to her.
    let erin = invoke(&gw, "29:erin", "aad-erin", "approve", &id, None);
    assert_eq!(teams_post(&gw, Some(&token), &erin).await.1["type"], "application/vnd.microsoft.card.adaptive");
    let (_, again) = teams_post(&gw, Some(&token), &erin).await;
    assert_eq!(again["type"], "application/vnd.microsoft.activity.message", "{again}");
    assert!(again["value"].as_str().unwrap().contains("already approved"), "{again}");
    // An unknown member is told why.
    let (_, stranger) = teams_post(&gw, Some(&token), &invoke(&gw, "29:nobody", "aad-x", "approve", &id, None)).await;
    assert_eq!(stranger["type"], "application/vnd.microsoft.activity.message", "{stranger}");
    // The posted card is replaced as approvals arrive.
    gw.eventually("card updated", || async {
        gw.bot.calls("update").iter().any(|(_, _, body)| body.to_string().contains("2 approved so far"))
    })
    .await;
    let mut cards = gw.bot.cards();
    cards.push(answer["value"].clone());
    assert_adaptivecards_accepts(&cards);
    assert_bot_framework_sdk_accepts_everything(&gw.bot).await;
    // The bot authenticated to the connector with its app password.
    let tokens = gw.bot.state.token_requests.lock().unwrap().clone();
    assert!(
        !tokens.is_empty()
            && tokens
                .iter()
                .all(|t| t.get("scope").map(String::as_str) == Some("https://api.botframework.com/.default"))
    );
}

#[tokio::test]
async fn action_submit_is_the_fallback() {
    let gw = gateway().await;
    let id = gw.submit(sql()).await;
    let token = bot_token(&gw.bot.service_url, json!({}));
    let message = json!({
        "type": "message", "id": "m1", "channelId": "msteams", "serviceUrl": gw.bot.service_url,
        "from": {"id": "29:erin", "aadObjectId": "aad-erin"},
        "conversation": {"id": "19:approvals@thread.tacv2"},
        "replyToId": "activity-0",
        "value": {"verb": "deny", "id": id, "comment": "no erasure without legal"},
    });
    let (status, _) = teams_post(&gw, Some(&token), &message).await;
    assert_eq!(status, 200);
    let request = gw.request(&id).await;
    assert_eq!(request.status.as_str(), "denied");
    assert_eq!(request.votes[0].comment.as_deref(), Some("no erasure without legal"));
    // A refused fallback click is answered in the conversation.
    let (status, _) = teams_post(&gw, Some(&token), &message).await;
    assert_eq!(status, 200);
    gw.eventually("reply with the refusal", || async {
        gw.bot.calls("send").iter().any(|(_, _, body)| body["replyToId"] == "m1")
    })
    .await;
    gw.eventually("denied card", || async {
        gw.bot.calls("update").iter().any(|(_, _, body)| body.to_string().contains("Denied by erin"))
    })
    .await;
    assert_adaptivecards_accepts(&gw.bot.cards());
    assert_bot_framework_sdk_accepts_everything(&gw.bot).await;
}

#[tokio::test]
async fn the_owner_hears_in_teams_once_decided_and_botbuilder_reads_every_click() {
    let gw = gateway().await;
    let id = gw.submit(sql()).await;
    let token = bot_token(&gw.bot.service_url, json!({}));
    let mut exchanges = Vec::new();
    // owen owns the agent: his click is refused (self-approval), and it
    // teaches countersign where owen is in Teams.
    for (member, aad, verb, comment) in [
        ("29:owen", "aad-owen", "approve", None),
        ("29:dave", "aad-dave", "approve", Some("fine")),
        ("29:erin", "aad-erin", "deny", Some("not without legal")),
    ] {
        let activity = invoke(&gw, member, aad, verb, &id, comment);
        let (status, answer) = teams_post(&gw, Some(&token), &activity).await;
        assert_eq!(status, 200);
        exchanges.push((activity, answer));
    }
    assert!(exchanges[0].1["value"].as_str().unwrap().contains("Not applied"), "{}", exchanges[0].1);
    assert_eq!(gw.request(&id).await.status.as_str(), "denied");
    let learned: Value =
        serde_json::from_str(&gw.store.kv_get("channels", "teams:user:owen").await.unwrap().unwrap()).unwrap();
    assert_eq!(learned["member"], "29:owen");
    assert_eq!(learned["tenant"], TENANT);

    // The DM: a 1:1 conversation with owen in his tenant, then the message.
    gw.eventually("DM to owen in Teams", || async {
        gw.bot.calls("send").iter().any(|(c, _, _)| c == "a:1on1-29:owen")
    })
    .await;
    let created = gw.bot.state.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["members"], json!([{"id": "29:owen"}]));
    assert_eq!(created[0]["channelData"]["tenant"]["id"], TENANT);
    let (_, _, dm) = gw.bot.calls("send").into_iter().find(|(c, _, _)| c == "a:1on1-29:owen").unwrap();
    assert_eq!(dm["type"], "message");
    assert!(dm["text"].as_str().unwrap().contains("Denied"), "{dm}");
    // Once, however the request moves on.
    let (status, _) = gw
        .api(reqwest::Method::POST, &format!("/v1/actions/{id}/comments"), "carol", Some(json!({"comment": "noted"})))
        .await;
    assert_eq!(status, 200, "a later change");
    gw.eventually("comment on the card", || async {
        gw.bot.calls("update").iter().any(|(_, _, body)| body.to_string().contains("noted"))
    })
    .await;
    assert_eq!(gw.bot.calls("send").iter().filter(|(c, _, _)| c == "a:1on1-29:owen").count(), 1);

    // The Bot Framework SDK: botbuilder's TeamsActivityHandler reads each
    // invoke as countersign did and takes countersign's answers as invoke
    // responses; botframework-connector opens the same 1:1 conversation
    // through the stand-in with the parameters countersign sent.
    let input: Vec<Value> = exchanges.iter().map(|(a, r)| json!({"activity": a, "response": r})).collect();
    let sdk = teams_sdk(json!({
        "invokes": input,
        "dm": {"serviceUrl": gw.bot.service_url, "token": "bot-access-token", "appId": crate::standins::APP_ID,
               "member": "29:owen", "tenant": TENANT},
    }))
    .await;
    for (i, parsed) in sdk["invokes"].as_array().unwrap().iter().enumerate() {
        let (activity, answer) = &exchanges[i];
        assert_eq!(parsed["error"], Value::Null, "{parsed}");
        assert_eq!(parsed["verb"], activity["value"]["action"]["verb"]);
        assert_eq!(parsed["data"], activity["value"]["action"]["data"]);
        assert_eq!(parsed["tenant"], TENANT);
        assert_eq!(parsed["status"], 200);
        assert_eq!(&parsed["body"], answer);
    }
    assert_eq!(sdk["dm"]["conversation"], "a:1on1-29:owen");
    let created = gw.bot.state.created.lock().unwrap().clone();
    assert_eq!(created.len(), 2);
    assert_eq!(created[0], created[1], "countersign asks for the conversation exactly as the SDK does");
    assert_bot_framework_sdk_accepts_everything(&gw.bot).await;
}

#[tokio::test]
async fn escalation_posts_to_a_teams_conversation_and_keeps_it_current() {
    let gw = gateway().await;
    let id =
        gw.submit(json!({"kind": "shell.exec", "resource": "slow-db-host", "payload": {"argv": ["vacuum"]}})).await;
    let leads = "19:db-leads@thread.tacv2";
    gw.eventually("escalated card in the leads' conversation", || async {
        gw.bot.calls("send").iter().any(|(c, _, _)| c == leads)
    })
    .await;
    let (_, activity_id, sent) = gw.bot.calls("send").into_iter().find(|(c, _, _)| c == leads).unwrap();
    assert!(sent["attachments"][0]["content"].to_string().contains("Escalated"), "{sent}");
    // Slack leaves a Teams target alone.
    assert!(gw.slack.calls("chat.postMessage").iter().all(|m| !m.to_string().contains("Escalated")));
    let (status, _) = gw
        .api(reqwest::Method::POST, &format!("/v1/actions/{id}/approve"), "carol", Some(json!({"comment": "ok"})))
        .await;
    assert_eq!(status, 200);
    gw.eventually("escalated copy updated", || async {
        gw.bot
            .calls("update")
            .iter()
            .any(|(c, a, body)| c == leads && *a == activity_id && body.to_string().contains("Approved by carol"))
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(gw.bot.calls("send").iter().filter(|(c, _, _)| c == leads).count(), 1, "escalated once");
    assert_adaptivecards_accepts(&gw.bot.cards());
    assert_bot_framework_sdk_accepts_everything(&gw.bot).await;
}

#[tokio::test]
async fn a_group_escalation_reaches_the_members_teams_knows() {
    let gw = gateway().await;
    // dave has clicked a card in Teams before; erin (also a DBA) has not.
    let earlier = gw.submit(sql()).await;
    let token = bot_token(&gw.bot.service_url, json!({}));
    let (status, _) =
        teams_post(&gw, Some(&token), &invoke(&gw, "29:dave", "aad-dave", "approve", &earlier, None)).await;
    assert_eq!(status, 200);
    let id = gw.submit(shell("slow-dba-review")).await;
    gw.eventually("escalation DM to dave in Teams", || async {
        gw.bot.calls("send").iter().any(|(c, _, body)| c == "a:1on1-29:dave" && body.to_string().contains("Escalated"))
    })
    .await;
    let created = gw.bot.state.created.lock().unwrap().clone();
    assert!(created.iter().all(|c| c["members"][0]["id"] == "29:dave"), "only dave: {created:?}");
    // The escalated copy follows the request.
    let (status, _) =
        gw.api(reqwest::Method::POST, &format!("/v1/actions/{id}/deny"), "alice", Some(json!({"comment": "no"}))).await;
    assert_eq!(status, 200);
    gw.eventually("escalated copy updated", || async {
        gw.bot
            .calls("update")
            .iter()
            .any(|(c, _, body)| c == "a:1on1-29:dave" && body.to_string().contains("Denied by alice"))
    })
    .await;
    assert_adaptivecards_accepts(&gw.bot.cards());
    assert_bot_framework_sdk_accepts_everything(&gw.bot).await;
}
