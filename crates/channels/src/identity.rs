//! Who clicked: chat accounts mapped to countersign users, by an explicit
//! mapping or by a verified email (the one rule the console's logins
//! follow too, [`countersign_gateway::directory`]). The mapped user then votes under every rule of the
//! approval loop, exactly as through the API.

use countersign_audit::AuditDraft;
use countersign_core::events::{ChannelClick, Event};
use countersign_core::Request;
use countersign_gateway::directory::{EmailAssertion, MatchError};
use countersign_gateway::AppState;
use countersign_store::{StoreError, User};

/// The live user named `name`.
pub async fn by_name(state: &AppState, name: &str) -> Result<Option<User>, StoreError> {
    state.directory().live_user(name).await
}

/// The live user that a chat account's email names, under the one rule of
/// [`countersign_gateway::directory`] (the address must be verified by the
/// chat service, and a user belongs to one account of each chat
/// workspace). One person may hold several identities (same email); the
/// one whose groups can decide `request` is preferred, then the first by
/// name, so the choice is stable.
pub async fn by_email(
    state: &AppState,
    assertion: &EmailAssertion,
    request: Option<&Request>,
) -> Result<Option<User>, MatchError> {
    let decides = |u: &User| request.is_some_and(|r| r.requirements.iter().any(|q| q.admits(&u.groups)));
    state.directory().by_email(assertion, decides).await
}

/// The audit record of a click, accepted or not: which chat account, which
/// countersign user it mapped to (if any), on which request.
pub fn click_event(
    channel: &str,
    account: &str,
    user: Option<&User>,
    request_id: &str,
    action: &str,
    refused: Option<&str>,
) -> AuditDraft {
    let actor = user.map_or_else(|| format!("{channel}:{account}"), |u| format!("user:{}", u.name));
    let click = ChannelClick {
        channel: channel.to_owned(),
        account: account.to_owned(),
        user: user.map(|u| u.name.clone()),
        request: request_id.to_owned(),
        action: action.to_owned(),
        refused: refused.map(str::to_owned),
    };
    AuditDraft::new(actor, Event::ChannelClick(click))
}
