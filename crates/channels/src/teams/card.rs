//! The review card as an Adaptive Card (schema 1.5). Buttons are Universal
//! Actions (`Action.Execute`, verbs `approve` and `deny`) with an
//! `Action.Submit` fallback for hosts without them; both carry the request
//! id and the optional comment input. Text from the request is escaped so
//! an agent cannot inject links or formatting.

use countersign_core::text::truncate;
use countersign_core::VoteKind;
use serde_json::{json, Value};

use crate::card::{status_mark, thousands, ReviewCard};

/// The content type of an Adaptive Card attachment.
pub const CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// The id of the comment input, as it arrives in the action's data.
pub const COMMENT_INPUT: &str = "comment";
pub const APPROVE: &str = "approve";
pub const DENY: &str = "deny";
pub const REFRESH: &str = "refresh";

/// The card for `card`, with an optional note (e.g. a refusal for the clicker).
pub fn adaptive_card(card: &ReviewCard, note: Option<&str>) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "text": esc(&headline_with_mark(card)), "weight": "Bolder", "size": "Medium", "wrap": true
    })];
    if let Some(note) = note {
        body.push(json!({"type": "TextBlock", "text": esc(note), "color": "Attention", "wrap": true}));
    }
    let mut facts =
        vec![fact("Kind", &card.kind), fact("Resource", &card.resource), fact("Requester", &card.requester)];
    if let Some(owner) = &card.owner {
        facts.push(fact("Owner", owner));
    }
    if let Some(on_behalf_of) = &card.on_behalf_of {
        facts.push(fact("On behalf of", on_behalf_of));
    }
    if let Some(confidence) = &card.confidence {
        facts.push(fact("Stated confidence", confidence));
    }
    if !card.labels.is_empty() {
        facts.push(fact("Labels", &card.labels.join(", ")));
    }
    if let Some(deadline) = card.deadline {
        facts.push(fact(if card.open() { "Decide by" } else { "Release by" }, &deadline.to_rfc3339()));
    }
    facts.push(fact("Fingerprint", &card.fingerprint));
    body.push(json!({"type": "FactSet", "facts": facts}));
    body.push(text("**Action**"));
    body.push(json!({"type": "TextBlock", "text": esc(&card.action), "fontType": "Monospace", "wrap": true}));
    if card.action_omitted > 0 {
        // The card holds a bounded action; the console shows it whole.
        body.push(text(&format!(
            "… {} more {}; full action in the [console]({})",
            thousands(card.action_omitted),
            if card.action_omitted == 1 { "character" } else { "characters" },
            card.action_link()
        )));
    }
    if let Some(why) = &card.justification {
        body.push(text(&format!("**Why**: {}", esc(why))));
    }
    let mut risk = vec!["**Risk**".to_owned()];
    for r in &card.requirements {
        let step_up = if r.step_up { " (needs a fresh login)" } else { "" };
        risk.push(format!(
            "- {} needs {} of {}: {} approved so far{step_up}",
            esc(&r.policy),
            r.quorum,
            esc(&r.groups.join(", ")),
            r.approvals
        ));
    }
    risk.extend(card.facts.iter().map(|f| format!("- {}", esc(f))));
    body.push(text(&risk.join("\n")));
    let mut history = vec!["**History**".to_owned()];
    for past in &card.recent {
        let outcome = past.outcome.as_deref().map(|o| format!(", {o}")).unwrap_or_default();
        history.push(format!(
            "- {} {}{outcome}, {}",
            status_mark(past.status),
            past.status.as_str(),
            past.at.to_rfc3339()
        ));
    }
    if card.recent.is_empty() {
        history.push("- no earlier requests of this kind on this resource by this requester".to_owned());
    }
    history.push(format!("- similar requests approved: {} of {}", card.similar.0, card.similar.1));
    body.push(text(&history.join("\n")));
    if !card.votes.is_empty() || !card.comments.is_empty() {
        let mut lines = vec!["**Decisions**".to_owned()];
        for vote in &card.votes {
            let verb = match vote.kind {
                VoteKind::Approve => "✅ approved",
                VoteKind::Deny => "⛔ denied",
            };
            let comment = vote.comment.as_deref().map(|c| format!(": {}", esc(c))).unwrap_or_default();
            lines.push(format!("- {} {verb} at {}{comment}", esc(&vote.by), vote.at.to_rfc3339()));
        }
        for (by, comment) in &card.comments {
            lines.push(format!("- 💬 {}: {}", esc(by), esc(comment)));
        }
        body.push(text(&lines.join("\n")));
    }
    if let Some(result) = &card.result {
        body.push(
            json!({"type": "TextBlock", "text": format!("**{}**", esc(result)), "wrap": true, "color": "Accent"}),
        );
    }
    let mut actions = Vec::new();
    if card.open() {
        body.push(json!({"type": "Input.Text", "id": COMMENT_INPUT, "isMultiline": true, "maxLength": 1000,
            "placeholder": "Comment or reason (optional)", "label": "Comment"}));
        if !card.step_up_only() {
            actions.push(execute("Approve", APPROVE, &card.id, "positive"));
        }
        if card.step_up() {
            actions.push(json!({"type": "Action.OpenUrl", "title": "Approve with fresh login",
                "url": card.console_url}));
        }
        actions.push(execute("Deny", DENY, &card.id, "destructive"));
    }
    actions.push(json!({"type": "Action.OpenUrl", "title": "Open in console", "url": card.console_url}));
    json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
        "actions": actions,
    })
}

/// A message activity carrying the card.
pub fn activity(card: &Value, summary: &str) -> Value {
    json!({
        "type": "message",
        "summary": truncate(summary, 200),
        "attachments": [{"contentType": CONTENT_TYPE, "content": card}],
    })
}

fn execute(title: &str, verb: &str, id: &str, style: &str) -> Value {
    json!({
        "type": "Action.Execute", "title": title, "verb": verb, "style": style,
        "data": {"id": id},
        "fallback": {"type": "Action.Submit", "title": title, "style": style, "data": {"verb": verb, "id": id}},
    })
}

fn fact(title: &str, value: &str) -> Value {
    json!({"title": title, "value": esc(&truncate(value, 500))})
}

fn text(text: &str) -> Value {
    json!({"type": "TextBlock", "text": truncate(text, 4000), "wrap": true})
}

/// Escapes what Adaptive Card markdown gives meaning to: emphasis, code
/// and link brackets anywhere, list and heading markers at a line start.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let body = line.trim_start();
        out.push_str(&line[..line.len() - body.len()]);
        let digits = body.chars().take_while(char::is_ascii_digit).count();
        for (j, c) in body.chars().enumerate() {
            let starts_block = j == 0 && matches!(c, '-' | '+' | '#' | '>');
            let numbered = digits > 0 && j == digits && c == '.';
            if starts_block || numbered || matches!(c, '\\' | '*' | '_' | '[' | ']' | '`' | '~') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

fn headline_with_mark(card: &ReviewCard) -> String {
    format!("{} {}", status_mark(card.status), card.headline())
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn markdown_is_neutralised() {
        assert_eq!(esc("[x](http://e) *b* `c`"), "\\[x\\](http://e) \\*b\\* \\`c\\`");
        assert_eq!(esc("- item\n  1. one\nprod-db"), "\\- item\n  1\\. one\nprod-db");
    }
}
