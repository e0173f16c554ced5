//! Adding and removing a package's trusted publishers from its settings page: the same
//! checks as `npm trust` ([`publishers`]), with messages next to the fields they are about.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tokengate::Authenticated;
use tokengate::oidc::{
    CircleCiPolicy, GitHubPolicy, GitLabPolicy, InvalidPolicy, Provider, TrustPolicy,
};

use super::settings::{Settings, View, settings_response};
use super::settings_path;
use crate::controllers::packages::access::Outsiders;
use crate::controllers::trust::MAX_PUBLISHERS;
use crate::controllers::trust::publishers::{self, Added, Refused};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::layout::{api_error_page, redirect};
use crate::web::session::Secret;

/// Errors by field name (`general` for the form as a whole).
pub(super) type Errors = std::collections::BTreeMap<&'static str, String>;

/// The add form. A field it does not have is refused, not ignored.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AddForm {
    /// `github`, `gitlab` or `circleci`: only that provider's fields are read.
    #[serde(default)]
    pub(super) provider: String,
    #[serde(default)]
    pub(super) github_repository: String,
    #[serde(default)]
    pub(super) github_workflow: String,
    #[serde(default)]
    pub(super) github_environment: String,
    #[serde(default)]
    pub(super) gitlab_project: String,
    #[serde(default)]
    pub(super) gitlab_ci_file: String,
    #[serde(default)]
    pub(super) gitlab_environment: String,
    #[serde(default)]
    pub(super) circleci_org: String,
    #[serde(default)]
    pub(super) circleci_project: String,
    #[serde(default)]
    pub(super) circleci_pipeline: String,
    #[serde(default)]
    pub(super) circleci_vcs_origin: String,
    #[serde(default)]
    otp: Secret,
}

/// The remove button's form.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RemoveForm {
    #[serde(default)]
    otp: Secret,
}

/// A form the browser sent that this page did not make (a field it does not have, or a
/// field twice), said as such.
pub(super) fn unreadable(rejection: &FormRejection) -> String {
    let text = rejection.body_text();
    let unknown = text
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split('`').next());
    if let Some(field) = unknown {
        let field: String = field.chars().take(64).collect();
        return format!(
            "the form sent a field this page does not have ({field:?}): reload the page and \
             fill it in again"
        );
    }
    let detail = text
        .strip_prefix("Failed to deserialize form body: ")
        .unwrap_or(&text);
    format!("the form could not be read ({detail}): reload the page and fill it in again")
}

/// A one-time password typed in a form, if any.
pub(super) fn code(otp: &Secret) -> Option<&str> {
    Some(otp.trim()).filter(|code| !code.is_empty())
}

/// `value`, trimmed, or an error on `field` saying it is needed.
fn required<'a>(
    value: &'a str,
    field: &'static str,
    what: &str,
    errors: &mut Errors,
) -> Option<&'a str> {
    let value = value.trim();
    if value.is_empty() {
        errors.insert(field, format!("{what} is required"));
        return None;
    }
    Some(value)
}

/// `value`, trimmed, when it is not empty.
fn optional(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|value| !value.is_empty())
}

/// The field of `provider`'s part of the form that `error` is about.
fn field_of(provider: Provider, error: &InvalidPolicy) -> &'static str {
    match (provider, error) {
        (_, InvalidPolicy::Repository) => "github_repository",
        (_, InvalidPolicy::WorkflowFile) => "github_workflow",
        (Provider::GitHub, InvalidPolicy::Environment) => "github_environment",
        (_, InvalidPolicy::Environment) => "gitlab_environment",
        (_, InvalidPolicy::ProjectPath) => "gitlab_project",
        (_, InvalidPolicy::ConfigFile) => "gitlab_ci_file",
        (_, InvalidPolicy::VcsOrigin) => "circleci_vcs_origin",
        (_, InvalidPolicy::Uuid("the organisation id")) => "circleci_org",
        (_, InvalidPolicy::Uuid("the project id")) => "circleci_project",
        (_, InvalidPolicy::Uuid("the pipeline definition id")) => "circleci_pipeline",
        _ => "general",
    }
}

/// The policy the form names (publishing only), or `None` with `errors` saying why.
fn policy_of_form(form: &AddForm, errors: &mut Errors) -> Option<TrustPolicy> {
    let provider = match form.provider.as_str() {
        "github" => Provider::GitHub,
        "gitlab" => Provider::GitLab,
        "circleci" => Provider::CircleCi,
        "" => {
            errors.insert("provider", "choose a CI provider".into());
            return None;
        }
        other => {
            errors.insert(
                "provider",
                format!(
                    "{:?} is not a CI provider: choose GitHub Actions, GitLab CI/CD or CircleCI",
                    other.chars().take(32).collect::<String>()
                ),
            );
            return None;
        }
    };
    let invalid = |errors: &mut Errors, error: InvalidPolicy| {
        errors.insert(field_of(provider, &error), error.to_string());
    };
    let built = match provider {
        Provider::GitHub => {
            let repository = required(
                &form.github_repository,
                "github_repository",
                "the repository (owner/repo)",
                errors,
            );
            let workflow = required(
                &form.github_workflow,
                "github_workflow",
                "the workflow file",
                errors,
            );
            let (repository, workflow) = repository.zip(workflow)?;
            GitHubPolicy::new(repository, workflow)
                .and_then(|policy| match optional(&form.github_environment) {
                    Some(environment) => policy.environment(environment),
                    None => Ok(policy),
                })
                .map(TrustPolicy::GitHub)
        }
        Provider::GitLab => {
            let project = required(
                &form.gitlab_project,
                "gitlab_project",
                "the project path",
                errors,
            );
            let file = required(
                &form.gitlab_ci_file,
                "gitlab_ci_file",
                "the CI file",
                errors,
            );
            let (project, file) = project.zip(file)?;
            GitLabPolicy::new(project, file)
                .and_then(|policy| match optional(&form.gitlab_environment) {
                    Some(environment) => policy.environment(environment),
                    None => Ok(policy),
                })
                .map(TrustPolicy::GitLab)
        }
        _ => {
            let org = required(
                &form.circleci_org,
                "circleci_org",
                "the organisation id",
                errors,
            );
            let project = required(
                &form.circleci_project,
                "circleci_project",
                "the project id",
                errors,
            );
            let pipeline = required(
                &form.circleci_pipeline,
                "circleci_pipeline",
                "the pipeline definition id",
                errors,
            );
            let ((org, project), pipeline) = org.zip(project).zip(pipeline)?;
            CircleCiPolicy::new(org, project, pipeline)
                .and_then(|policy| match optional(&form.circleci_vcs_origin) {
                    Some(origin) => policy.vcs_origin(origin),
                    None => Ok(policy),
                })
                .map(TrustPolicy::CircleCi)
        }
    };
    built.map_err(|error| invalid(errors, error)).ok()
}

/// A refusal of [`publishers::admit`], as the form says it.
fn for_web(refused: Refused, errors: &mut Errors) {
    match refused {
        Refused::Off(off) => errors.insert("general", off.reason().to_owned()),
        Refused::Untrusted(provider) => errors.insert(
            "provider",
            format!(
                "this registry does not accept {provider}'s ID tokens: choose another \
                 provider, or ask the registry's operator to trust it"
            ),
        ),
    };
}

/// `POST /-/web/packages/<name>/trust`: adds the publisher the form names.
pub(crate) async fn add(
    State(state): State<AppState>,
    who: Authenticated,
    Path(name): Path<String>,
    form: Result<Form<AddForm>, FormRejection>,
) -> Response {
    let owner = who.owner();
    // Anyone but a maintainer: the same 404 as for no package, whatever the form holds.
    let settings = match Settings::load(&state, &who, &name).await {
        Ok(settings) => settings,
        Err(error) => return api_error_page(Some(owner), error),
    };
    let mut view = View::default();
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            view.errors.insert("general", unreadable(&rejection));
            return settings_response(StatusCode::BAD_REQUEST, owner, &settings, &view);
        }
    };
    // Everything about the form before the code is spent.
    let admitted = policy_of_form(&form, &mut view.errors).and_then(|policy| {
        publishers::enabled(&state)
            .and_then(|id_tokens| publishers::admit(id_tokens, &policy))
            .map_err(|refused| for_web(refused, &mut view.errors))
            .ok()
    });
    let code = code(&form.otp).map(str::to_owned);
    view.form = form;
    let Some(admitted) = admitted else {
        return settings_response(StatusCode::BAD_REQUEST, owner, &settings, &view);
    };
    let added = async {
        let _writing = state.write_lock().await;
        publishers::managed(
            &state,
            &who,
            &settings.name,
            code.as_deref(),
            Outsiders::NotFound,
        )
        .await?;
        publishers::add(&state, &who, &settings.name, vec![admitted]).await
    }
    .await;
    match added {
        Ok(Added::Added(added)) => {
            let id = added.first().map(|p| p.id.clone()).unwrap_or_default();
            tracing::info!(user = %owner, package = %settings.name, id = %id, "trusted publisher added on the web");
            redirect(&format!("{}?added={id}", settings_path(&settings.name)))
        }
        Ok(Added::TooMany { existing }) => {
            view.errors.insert(
                "general",
                format!(
                    "this package has {existing} trusted publishers, the most a package may \
                     have is {MAX_PUBLISHERS}: remove one first"
                ),
            );
            settings_response(StatusCode::BAD_REQUEST, owner, &settings, &view)
        }
        Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
            view.errors.insert("otp", error.message().to_owned());
            settings_response(StatusCode::UNAUTHORIZED, owner, &settings, &view)
        }
        Err(error) => api_error_page(Some(owner), error),
    }
}

/// `POST /-/web/packages/<name>/trust/<id>/remove`: the remove button.
pub(crate) async fn remove(
    State(state): State<AppState>,
    who: Authenticated,
    Path((name, id)): Path<(String, String)>,
    form: Result<Form<RemoveForm>, FormRejection>,
) -> Response {
    let owner = who.owner();
    let settings = match Settings::load(&state, &who, &name).await {
        Ok(settings) => settings,
        Err(error) => return api_error_page(Some(owner), error),
    };
    let refused = |status: StatusCode, message: String| {
        let view = View {
            removing: Some((id.clone(), message)),
            ..View::default()
        };
        settings_response(status, owner, &settings, &view)
    };
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return refused(StatusCode::BAD_REQUEST, unreadable(&rejection)),
    };
    let removed = async {
        let _writing = state.write_lock().await;
        publishers::managed(
            &state,
            &who,
            &settings.name,
            code(&form.otp),
            Outsiders::NotFound,
        )
        .await?;
        Ok::<_, ApiError>(
            state
                .db()
                .remove_trusted_publisher(&settings.name, &id)
                .await?,
        )
    }
    .await;
    match removed {
        Ok(true) => {
            tracing::info!(user = %owner, package = %settings.name, id = %id, "trusted publisher removed on the web");
            redirect(&format!("{}?removed={id}", settings_path(&settings.name)))
        }
        Ok(false) => {
            let view = View {
                errors: Errors::from([(
                    "general",
                    format!(
                        "this package has no trusted publisher {:?}: it may have been removed already",
                        id.chars().take(64).collect::<String>()
                    ),
                )]),
                ..View::default()
            };
            settings_response(StatusCode::NOT_FOUND, owner, &settings, &view)
        }
        Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
            refused(StatusCode::UNAUTHORIZED, error.message().to_owned())
        }
        Err(error) => api_error_page(Some(owner), error),
    }
}
