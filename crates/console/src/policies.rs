//! The policies page: the set in force (its hash, when it was loaded, its
//! files and policies), a `policy test` against a sample request pasted in,
//! and — for admins — a reload.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use countersign_core::{Action, Principal};
use countersign_policy::Verdict;
use serde::Deserialize;

use crate::audit::forbidden;
use crate::html::{esc, json_block, time};
use crate::layout::{csrf_field, notice, page as frame, Section};
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

fn render(state: &Shared, viewer: &Viewer, sample: &str, result: &str) -> Response {
    let policy = state.app.policy();
    let engine = &policy.engine;
    let mut sources = String::new();
    for p in engine.cedar_policies().policies() {
        let id = p.annotation("id").map_or_else(|| p.id().to_string(), str::to_owned);
        sources.push_str(&format!(
            "<details><summary><code>{}</code> ({})</summary><pre class=\"cedar\">{}</pre></details>",
            esc(&id),
            esc(&format!("{:?}", p.effect()).to_lowercase()),
            esc(&p.to_string())
        ));
    }
    let reload = if viewer.principal.is_admin() {
        format!(
            "<form method=\"post\" action=\"/console/policies/reload\">{}<button type=\"submit\">Reload from disk</button></form>",
            csrf_field(&viewer.csrf)
        )
    } else {
        String::new()
    };
    let schema = engine.schema_file().map_or_else(|| "none".to_owned(), |s| format!("<code>{}</code>", esc(s)));
    let body = format!(
        "<h1>Policies</h1>\
         <section class=\"card\" aria-labelledby=\"set-h\"><h2 id=\"set-h\">In force</h2><dl>\
         <dt>Hash</dt><dd><code class=\"wrap\" id=\"policy-hash\">{hash}</code></dd>\
         <dt>Loaded</dt><dd>{loaded}</dd><dt>Policies</dt><dd>{count}</dd>\
         <dt>Files</dt><dd>{files}</dd><dt>Schema</dt><dd>{schema}</dd><dt>Directory</dt><dd><code>{dir}</code></dd></dl>{reload}</section>\
         <section class=\"card\" aria-labelledby=\"test-h\"><h2 id=\"test-h\">Test a sample request</h2>{result}\
         <form method=\"post\" action=\"/console/policies/test\" class=\"stack\">{csrf}\
         <label for=\"sample\">Sample (JSON with <code>principal</code> and <code>action</code>, as in a cases file)</label>\
         <textarea id=\"sample\" name=\"sample\" rows=\"12\" spellcheck=\"false\" class=\"code\">{sample}</textarea>\
         <div class=\"buttons\"><button type=\"submit\" class=\"primary\">Decide</button></div></form></section>\
         <section class=\"card\" aria-labelledby=\"src-h\"><h2 id=\"src-h\">Source</h2>{sources}</section>",
        hash = esc(engine.hash()),
        loaded = time(policy.loaded_at),
        count = engine.policy_count(),
        files = esc(&engine.files().join(", ")),
        dir = esc(&state.app.config.policies_dir.display().to_string()),
        csrf = csrf_field(&viewer.csrf),
        sample = esc(sample),
    );
    Html(frame("Policies", Section::Policies, Some(viewer), &body)).into_response()
}

pub async fn page(State(state): State<Shared>, viewer: Viewer) -> Response {
    if !viewer.principal.is_auditor() {
        return forbidden(&viewer);
    }
    render(&state, &viewer, SAMPLE, "")
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
            &notice("error", "The form expired. Reload the page and try again."),
        );
    }
    let result = match serde_json::from_str::<Sample>(&form.sample) {
        Err(e) => notice("error", &format!("The sample is not valid: {e}")),
        Ok(sample) => match sample.action.validate() {
            Err(e) => notice("error", &format!("The action is not valid: {e}")),
            Ok(()) => {
                let decision = state.app.policy().engine.decide(&sample.principal, &sample.action);
                let (outcome, requirements) = match &decision.verdict {
                    Verdict::Allow => ("allowed", String::new()),
                    Verdict::Deny => ("denied", String::new()),
                    Verdict::RequireApproval(reqs) => {
                        ("pending", json_block(&serde_json::to_value(reqs).unwrap_or_default()))
                    }
                };
                let errors = if decision.errors.is_empty() {
                    String::new()
                } else {
                    format!("<dt>Errors</dt><dd>{}</dd>", esc(&decision.errors.join("; ")))
                };
                format!(
                    "<div class=\"result\" role=\"status\"><dl><dt>Outcome</dt><dd><span class=\"badge status-{outcome}\" id=\"test-outcome\">{outcome}</span></dd>\
                     <dt>Reason</dt><dd>{reason}</dd><dt>Policies</dt><dd>{policies}</dd>{errors}\
                     {reqs}</dl></div>",
                    reason = esc(&decision.reason),
                    policies = esc(&decision.policies.join(", ")),
                    reqs = if requirements.is_empty() { String::new() } else { format!("<dt>Requirements</dt><dd>{requirements}</dd>") },
                )
            }
        },
    };
    render(&state, &viewer, &form.sample, &result)
}

pub async fn reload(State(state): State<Shared>, viewer: Viewer, Form(form): Form<TestForm>) -> Response {
    if !viewer.principal.is_admin() {
        return forbidden(&viewer);
    }
    if !viewer.csrf_ok(&form._csrf) {
        return render(&state, &viewer, SAMPLE, &notice("error", "The form expired. Reload the page and try again."));
    }
    let actor = viewer.principal.reference().to_string();
    let result = match state.app.reload_policies(&actor).await {
        Ok(hash) => notice("ok", &format!("Reloaded: {hash}")),
        Err(e) => notice("error", &e.to_string()),
    };
    render(&state, &viewer, SAMPLE, &result)
}
