//! The policies page: the set in force (its hash, when it was loaded, its
//! files and policies), a `policy test` against a sample request pasted in,
//! and — for admins — a reload and a simulation of a pasted set against the
//! log (see [`crate::simulate`]).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Form;
use countersign_core::{Action, Principal};
use countersign_policy::Verdict;
use maud::{html, Markup};
use serde::Deserialize;

use crate::audit::forbidden;
use crate::html::{json_block, time};
use crate::layout::{csrf_field, notice, page as frame, Notice, Section};
use crate::session::Viewer;
use crate::Shared;

const SAMPLE: &str = r#"{
  "principal": {"kind": "agent", "name": "deploy-bot", "owner": "bob", "groups": []},
  "action": {
    "kind": "shell.exec",
    "resource": "prod-web",
    "payload": {"argv": ["systemctl", "restart", "web"]},
    "justification": "restart after deploy",
    "labels": []
  }
}"#;

/// A pasted sample: who asks, and what.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sample {
    principal: Principal,
    action: Action,
}

/// What the simulation form shows: the pasted set, the window, the result.
struct Simulation<'a> {
    policies: &'a str,
    days: &'a str,
    result: Markup,
}

fn render(state: &Shared, viewer: &Viewer, sample: &str, result: Markup) -> Response {
    render_with(state, viewer, sample, result, None)
}

fn render_with(
    state: &Shared,
    viewer: &Viewer,
    sample: &str,
    result: Markup,
    simulation: Option<Simulation<'_>>,
) -> Response {
    let policy = state.app.policy();
    let engine = &policy.engine;
    // The form starts from the set in force, to edit.
    let in_force = || engine.cedar_policies().policies().map(ToString::to_string).collect::<Vec<_>>().join("\n\n");
    let default_days = crate::simulate::DEFAULT_DAYS.to_string();
    let (pasted, days, simulated) = match simulation {
        Some(s) => (s.policies.to_owned(), s.days.to_owned(), s.result),
        None => (String::new(), default_days, html! {}),
    };
    let pasted = if pasted.is_empty() && viewer.principal.is_admin() { in_force() } else { pasted };
    let body = html! {
        h1 { "Policies" }
        section class="card" aria-labelledby="set-h" {
            h2 id="set-h" { "In force" }
            dl {
                dt { "Hash" } dd { code class="wrap" id="policy-hash" { (engine.hash()) } }
                dt { "Loaded" } dd { (time(policy.loaded_at)) }
                dt { "Policies" } dd { (engine.policy_count()) }
                dt { "Files" } dd { (engine.files().join(", ")) }
                dt { "Schema" }
                dd {
                    @match engine.schema_file() {
                        Some(schema) => code { (schema) },
                        None => "none",
                    }
                }
                dt { "Directory" } dd { code { (state.app.config().policies_dir.display().to_string()) } }
            }
            @if viewer.principal.is_admin() {
                form method="post" action="/console/policies/reload" {
                    (csrf_field(&viewer.csrf))
                    button type="submit" { "Reload from disk" }
                }
            }
        }
        section class="card" aria-labelledby="test-h" {
            h2 id="test-h" { "Test a sample request" }
            (result)
            form method="post" action="/console/policies/test" class="stack" {
                (csrf_field(&viewer.csrf))
                label for="sample" {
                    "Sample (JSON with " code { "principal" } " and " code { "action" } ", as in a cases file)"
                }
                textarea id="sample" name="sample" rows="12" spellcheck="false" class="code" { (sample) }
                div class="buttons" { button type="submit" class="primary" { "Decide" } }
            }
        }
        @if viewer.principal.is_admin() {
            section class="card" aria-labelledby="sim-h" {
                h2 id="sim-h" { "Simulate a policy set against the log" }
                p class="muted" {
                    "The actions recorded in the window are decided again by the pasted set (one file's text, "
                    "every policy of the set; at most " (crate::simulate::MAX_PASTE_BYTES / 1024) " KiB), and "
                    "what would change is shown: outcomes, approvers and quorum, by policy, with examples. "
                    code { "countersign policy simulate DIR" } " does the same from a directory, for CI."
                }
                (simulated)
                form method="post" action="/console/policies/simulate" class="stack" {
                    (csrf_field(&viewer.csrf))
                    label for="candidate" { "Candidate policies (Cedar)" }
                    textarea id="candidate" name="policies" rows="16" spellcheck="false" class="code" { (pasted) }
                    label for="days" { "Actions submitted in the last (days, at most " (crate::simulate::MAX_DAYS) ")" }
                    input id="days" name="days" type="number" min="1" max=(crate::simulate::MAX_DAYS) value=(days);
                    div class="buttons" { button type="submit" class="primary" { "Simulate" } }
                }
            }
        }
        section class="card" aria-labelledby="src-h" {
            h2 id="src-h" { "Source" }
            @for p in engine.cedar_policies().policies() {
                details {
                    summary {
                        code { (p.annotation("id").map_or_else(|| p.id().to_string(), str::to_owned)) }
                        " (" (format!("{:?}", p.effect()).to_lowercase()) ")"
                    }
                    pre class="cedar" { (p.to_string()) }
                }
            }
        }
    };
    frame("Policies", Section::Policies, Some(viewer), body).into_response()
}

pub async fn page(State(state): State<Shared>, viewer: Viewer) -> Response {
    if !viewer.principal.is_auditor() {
        return forbidden(&viewer);
    }
    render(&state, &viewer, SAMPLE, html! {})
}

#[derive(Debug, Deserialize)]
pub struct TestForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    sample: String,
}

pub async fn test(State(state): State<Shared>, viewer: Viewer, Form(form): Form<TestForm>) -> Response {
    if !viewer.principal.is_auditor() {
        return forbidden(&viewer);
    }
    if !viewer.csrf_ok(&form._csrf) {
        return render(
            &state,
            &viewer,
            &form.sample,
            notice(Notice::Error, "The form expired. Reload the page and try again."),
        );
    }
    let result = match serde_json::from_str::<Sample>(&form.sample) {
        Err(e) => notice(Notice::Error, &format!("The sample is not valid: {e}")),
        Ok(sample) => match sample.action.validate() {
            Err(e) => notice(Notice::Error, &format!("The action is not valid: {e}")),
            Ok(()) => {
                let decision = state.app.policy().engine.decide(&sample.principal, &sample.action);
                let (outcome, requirements) = match &decision.verdict {
                    Verdict::Allow => ("allowed", None),
                    Verdict::Deny => ("denied", None),
                    Verdict::RequireApproval(reqs) => {
                        ("pending", Some(json_block(&serde_json::to_value(reqs).unwrap_or_default())))
                    }
                };
                html! {
                    div class="result" role="status" {
                        dl {
                            dt { "Outcome" }
                            dd { span class={ "badge status-" (outcome) } id="test-outcome" { (outcome) } }
                            dt { "Reason" } dd { (decision.reason) }
                            dt { "Policies" } dd { (decision.policies.join(", ")) }
                            @if !decision.errors.is_empty() {
                                dt { "Errors" } dd { (decision.errors.join("; ")) }
                            }
                            @if let Some(requirements) = requirements {
                                dt { "Requirements" } dd { (requirements) }
                            }
                        }
                    }
                }
            }
        },
    };
    render(&state, &viewer, &form.sample, result)
}

pub async fn reload(State(state): State<Shared>, viewer: Viewer, Form(form): Form<TestForm>) -> Response {
    if !viewer.principal.is_admin() {
        return forbidden(&viewer);
    }
    if !viewer.csrf_ok(&form._csrf) {
        return render(
            &state,
            &viewer,
            SAMPLE,
            notice(Notice::Error, "The form expired. Reload the page and try again."),
        );
    }
    let actor = viewer.principal.reference().to_string();
    let result = match state.app.reload_policies(&actor).await {
        Ok(hash) => notice(Notice::Ok, &format!("Reloaded: {hash}")),
        Err(e) => notice(Notice::Error, &e.to_string()),
    };
    render(&state, &viewer, SAMPLE, result)
}

pub async fn simulate(
    State(state): State<Shared>,
    viewer: Viewer,
    Form(form): Form<crate::simulate::SimulateForm>,
) -> Response {
    if !viewer.principal.is_admin() {
        return forbidden(&viewer);
    }
    let result = if viewer.csrf_ok(&form._csrf) {
        crate::simulate::run(&state, &form).await
    } else {
        notice(Notice::Error, "The form expired. Reload the page and try again.")
    };
    // A paste over the limit is not sent back into the page.
    let policies = if form.policies.len() > crate::simulate::MAX_PASTE_BYTES { "" } else { form.policies.as_str() };
    let simulation = Simulation { policies, days: &form.days, result };
    render_with(&state, &viewer, SAMPLE, html! {}, Some(simulation))
}
