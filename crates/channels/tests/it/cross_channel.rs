//! One quorum reached across Slack, Teams and the API together, with the
//! waiting agent released as soon as the last approval lands.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn one_quorum_from_slack_teams_and_the_api() {
    let gw = gateway().await;
    let id = gw
        .submit(
            json!({"kind": "sql.execute", "resource": "prod-db", "payload": {"statement": "UPDATE plans SET tier = 2"},
                        "justification": "migration step 3"}),
        )
        .await;
    // The agent waits for the decision, as `countersign exec` does.
    let waiter = {
        let http = gw.http.clone();
        let url = format!("{}/v1/actions/{id}?wait=30", gw.url);
        let token = gw.token("bot").to_owned();
        tokio::spawn(async move {
            let response = http.get(url).bearer_auth(token).send().await.unwrap();
            response.json::<serde_json::Value>().await.unwrap()
        })
    };
    // carol on Slack,
    gw.slack_post(&click("UCAROL", countersign_channels::slack::blocks::APPROVE, &id, "C1")).await;
    gw.eventually("carol's approval", || async { gw.request(&id).await.votes.len() == 1 }).await;
    // dave on Teams,
    let token = bot_token(&gw.bot.service_url, json!({}));
    let (status, _) = teams_post(&gw, Some(&token), &invoke(&gw, "29:dave", "aad-dave", "approve", &id, None)).await;
    assert_eq!(status, 200);
    assert_eq!(gw.request(&id).await.status.as_str(), "pending", "two of three");
    // and erin over the API.
    let (status, _) = gw
        .api(reqwest::Method::POST, &format!("/v1/actions/{id}/approve"), "erin", Some(json!({"comment": "ok"})))
        .await;
    assert_eq!(status, 200);
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await.unwrap().unwrap();
    assert_eq!(seen["status"], "approved", "{seen}");
    let request = gw.request(&id).await;
    let mut voters: Vec<&str> = request.votes.iter().map(|v| v.by.name.as_str()).collect();
    voters.sort_unstable();
    assert_eq!(voters, ["carol", "dave", "erin"]);
    // Every channel shows the final state.
    gw.eventually("Slack shows it", || async {
        gw.slack.calls("chat.update").iter().any(|u| u["blocks"].to_string().contains("Approved by carol, dave, erin"))
    })
    .await;
    gw.eventually("Teams shows it", || async {
        gw.bot.calls("update").iter().any(|(_, _, b)| b.to_string().contains("Approved by carol, dave, erin"))
    })
    .await;
    assert_slack_sdk_accepts_everything(&gw.slack);
    assert_adaptivecards_accepts(&gw.bot.cards());
}
