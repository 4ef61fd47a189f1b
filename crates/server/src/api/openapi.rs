//! The OpenAPI document, generated from the handlers and view types so it
//! cannot drift from the code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{actions, admin, audit_proofs, ops, views};

#[derive(OpenApi)]
#[openapi(
    info(title = "countersign", description = "Action-level approvals for agents, pipelines and scripts."),
    paths(
        actions::submit, actions::get, actions::list, actions::approve, actions::deny, actions::comment,
        actions::cancel, actions::release, actions::outcome,
        admin::audit, admin::policies, admin::reload, admin::whoami,
        audit_proofs::checkpoint, audit_proofs::key, audit_proofs::inclusion, audit_proofs::consistency,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(
        views::ActionBody, views::SubmitResponse, views::ApprovalView, views::RequirementView, views::ActionView,
        views::ActionList, views::EntryView, views::CommentBody, views::OutcomeBody, views::ErrorBody, views::ErrorDetail,
        admin::AuditPage, admin::PolicyInfo, audit_proofs::InclusionView, audit_proofs::ConsistencyView,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
