//! The review card as Block Kit, and the reason modal. Every string from a
//! request is escaped for mrkdwn (`&`, `<`, `>`), so an agent cannot ping
//! `@channel` or forge links, and cut to Block Kit's limits.

use countersign_core::text::truncate;
use countersign_core::{Timestamp, VoteKind};
use serde_json::{json, Value};

use crate::card::{cut, status_mark, status_title, thousands, ReviewCard, MAX_ACTION_CHARS};

/// The most characters Slack takes in a section's text.
const SECTION_MAX: usize = 3000;

/// `action_id`s of the card's buttons.
pub const APPROVE: &str = "countersign_approve";
pub const APPROVE_WITH_COMMENT: &str = "countersign_approve_comment";
pub const DENY: &str = "countersign_deny";
pub const STEP_UP: &str = "countersign_step_up";
/// The modal's `callback_id` and its reason input.
pub const VOTE_MODAL: &str = "countersign_vote";
pub const REASON_BLOCK: &str = "reason";
pub const REASON_INPUT: &str = "text";

/// The message: a fallback text (notifications, screen readers) and blocks.
pub fn message(card: &ReviewCard, note: Option<&str>) -> (String, Vec<Value>) {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&format!("{} {}", status_mark(card.status), card.headline()), 150), "emoji": true}
    })];
    if let Some(note) = note {
        blocks.push(json!({"type": "context", "elements": [mrkdwn(&esc(note))]}));
    }
    blocks.push(section(&what(card)));
    let mut fields = vec![field("Requester", &card.requester)];
    if let Some(owner) = &card.owner {
        fields.push(field("Owner", owner));
    }
    if let Some(on_behalf_of) = &card.on_behalf_of {
        fields.push(field("On behalf of", on_behalf_of));
    }
    if let Some(confidence) = &card.confidence {
        fields.push(field("Stated confidence", confidence));
    }
    if !card.labels.is_empty() {
        fields.push(field("Labels", &card.labels.join(", ")));
    }
    if let Some(deadline) = card.deadline {
        let label = if card.open() { "Decide by" } else { "Release by" };
        fields.push(mrkdwn(&format!("*{label}*\n{}", date(deadline))));
    }
    blocks.push(json!({"type": "section", "fields": fields}));
    if let Some(why) = &card.justification {
        blocks.push(section(&format!("*Why*\n{}", esc(why))));
    }
    blocks.push(section(&risk(card)));
    blocks.push(section(&history(card)));
    if !card.votes.is_empty() || !card.comments.is_empty() {
        blocks.push(section(&decisions(card)));
    }
    if let Some(result) = &card.result {
        blocks.push(section(&format!("*{} {}*", status_mark(card.status), esc(result))));
    }
    if card.open() {
        blocks.push(json!({"type": "actions", "block_id": "countersign_actions", "elements": buttons(card)}));
    }
    blocks.push(json!({"type": "context", "elements": [mrkdwn(&format!(
        "<{}|API> · <{}|Console> · `{}` · {}",
        card.api_url,
        card.console_url,
        esc(&card.fingerprint),
        card.progress()
    ))]}));
    let text = truncate(&format!("{} — {} ({})", card.headline(), card.requester, card.progress()), 3000);
    (text, blocks)
}

/// The *What* section: the action cut to what fits in a section once
/// escaped and, when cut, how much is left out and a link to the console
/// page that shows it whole.
fn what(card: &ReviewCard) -> String {
    let head = format!("*What*  `{}` on `{}`\n", esc(&truncate(&card.kind, 200)), esc(&truncate(&card.resource, 200)));
    let notice_room = card.action_link().chars().count() + 80;
    let budget = SECTION_MAX.saturating_sub(head.chars().count() + 6 + notice_room).min(MAX_ACTION_CHARS);
    let (shown, omitted) = cut(&card.action_full, budget, |c| match c {
        '&' => 5,
        '<' | '>' => 4,
        // A run of three gets a zero-width space.
        '`' => 2,
        _ => 1,
    });
    let mut what = format!("{head}```{}```", esc(shown).replace("```", "`\u{200b}``"));
    if omitted > 0 {
        what.push_str(&format!(
            "\n_… {} more {}; full action in the <{}|console>_",
            thousands(omitted),
            if omitted == 1 { "character" } else { "characters" },
            card.action_link()
        ));
    }
    what
}

fn buttons(card: &ReviewCard) -> Vec<Value> {
    let mut buttons = Vec::new();
    if !card.step_up_only() {
        buttons.push(json!({"type": "button", "action_id": APPROVE, "style": "primary", "value": card.id,
            "text": {"type": "plain_text", "text": "Approve"}}));
        buttons.push(json!({"type": "button", "action_id": APPROVE_WITH_COMMENT, "value": card.id,
            "text": {"type": "plain_text", "text": "Approve with comment"}}));
    }
    if card.step_up() {
        buttons.push(json!({"type": "button", "action_id": STEP_UP, "value": card.id,
            "url": card.console_url,
            "text": {"type": "plain_text", "text": "Approve with fresh login"}}));
    }
    buttons.push(json!({"type": "button", "action_id": DENY, "style": "danger", "value": card.id,
        "text": {"type": "plain_text", "text": "Deny"}}));
    buttons
}

fn risk(card: &ReviewCard) -> String {
    let mut lines = vec!["*Risk*".to_owned()];
    for r in &card.requirements {
        let step_up = if r.step_up { " · needs a fresh login (step-up)" } else { "" };
        lines.push(format!(
            "• `{}` needs {} of {} — {} approved so far{step_up}",
            esc(&r.policy),
            r.quorum,
            esc(&r.groups.join(", ")),
            r.approvals
        ));
    }
    for fact in &card.facts {
        lines.push(format!("• {}", esc(fact)));
    }
    truncate(&lines.join("\n"), 3000)
}

fn history(card: &ReviewCard) -> String {
    let mut lines = vec!["*History*".to_owned()];
    if card.recent.is_empty() {
        lines.push("• no earlier requests of this kind on this resource by this requester".to_owned());
    }
    for past in &card.recent {
        let outcome = past.outcome.as_deref().map(|o| format!(", {o}")).unwrap_or_default();
        lines.push(format!("• {} {}{outcome} — {}", status_mark(past.status), past.status.as_str(), date(past.at)));
    }
    let (approved, decided) = card.similar;
    lines.push(format!("• similar requests approved: {approved} of {decided}"));
    truncate(&lines.join("\n"), 3000)
}

fn decisions(card: &ReviewCard) -> String {
    let mut lines = vec!["*Decisions*".to_owned()];
    for vote in &card.votes {
        let (mark, verb) = match vote.kind {
            VoteKind::Approve => ("✅", "approved"),
            VoteKind::Deny => ("⛔", "denied"),
        };
        let comment = vote.comment.as_deref().map(|c| format!(": “{}”", esc(c))).unwrap_or_default();
        lines.push(format!("{mark} {} {verb} {}{comment}", esc(&vote.by), date(vote.at)));
    }
    for (by, text) in &card.comments {
        lines.push(format!("💬 {}: “{}”", esc(by), esc(text)));
    }
    truncate(&lines.join("\n"), 3000)
}

/// The modal asking for a reason (deny) or a comment (approve).
pub fn reason_modal(card: &ReviewCard, kind: VoteKind, channel: Option<&str>) -> Value {
    let (title, submit, label) = match kind {
        VoteKind::Approve => ("Approve request", "Approve", "Comment"),
        VoteKind::Deny => ("Deny request", "Deny", "Reason"),
    };
    let metadata = json!({"id": card.id, "kind": kind, "channel": channel}).to_string();
    json!({
        "type": "modal",
        "callback_id": VOTE_MODAL,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(&format!("{} `{}` on `{}` by {}", status_mark(card.status), esc(&card.kind), esc(&card.resource), esc(&card.requester))),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": label},
                "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": true, "min_length": 1, "max_length": 3000}
            }
        ]
    })
}

/// A short status line, e.g. for DMs.
pub fn summary(card: &ReviewCard) -> String {
    let result = card.result.as_deref().unwrap_or(status_title(card.status));
    format!(
        "{} `{}` on `{}` by {}: {}",
        status_mark(card.status),
        esc(&card.kind),
        esc(&card.resource),
        esc(&card.requester),
        esc(result)
    )
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": mrkdwn(&truncate(text, 3000))})
}

fn field(label: &str, value: &str) -> Value {
    mrkdwn(&truncate(&format!("*{label}*\n{}", esc(value)), 2000))
}

fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

/// A date Slack shows in the reader's time zone, with an RFC 3339 fallback.
fn date(at: Timestamp) -> String {
    format!("<!date^{}^{{date_short_pretty}} {{time}}|{}>", at.as_millis() / 1000, at.to_rfc3339())
}

/// Escapes the three characters mrkdwn treats as control.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
