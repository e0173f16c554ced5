//! The Staged releases page: what awaits approval in each of the signed-in user's
//! packages, with approve and reject (asking for the one-time password when the account
//! has 2FA). Both go through exactly the checks `npm stage approve|reject` does.

use std::time::{Duration, SystemTime};

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use tokengate::{Action, Authenticated, Resource};

use super::layout::{api_error_page, field_error, layout, page_response, redirect, when};
use super::session::Secret;
use super::tokens::has_2fa;
use crate::controllers::stage::{self, decide};
use crate::db::{StageQuery, StoredStage};
use crate::error::ApiError;
use crate::query::KnownQuery;
use crate::state::AppState;

/// Most stages the page shows (those past it are in `npm stage list`).
const MOST: u64 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagesQuery {
    /// The stage just approved or rejected, and which.
    approved: Option<String>,
    rejected: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct DecisionForm {
    #[serde(default)]
    otp: Secret,
}

/// When, from milliseconds since the Unix epoch.
fn at(millis: i64) -> Option<SystemTime> {
    Some(SystemTime::UNIX_EPOCH + Duration::from_millis(millis.max(0).unsigned_abs()))
}

async fn stages_markup(
    state: &AppState,
    who: &Authenticated,
    query: &StagesQuery,
    failed: Option<(&str, String)>,
) -> Result<Markup, ApiError> {
    let (stages, total) = state
        .db()
        .stages(&StageQuery {
            maintainer: who.owner(),
            package: None,
            now: stage::millis(SystemTime::now()),
            offset: 0,
            limit: MOST,
        })
        .await?;
    // A token limited to some packages sees the stages of those only, as `npm stage
    // list` shows them (and counts none of the others).
    let listed = stages.len();
    let stages: Vec<StoredStage> = stages
        .into_iter()
        .filter(|stage| who.may(Action::Read, Some(&Resource::new(stage.package.clone()))))
        .collect();
    let total = total.saturating_sub((listed - stages.len()) as u64);
    let ask_code = has_2fa(state, who.owner()).await?;
    let notice = |id: &Option<String>, what: &str| {
        id.as_ref()
            .map(|id| format!("The staged release {id} was {what}."))
    };
    let notice = notice(&query.approved, "approved and published")
        .or_else(|| notice(&query.rejected, "rejected"));
    Ok(html! {
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        p { "Releases staged with " code { "npm stage publish" } " wait here until one of the package's maintainers approves them (they are then published exactly as staged) or rejects them. Nobody can install a staged version before." }
        p { (total) " staged release" @if total != 1 { "s" } "." }
        @for stage in &stages {
            (stage_card(stage, ask_code, failed.as_ref().filter(|(id, _)| *id == stage.id).map(|(_, why)| why.clone())))
        }
    })
}

fn stage_card(stage: &StoredStage, ask_code: bool, error: Option<String>) -> Markup {
    let otp_id = format!("otp-{}", stage.id);
    let error_id = format!("{otp_id}-error");
    html! {
        section.stage aria-labelledby=(format!("stage-{}", stage.id)) {
            h2 #(format!("stage-{}", stage.id)) { (stage.package) "@" (stage.version) }
            dl {
                dt { "Tag" } dd { (stage.tag) }
                dt { "Staged by" } dd { (stage.actor) " (" (stage.actor_type) ")" }
                dt { "Staged" } dd { (when(at(stage.created_at), "")) }
                dt { "Expires" } dd { (when(at(stage.expires_at), "")) }
                dt { "ID" } dd { code { (stage.id) } }
            }
            p { a href=(format!("/-/web/stages/{}/tarball", stage.id)) { "Download the tarball" } " to inspect it first." }
            @for (action, label, class) in [("approve", "Approve and publish", "button"), ("reject", "Reject", "danger")] {
                form method="post" action=(format!("/-/web/stages/{}/{action}", stage.id)) {
                    @if ask_code {
                        label for=(format!("{otp_id}-{action}")) { "One-time password" }
                        input #(format!("{otp_id}-{action}")) type="text" name="otp" inputmode="numeric" autocomplete="one-time-code" aria-describedby=(error_id);
                    }
                    button class=(class) type="submit" { (label) }
                }
            }
            (field_error(&otp_id, &error))
        }
    }
}

/// `GET /-/web/stages`.
pub(super) async fn stages_page(
    State(state): State<AppState>,
    who: Authenticated,
    KnownQuery(query): KnownQuery<StagesQuery>,
) -> Response {
    let owner = who.owner().to_owned();
    match stages_markup(&state, &who, &query, None).await {
        Ok(markup) => page_response(
            StatusCode::OK,
            layout("Staged releases", Some(&owner), markup),
        ),
        Err(error) => api_error_page(Some(&owner), error),
    }
}

/// `POST /-/web/stages/<id>/approve`.
pub(super) async fn approve(
    state: State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    decide_on(state, who, id, form, Decision::Approve).await
}

/// `POST /-/web/stages/<id>/reject`.
pub(super) async fn reject(
    state: State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    decide_on(state, who, id, form, Decision::Reject).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Reject,
}

async fn decide_on(
    State(state): State<AppState>,
    who: Authenticated,
    id: String,
    form: DecisionForm,
    decision: Decision,
) -> Response {
    let owner = who.owner().to_owned();
    let code = Some(form.otp.trim()).filter(|code| !code.is_empty());
    let decided = match decision {
        Decision::Approve => decide::approve_stage(&state, &who, &id, code, None).await,
        Decision::Reject => decide::reject_stage(&state, &who, &id, code, None).await,
    };
    match decided {
        Ok(stage) => {
            let which = match decision {
                Decision::Approve => "approved",
                Decision::Reject => "rejected",
            };
            redirect(&format!("/-/web/stages?{which}={}", stage.id))
        }
        // A missing or wrong code: the page again, saying so beside the stage.
        Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
            let query = StagesQuery {
                approved: None,
                rejected: None,
            };
            let failed = Some((id.as_str(), error.message().to_owned()));
            match stages_markup(&state, &who, &query, failed).await {
                Ok(markup) => page_response(
                    StatusCode::UNAUTHORIZED,
                    layout("Staged releases", Some(&owner), markup),
                ),
                Err(error) => api_error_page(Some(&owner), error),
            }
        }
        Err(error) => api_error_page(Some(&owner), error),
    }
}
