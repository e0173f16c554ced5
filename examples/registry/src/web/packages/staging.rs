//! A package's staging rule from its settings page: whether every release must go through
//! `npm stage publish` and a maintainer's approval. The same checks as `PUT
//! /-/package/<name>/staging` (maintainers only, a one-time password with 2FA).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tokengate::Authenticated;

use super::settings::{Settings, View, settings_response};
use super::settings_path;
use super::trust::{code, unreadable};
use crate::controllers::packages::access::Outsiders;
use crate::state::AppState;
use crate::web::layout::{api_error_page, redirect};
use crate::web::session::Secret;

/// The staging form: a checkbox, sent only when ticked, and the code. A field it does not
/// have is refused, not ignored.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StagingForm {
    /// `on` when every release must be staged.
    #[serde(default)]
    required: Option<String>,
    #[serde(default)]
    otp: Secret,
}

/// `POST /-/web/packages/<name>/staging`.
pub(crate) async fn set(
    State(state): State<AppState>,
    who: Authenticated,
    Path(name): Path<String>,
    form: Result<Form<StagingForm>, FormRejection>,
) -> Response {
    let owner = who.owner();
    let settings = match Settings::load(&state, &who, &name).await {
        Ok(settings) => settings,
        Err(error) => return api_error_page(Some(owner), error),
    };
    let refused = |status: StatusCode, field: &'static str, message: String| {
        let mut view = View::default();
        view.staging_errors.insert(field, message);
        settings_response(status, owner, &settings, &view)
    };
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            return refused(StatusCode::BAD_REQUEST, "general", unreadable(&rejection));
        }
    };
    let required = match form.required.as_deref() {
        None => false,
        Some("on") => true,
        Some(other) => {
            let other: String = other.chars().take(32).collect();
            return refused(
                StatusCode::BAD_REQUEST,
                "general",
                format!(
                    "the checkbox sent {other:?}, which this page does not send: reload the page and try again"
                ),
            );
        }
    };
    let set = crate::controllers::stage::rule::set_rule(
        &state,
        &who,
        &settings.name,
        required,
        code(&form.otp),
        None,
        Outsiders::NotFound,
    )
    .await;
    match set {
        Ok(()) => {
            let word = if required { "required" } else { "optional" };
            redirect(&format!("{}?staging={word}", settings_path(&settings.name)))
        }
        Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
            refused(StatusCode::UNAUTHORIZED, "otp", error.message().to_owned())
        }
        Err(error) => api_error_page(Some(owner), error),
    }
}
