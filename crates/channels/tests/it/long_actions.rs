//! An action longer than a card holds: both chat channels cut it to their
//! limits, say how many characters are left out, and link to the console
//! page that shows it whole.

use serde_json::{json, Value};

use crate::support::*;

/// A payload whose pretty JSON runs far past any card, with characters
/// that grow when escaped for Slack (`&`, `<`, `>`) and backticks.
fn long_payload() -> Value {
    json!({"argv": ["sh", "-c", format!("echo start; {} echo end", "a && b < c > ``` ".repeat(800))]})
}

fn total_chars(payload: &Value) -> usize {
    serde_json::to_string_pretty(payload).unwrap().chars().count()
}

/// The `N` of `… N more characters`.
fn omitted(text: &str) -> usize {
    let at = text.find("… ").expect("a notice") + "… ".len();
    let digits: String = text[at..].chars().take_while(|c| c.is_ascii_digit() || *c == ',').collect();
    digits.replace(',', "").parse().unwrap()
}

#[tokio::test]
async fn slack_says_how_much_of_a_long_action_is_cut_and_links_the_whole() {
    let gw = gateway().await;
    let payload = long_payload();
    let mut action = shell("prod-web");
    action["payload"] = payload.clone();
    let id = gw.submit(action).await;
    gw.eventually("card posted", || async { !gw.slack.calls("chat.postMessage").is_empty() }).await;
    let posted = gw.slack.calls("chat.postMessage")[0].clone();
    let blocks = posted["blocks"].as_array().unwrap();
    for block in blocks {
        if let Some(text) = block.pointer("/text/text").and_then(Value::as_str) {
            assert!(text.chars().count() <= 3000, "a section over Slack's limit: {} chars", text.chars().count());
        }
    }
    let what = blocks
        .iter()
        .filter_map(|b| b.pointer("/text/text").and_then(Value::as_str))
        .find(|t| t.starts_with("*What*"))
        .unwrap();
    assert!(what.contains(&format!("full action in the <{}/console/requests/{id}#action|console>", gw.url)), "{what}");
    // What is shown plus what is said to be left out is the whole action.
    let shown = what.split("```").nth(1).unwrap();
    let unescaped = shown.replace("`\u{200b}``", "```").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    assert_eq!(unescaped.chars().count() + omitted(what), total_chars(&payload), "{what}");
    assert!(omitted(what) > 10_000);
    assert_slack_sdk_accepts_everything(&gw.slack);

    // A short action has no notice.
    let short = gw.submit(shell("prod-web")).await;
    gw.eventually("second card", || async { gw.slack.calls("chat.postMessage").len() >= 2 }).await;
    let card = gw.slack.calls("chat.postMessage")[1]["blocks"].to_string();
    assert!(card.contains(&short) && !card.contains("more characters"), "{card}");
}

#[tokio::test]
async fn teams_says_how_much_of_a_long_action_is_cut_and_links_the_whole() {
    let gw = gateway().await;
    let statement = format!("SELECT 1; -- {}", "[x](y) *z* ".repeat(1000));
    let payload = json!({"statement": statement});
    let id = gw
        .submit(json!({"kind": "sql.execute", "resource": "prod-db", "payload": payload,
                       "justification": "long", "on_behalf_of": "owen"}))
        .await;
    gw.eventually("card posted to Teams", || async { !gw.bot.calls("send").is_empty() }).await;
    let (_, _, sent) = gw.bot.calls("send")[0].clone();
    let card = sent["attachments"][0]["content"].clone();
    let texts: Vec<String> =
        card["body"].as_array().unwrap().iter().filter_map(|b| b["text"].as_str().map(str::to_owned)).collect();
    let notice = texts.iter().find(|t| t.contains("more characters")).expect("a notice");
    assert!(notice.contains(&format!("[console]({}/console/requests/{id}#action)", gw.url)), "{notice}");
    assert_eq!(omitted(notice), total_chars(&payload) - 2500, "{notice}");
    assert_adaptivecards_accepts(&[card]);
}
