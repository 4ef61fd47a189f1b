//! One request: the review card (what, who, why, risk, history), the
//! approvals so far, the comment thread, and the decision form. The
//! gateway enforces every rule; this page explains them beforehand — a
//! disabled button says why — and afterwards (a refused vote names the
//! rule). A vote that needs a fresh login sends the person to the identity
//! provider and back.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use countersign_core::lifecycle::needs_step_up;
use countersign_core::{Approver, Assurance, PrincipalKind, Request, Status, VoteKind};
use countersign_gateway::identify::AuthContext;
use countersign_gateway::GatewayError;

use crate::failure::{failure, respond, Failure};
use countersign_store::RequestFilter;
use maud::{html, Markup};
use serde::Deserialize;

use crate::html::{status_badge, time, url_part};
use crate::layout::{csrf_field, notice, page as frame, Notice, Section};
use crate::session::Viewer;
use crate::view::needs;
use crate::Shared;

#[derive(Debug, Deserialize)]
pub struct Flash {
    done: Option<String>,
    refused: Option<String>,
}

pub async fn page(
    State(state): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let seen = match state.app.visible_request(&viewer.principal, &id).await {
        Ok(r) => state.app.as_read_by(&viewer.principal, r).await,
        Err(e) => Err(e),
    };
    let request = match seen {
        Ok(r) => r,
        Err(e) => {
            return match failure(&e) {
                Failure::NotFound => not_found(&viewer, &id),
                Failure::Refused | Failure::Broken => respond(e),
            }
        }
    };
    let body = html! {
        @if let Some(done) = flash.done.as_deref() { (notice(Notice::Ok, done_text(done))) }
        @if let Some(code) = flash.refused.as_deref() { (notice(Notice::Error, refusal_text(code))) }
        h1 {
            (request.action.kind) " on " (request.action.resource) " " (status_badge(request.status.as_str()))
        }
        (review_card(&state, &viewer, &request).await)
        (decision(&state, &viewer, &request).await)
        (votes(&request))
        (comments(&viewer, &request))
    };
    let title = format!("{} on {}", request.action.kind, request.action.resource);
    frame(&title, Section::Pending, Some(&viewer), body).into_response()
}

fn not_found(viewer: &Viewer, id: &str) -> Response {
    let body = html! {
        h1 { "Not found" }
        p { "There is no request " code { (id) } " that you may see." }
        p { a href="/console/" { "Back to the queue" } }
    };
    (StatusCode::NOT_FOUND, frame("Not found", Section::Pending, Some(viewer), body)).into_response()
}

fn done_text(code: &str) -> &'static str {
    match code {
        "approved" => "Your approval is recorded.",
        "denied" => "Your denial is recorded; the request is denied.",
        "commented" => "Your comment is added.",
        _ => "Done.",
    }
}

/// Words for the gateway's refusal codes. Unknown codes get a generic text,
/// so nothing from the URL is ever echoed.
pub fn refusal_text(code: &str) -> &'static str {
    match code {
        "self_approval" => {
            "You cannot decide this: you asked for it, own the agent that asked, or it acts on your behalf."
        }
        "not_an_approver" => "You are not in any approver group of this request.",
        "duplicate_vote" => "You have already approved this request.",
        "not_pending" => "This request is no longer waiting for a decision.",
        "expired" => "This request's deadline has passed.",
        "step_up_required" => "This approval needs a fresh login at your identity provider.",
        "humans_only" | "no_email" => "Only people with an email address can approve or deny.",
        "invalid_comment" => "A comment needs 1 to 4096 characters.",
        "csrf" => "The form expired. Reload the page and try again.",
        _ => "The gateway refused that.",
    }
}

async fn review_card(state: &Shared, viewer: &Viewer, r: &Request) -> Markup {
    let a = &r.action;
    // The same text the chat channels show: payload, justification and
    // facts with secrets hidden; the fingerprint binds the approval to the
    // full action all the same.
    let card = state.cards.as_ref().map(|cards| cards.without_history(r));
    let hidden = html! { p class="muted" { "Hidden: the gateway's redaction patterns are invalid." } };
    let policies = if r.policies.is_empty() { "—".to_owned() } else { r.policies.join(", ") };
    html! {
        section class="card review" aria-labelledby="review-h" {
            h2 id="review-h" { "Review" }
            div class="grid" {
                div {
                    h3 { "What" }
                    dl {
                        dt { "Kind" } dd { code { (a.kind) } }
                        dt { "Resource" } dd { code { (a.resource) } }
                        dt { "Payload" }
                        dd {
                            // Whole here, whatever its length: chat cards cut
                            // it and link to this section (`#action`).
                            @match &card {
                                Some(c) => {
                                    pre class="json" id="action" tabindex="0"
                                        aria-label={ "The whole action, " (c.action_full.chars().count()) " characters" } {
                                        (c.action_full)
                                    }
                                }
                                None => (hidden),
                            }
                        }
                        dt { "Fingerprint" } dd { code class="wrap" { (r.fingerprint.as_str()) } }
                    }
                }
                div {
                    h3 { "Who" }
                    dl {
                        dt { "Requested by" } dd { (r.principal.to_string()) }
                        dt { "Owner" } dd { (r.owner.as_deref().unwrap_or("—")) }
                        dt { "On behalf of" } dd { (a.on_behalf_of.as_deref().unwrap_or("—")) }
                        dt { "Asked" } dd { (time(r.created_at)) }
                        @match (r.status, r.expires_at, r.release_by) {
                            (Status::Pending, Some(t), _) => { dt { "Decide by" } dd { (time(t)) } }
                            (Status::Approved, _, Some(t)) => { dt { "Release by" } dd { (time(t)) } }
                            _ => {}
                        }
                    }
                }
                div {
                    h3 { "Why" }
                    dl {
                        dt { "Justification" }
                        dd {
                            @match &card {
                                Some(c) => (c.justification.as_deref().unwrap_or("— (none given)")),
                                None => (hidden),
                            }
                        }
                        @if let Some(confidence) = card.as_ref().and_then(|c| c.confidence.as_deref()) {
                            dt { "Stated confidence" } dd { (confidence) }
                        }
                        dt { "Labels" }
                        dd {
                            @if a.labels.is_empty() { "—" }
                            @for (i, label) in a.labels.iter().enumerate() {
                                @if i > 0 { " " }
                                span class="badge" { (label) }
                            }
                        }
                    }
                }
                div {
                    h3 { "Risk" }
                    dl {
                        dt { "Decision" } dd { (r.reason) }
                        dt { "Policies" } dd { (policies) }
                        dt { "Needs" } dd { (needs(r)) }
                        @if r.requirements.iter().any(|q| q.routing.step_up) {
                            dt { "Step-up" } dd { "Approving needs a recent login at your identity provider." }
                        }
                        dt { "Facts" }
                        dd {
                            @match card.as_ref().map(|c| c.facts.as_slice()) {
                                Some([]) => "—",
                                Some(lines) => ul class="plain" { @for line in lines { li { (line) } } },
                                None => (hidden),
                            }
                        }
                        dt { "Policy set" } dd { code class="wrap" { (r.policy_hash) } }
                    }
                }
                div {
                    h3 { "History" }
                    (history(state, viewer, r).await)
                }
            }
        }
    }
}

/// What this requester asked before, among what the viewer may see.
async fn history(state: &Shared, viewer: &Viewer, r: &Request) -> Markup {
    let filter = RequestFilter { principal: Some(r.principal.clone()), limit: 50, ..RequestFilter::default() };
    let Ok(earlier) = state.app.visible_requests(&viewer.principal, &filter).await else {
        return html! { p class="muted" { "Not available." } };
    };
    let earlier: Vec<&Request> = earlier.iter().filter(|e| e.id != r.id).collect();
    if earlier.is_empty() {
        return html! { p { "No earlier requests by " (r.principal.to_string()) " that you can see." } };
    }
    let mut counts: Vec<(Status, usize)> =
        Status::ALL.iter().map(|s| (*s, earlier.iter().filter(|e| e.status == *s).count())).collect();
    counts.retain(|(_, n)| *n > 0);
    let summary = counts.iter().map(|(s, n)| format!("{n} {}", s.as_str())).collect::<Vec<_>>().join(", ");
    let same =
        earlier.iter().filter(|e| e.action.kind == r.action.kind && e.action.resource == r.action.resource).count();
    let plural = if earlier.len() == 1 { "request" } else { "requests" };
    html! {
        p { (earlier.len()) " earlier " (plural) " (" (summary) "); " (same) " for this kind and resource." }
        ul class="plain" {
            @for e in earlier.iter().take(5) {
                li {
                    a href={ "/console/requests/" (url_part(&e.id)) } { (e.action.kind) " on " (e.action.resource) }
                    " " (status_badge(e.status.as_str())) " " (time(e.created_at))
                }
            }
        }
    }
}

/// Whether the viewer may approve / deny, and if not, why.
struct Abilities {
    approve: Result<(), String>,
    deny: Result<(), String>,
    /// Approving will first send the viewer to log in again.
    step_up: bool,
}

async fn abilities(state: &Shared, viewer: &Viewer, r: &Request) -> Abilities {
    let me = &viewer.principal;
    let closed = |s: Status| format!("this request is {}", s.as_str());
    let (mut approve, mut deny) = match r.status {
        Status::Pending => (Ok(()), Ok(())),
        Status::Approved => {
            (Err("it is already approved (a denial still vetoes it until it is released)".to_owned()), Ok(()))
        }
        Status::Allowed | Status::Denied | Status::Released | Status::Expired | Status::Cancelled | Status::Revoked => {
            (Err(closed(r.status)), Err(closed(r.status)))
        }
    };
    let person = me.person();
    let excluded = match &person {
        Some(person) => {
            let approver = Approver { principal: me.reference(), person: person.clone(), groups: me.groups.clone() };
            state.app.exclusions_for(r).await.map(|e| e.excludes(&approver)).unwrap_or(true)
        }
        None => true,
    };
    let blocker = if me.kind != PrincipalKind::User || person.is_none() {
        Some("only people with an email address can decide".to_owned())
    } else if excluded {
        Some(self_reason(viewer, r))
    } else if !r.requirements.iter().any(|q| q.admits(&me.groups)) {
        let groups: Vec<String> = r.requirements.iter().flat_map(|q| q.groups.clone()).collect();
        Some(format!("only members of {} may decide this", groups.join(", ")))
    } else {
        None
    };
    if let Some(why) = blocker {
        if approve.is_ok() {
            approve = Err(why.clone());
        }
        if deny.is_ok() {
            deny = Err(why);
        }
    }
    if approve.is_ok() && person.as_ref().is_some_and(|p| r.approvals().any(|v| &v.person == p)) {
        approve = Err("you already approved this".to_owned());
    }
    let assurance = match (viewer.auth_context(), state.app.config().step_up_max_age) {
        (AuthContext::WebSession { auth_time }, Some(max_age)) => Assurance::IdpLogin { auth_time, max_age },
        (AuthContext::WebSession { .. }, None) | (AuthContext::Credential, _) => Assurance::Credential,
    };
    let step_up = approve.is_ok() && needs_step_up(r, &me.groups) && !assurance.is_fresh(state.app.now());
    if step_up && state.identity.oidc.is_none() {
        approve = Err("it needs a fresh login at an identity provider, and none is configured".to_owned());
    }
    Abilities { approve, deny, step_up: step_up && state.identity.oidc.is_some() }
}

fn self_reason(viewer: &Viewer, r: &Request) -> String {
    let name = &viewer.principal.name;
    if r.principal == viewer.principal.reference() {
        "you asked for this".to_owned()
    } else if r.owner.as_deref() == Some(name.as_str()) {
        "you own the agent that asked for this".to_owned()
    } else if r.action.on_behalf_of.as_deref() == Some(name.as_str()) {
        "it acts on your behalf".to_owned()
    } else {
        "you asked for this under another identity".to_owned()
    }
}

async fn decision(state: &Shared, viewer: &Viewer, r: &Request) -> Markup {
    let can = abilities(state, viewer, r).await;
    if can.approve.is_err() && can.deny.is_err() && !r.status.is_open() {
        return html! {
            section class="card" aria-labelledby="decide-h" {
                h2 id="decide-h" { "Decision" }
                p { (r.reason) }
            }
        };
    }
    let id = url_part(&r.id);
    let button = |kind: &str, label: &str, result: &Result<(), String>, class: &str| match result {
        Ok(()) => html! {
            button type="submit" formaction={ "/console/requests/" (id) "/" (kind) } class=(class) { (label) }
        },
        Err(why) => html! {
            button type="submit" class=(class) disabled aria-describedby={ "why-" (kind) } { (label) }
            p class="why" id={ "why-" (kind) } { (label) " is unavailable: " (why) }
        },
    };
    let approve_label = if can.step_up { "Log in again and approve" } else { "Approve" };
    let step_up_age = can
        .step_up
        .then(|| state.app.config().step_up_max_age.map(countersign_core::clock::format_duration).unwrap_or_default());
    html! {
        section class="card" aria-labelledby="decide-h" {
            h2 id="decide-h" { "Decision" }
            form method="post" action={ "/console/requests/" (id) "/approve" } class="stack" {
                (csrf_field(&viewer.csrf))
                label for="vote-comment" { "Comment (optional)" }
                textarea id="vote-comment" name="comment" rows="3" maxlength="4096" {}
                @if let Some(age) = step_up_age {
                    p class="help" id="step-up-help" {
                        "This approval needs a login at your identity provider from the last " (age) ". "
                        "You will be asked to log in again, then come back here to approve."
                    }
                }
                div class="buttons" {
                    (button("approve", approve_label, &can.approve, "primary"))
                    (button("deny", "Deny", &can.deny, "danger"))
                }
            }
        }
    }
}

fn votes(r: &Request) -> Markup {
    html! {
        section class="card" aria-labelledby="votes-h" {
            h2 id="votes-h" { "Approvals and denials" }
            @if r.votes.is_empty() {
                p class="muted" { "No votes yet." }
            } @else {
                ul class="plain" {
                    @for v in &r.votes {
                        @let verb = match v.kind {
                            VoteKind::Approve => "approved",
                            VoteKind::Deny => "denied",
                        };
                        li {
                            strong { (v.by.name) }
                            " (" (v.person.as_str()) ", " (v.groups.join(", ")) ") " (verb) " " (time(v.at))
                            @if let Some(comment) = v.comment.as_deref() { blockquote { (comment) } }
                        }
                    }
                }
            }
        }
    }
}

fn comments(viewer: &Viewer, r: &Request) -> Markup {
    html! {
        section class="card" aria-labelledby="comments-h" {
            h2 id="comments-h" { "Comments" }
            @if r.comments.is_empty() {
                p class="muted" { "No comments yet." }
            } @else {
                ul class="plain comments" {
                    @for c in &r.comments {
                        li { strong { (c.by.to_string()) } " " (time(c.at)) p { (c.text) } }
                    }
                }
            }
            form method="post" action={ "/console/requests/" (url_part(&r.id)) "/comment" } class="stack" {
                (csrf_field(&viewer.csrf))
                label for="new-comment" { "Add a comment" }
                textarea id="new-comment" name="comment" rows="3" maxlength="4096" required {}
                div class="buttons" { button type="submit" { "Comment" } }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct VoteForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    comment: String,
}

pub async fn approve(state: State<Shared>, viewer: Viewer, id: Path<String>, form: Form<VoteForm>) -> Response {
    vote(state, viewer, id, form, VoteKind::Approve).await
}

pub async fn deny(state: State<Shared>, viewer: Viewer, id: Path<String>, form: Form<VoteForm>) -> Response {
    vote(state, viewer, id, form, VoteKind::Deny).await
}

fn back(id: &str, query: &str) -> Response {
    Redirect::to(&format!("/console/requests/{}?{query}", url_part(id))).into_response()
}

async fn vote(
    State(state): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<VoteForm>,
    kind: VoteKind,
) -> Response {
    if !viewer.csrf_ok(&form._csrf) {
        return back(&id, "refused=csrf");
    }
    let comment = Some(form.comment.trim().to_owned()).filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.chars().count() > 4096) {
        return back(&id, "refused=invalid_comment");
    }
    match state.app.vote_with_auth(&viewer.principal, &viewer.auth_context(), &id, kind, comment).await {
        Ok(_) => back(&id, if kind == VoteKind::Approve { "done=approved" } else { "done=denied" }),
        Err(GatewayError::Refused(countersign_core::Refusal::StepUpRequired)) if state.identity.oidc.is_some() => {
            let return_to = format!("/console/requests/{}", url_part(&id));
            Redirect::to(&format!("/console/login/start?step_up=1&return_to={}", url_part(&return_to))).into_response()
        }
        Err(e) => refused_or_failed(&id, e),
    }
}

pub async fn comment(
    State(state): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<VoteForm>,
) -> Response {
    if !viewer.csrf_ok(&form._csrf) {
        return back(&id, "refused=csrf");
    }
    match state.app.comment(&viewer.principal, &id, form.comment).await {
        Ok(_) => back(&id, "done=commented"),
        Err(e) => refused_or_failed(&id, e),
    }
}

/// A refused move is explained on the request's page; anything else is
/// answered as the API would.
fn refused_or_failed(id: &str, e: GatewayError) -> Response {
    match failure(&e) {
        Failure::Refused => back(id, &format!("refused={}", e.code())),
        Failure::NotFound | Failure::Broken => respond(e),
    }
}
