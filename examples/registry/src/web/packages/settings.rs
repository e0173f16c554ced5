//! A package's settings page, for its maintainers only (anyone else gets the same 404 as
//! for a package that does not exist): its trusted publishers, each with what it names and
//! a button that removes it, and the form that adds one ([`super::trust`] takes both).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use tokengate::Authenticated;
use tokengate::oidc::{Provider, TrustPolicy, TrustedAction};

use super::settings_path;
use super::trust::{AddForm, Errors};
use crate::controllers::packages::PackageName;
use crate::controllers::packages::access::{self, Outsiders};
use crate::controllers::trust::{MAX_PUBLISHERS, policy_of, publishers};
use crate::db::StoredPublisher;
use crate::error::ApiError;
use crate::query::KnownQuery;
use crate::state::AppState;
use crate::web::layout::{
    api_error_page, field_error, layout, otp_field, page_response, text_field, when,
};
use crate::web::tokens::has_2fa;

/// The providers the add form offers, in its order.
const PROVIDERS: [Provider; 3] = [Provider::GitHub, Provider::GitLab, Provider::CircleCi];

/// What the page shows of the package, read for a maintainer.
pub(super) struct Settings {
    pub(super) name: PackageName,
    publishers: Vec<StoredPublisher>,
    /// The account has 2FA: every change asks for a code.
    pub(super) ask_code: bool,
    /// The providers this registry trusts (`--oidc-issuer`).
    trusted: Vec<Provider>,
    /// Why trusted publishing is off, when it is.
    off: Option<&'static str>,
    /// Every release must be staged ([`super::staging`]).
    staging_required: bool,
}

impl Settings {
    /// `name`'s settings, if `who` maintains it through a token that may change it; the
    /// same 404 as for a missing package otherwise.
    pub(super) async fn load(
        state: &AppState,
        who: &Authenticated,
        name: &str,
    ) -> Result<Self, ApiError> {
        let name = PackageName::parse(name)?;
        access::changeable_as(state, who, &name, Outsiders::NotFound).await?;
        let publishers = state.db().trusted_publishers(&name).await?;
        let staging_required = state.db().requires_staging(&name).await?;
        Ok(Self {
            name,
            publishers,
            ask_code: has_2fa(state, who.owner()).await?,
            trusted: PROVIDERS
                .into_iter()
                .filter(|provider| publishers::trusts(state, *provider))
                .collect(),
            off: state.id_tokens().err().map(|off| off.reason()),
            staging_required,
        })
    }

    pub(super) fn trusts(&self, provider: Provider) -> bool {
        self.trusted.contains(&provider)
    }
}

/// What the page says besides the package's own settings: what was just done, what the
/// add form held, and what is wrong.
#[derive(Default)]
pub(super) struct View {
    pub(super) notice: Option<String>,
    pub(super) form: AddForm,
    /// The add form's errors by field (`general` for the form as a whole).
    pub(super) errors: Errors,
    /// A removal refused: the publisher's id and why.
    pub(super) removing: Option<(String, String)>,
    /// The staging form's errors by field (`general`, `otp`).
    pub(super) staging_errors: Errors,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsQuery {
    added: Option<String>,
    removed: Option<String>,
    /// `required` or `optional`, after the staging form was saved.
    staging: Option<String>,
}

/// `GET /-/web/packages/<name>`.
pub(crate) async fn settings_page(
    State(state): State<AppState>,
    who: Authenticated,
    Path(name): Path<String>,
    KnownQuery(query): KnownQuery<SettingsQuery>,
) -> Response {
    let owner = who.owner();
    let settings = match Settings::load(&state, &who, &name).await {
        Ok(settings) => settings,
        Err(error) => return api_error_page(Some(owner), error),
    };
    let short = |id: &str| id.chars().take(64).collect::<String>();
    let notice = match (&query.added, &query.removed, query.staging.as_deref()) {
        (Some(id), _, _) => Some(format!("Trusted publisher {} added.", short(id))),
        (None, Some(id), _) => Some(format!("Trusted publisher {} removed.", short(id))),
        (None, None, Some("required")) => {
            Some("Every release of this package must now be staged.".to_owned())
        }
        (None, None, Some("optional")) => {
            Some("Releases of this package may now be published directly.".to_owned())
        }
        _ => None,
    };
    let view = View {
        notice,
        ..View::default()
    };
    settings_response(StatusCode::OK, owner, &settings, &view)
}

/// The page, answered with `status`.
pub(super) fn settings_response(
    status: StatusCode,
    owner: &str,
    settings: &Settings,
    view: &View,
) -> Response {
    let name = settings.name.to_string();
    let count = settings.publishers.len();
    let body = html! {
        @if let Some(notice) = &view.notice { p.notice role="status" { (notice) } }
        @if let Some(general) = view.errors.get("general") { p.error #general-error role="alert" { (general) } }
        p { a href="/-/web/packages" { "← Your packages" } }
        (staging_form(settings, view))
        h2 { "Trusted publishers" }
        p { "A CI workflow named here can publish " code { (name) } " without a token: the job proves who it is with its provider's ID token, and gets a token for this one package, for minutes. " code { "npm trust" } " changes the same list." }
        @if settings.publishers.is_empty() {
            p { "No trusted publishers yet." }
        }
        @for publisher in &settings.publishers {
            (publisher_card(settings, publisher, view))
        }
        h2 { "Add a trusted publisher" }
        @if settings.trusted.is_empty() {
            p { "Trusted publishers cannot be added: " (settings.off.unwrap_or("this registry trusts no CI provider's ID tokens")) "." }
        } @else if count >= MAX_PUBLISHERS {
            p { "This package has " (count) " trusted publishers, the most a package may have. Remove one to add another." }
        } @else {
            (add_form(settings, view))
        }
    };
    page_response(status, layout(&name, Some(owner), body))
}

/// What a permission lets the workflow do, as the page says it.
fn action_name(action: TrustedAction) -> &'static str {
    match action {
        TrustedAction::Publish => "publish",
        TrustedAction::Stage => "stage a release",
        _ => action.npm_name(),
    }
}

/// The rows that describe `policy`: what it names, and the ids pinned at its first
/// exchange.
fn policy_rows(policy: &TrustPolicy) -> Markup {
    let optional = |value: Option<&str>, none: &'static str| -> Markup {
        match value {
            Some(value) => html! { code { (value) } },
            None => html! { (none) },
        }
    };
    let pinned = |ids: Option<String>| -> Markup {
        match ids {
            Some(ids) => html! { (ids) },
            None => html! { "not yet (at the first publish from it)" },
        }
    };
    match policy {
        TrustPolicy::GitHub(p) => html! {
            dt { "Repository" } dd { code { (p.repository()) } }
            dt { "Workflow" } dd { code { (p.workflow_file()) } }
            dt { "Environment" } dd { (optional(p.environment_name(), "any")) }
            dt { "Pinned ids" } dd { (pinned(p.repository_id().zip(p.repository_owner_id()).map(|(repo, owner)| format!("repository {repo}, owner {owner}")))) }
        },
        TrustPolicy::GitLab(p) => html! {
            dt { "Project" } dd { code { (p.project_path()) } }
            dt { "CI file" } dd { code { (p.config_file()) } }
            dt { "Environment" } dd { (optional(p.environment_name(), "any")) }
            dt { "Pinned ids" } dd { (pinned(p.project_id().zip(p.namespace_id()).map(|(project, namespace)| format!("project {project}, namespace {namespace}")))) }
        },
        TrustPolicy::CircleCi(p) => html! {
            dt { "Organisation id" } dd { code { (p.org_id()) } }
            dt { "Project id" } dd { code { (p.project_id()) } }
            dt { "Pipeline definition id" } dd { code { (p.pipeline_definition_id()) } }
            dt { "VCS origin" } dd { (optional(p.vcs_origin_name(), "any")) }
            dt { "Contexts" } dd { @if p.context_ids().is_empty() { "none required" } @else { code { (p.context_ids().join(", ")) } } }
            dt { "Pinned ids" } dd { "not needed (the ids above are CircleCI's own)" }
        },
        _ => html! { dt { "Conditions" } dd { "of a provider this page cannot show" } },
    }
}

/// When a publisher was added, as the pages show times (the stored text, if it does not
/// read as one).
fn added_at(created: &str) -> Markup {
    match humantime::parse_rfc3339_weak(created) {
        Ok(at) => when(Some(at), ""),
        Err(_) => html! { (created) },
    }
}

fn publisher_card(settings: &Settings, stored: &StoredPublisher, view: &View) -> Markup {
    let policy = policy_of(stored);
    let title = match &policy {
        Some(policy) => policy.provider().to_string(),
        None => "Damaged trusted publisher".to_owned(),
    };
    let removing = view
        .removing
        .as_ref()
        .filter(|(id, _)| *id == stored.id)
        .map(|(_, message)| message.clone());
    let otp = format!("otp-{}", stored.id);
    html! {
        div.token.publisher {
            h3 { (title) }
            dl {
                @match &policy {
                    Some(policy) => {
                        (policy_rows(policy))
                        dt { "May" } dd { (policy.allows().iter().map(action_name).collect::<Vec<_>>().join(", ")) }
                    }
                    None => { dt { "Conditions" } dd { "cannot be read: it matches nothing (see the registry's log)" } }
                }
                dt { "Added" } dd { "by " (stored.created_by) ", " (added_at(&stored.created)) }
                dt { "ID" } dd { code { (stored.id) } }
            }
            form method="post" action=(format!("{}/trust/{}/remove", settings_path(&settings.name), stored.id)) {
                @if settings.ask_code { (otp_field(&otp, &removing)) } @else { (field_error(&otp, &removing)) }
                button.danger type="submit" aria-label=(format!("Remove trusted publisher {}", stored.id)) { "Remove" }
            }
        }
    }
}

fn add_form(settings: &Settings, view: &View) -> Markup {
    let form = &view.form;
    let errors = &view.errors;
    let error = |field: &'static str| field_error(field, &errors.get(field).cloned());
    let chosen = match form.provider.as_str() {
        "" => settings.trusted[0].as_str(),
        other => other,
    };
    html! {
        @if errors.keys().any(|field| *field != "general") {
            div.error role="alert" {
                p { "The trusted publisher was not added:" }
                ul {
                    @for (field, message) in errors.iter().filter(|(field, _)| **field != "general") {
                        li { a href=(format!("#{field}")) { (message) } }
                    }
                }
            }
        }
        form #add-publisher method="post" action=(format!("{}/trust", settings_path(&settings.name))) novalidate {
            fieldset #provider aria-describedby="provider-error" {
                legend { "CI provider" }
                @for provider in &settings.trusted {
                    @let id = format!("provider-{}", provider.as_str());
                    div { input id=(id) type="radio" name="provider" value=(provider.as_str()) checked[chosen == provider.as_str()]; " " label for=(id) { (provider.to_string()) } }
                }
                (error("provider"))
            }
            // Only the chosen provider's fields are shown (CSS, no script); without `:has`,
            // all are, and only the chosen provider's are read.
            @if settings.trusts(Provider::GitHub) {
                div.for-provider.for-github {
                    (text_field("github_repository", "GitHub repository", "owner/repo, such as acme/tool.", &form.github_repository, &errors.get("github_repository").cloned()))
                    (text_field("github_workflow", "Workflow file", "The file's name under .github/workflows/, such as release.yml.", &form.github_workflow, &errors.get("github_workflow").cloned()))
                    (text_field("github_environment", "Environment (optional)", "Only jobs in this GitHub environment, such as release. Empty: any job of the workflow.", &form.github_environment, &errors.get("github_environment").cloned()))
                }
            }
            @if settings.trusts(Provider::GitLab) {
                div.for-provider.for-gitlab {
                    (text_field("gitlab_project", "GitLab project path", "group/project, or group/subgroup/project.", &form.gitlab_project, &errors.get("gitlab_project").cloned()))
                    (text_field("gitlab_ci_file", "CI file", "The pipeline's configuration file in the project, such as .gitlab-ci.yml.", &form.gitlab_ci_file, &errors.get("gitlab_ci_file").cloned()))
                    (text_field("gitlab_environment", "Environment (optional)", "Only jobs in this GitLab environment. Empty: any job of the pipeline.", &form.gitlab_environment, &errors.get("gitlab_environment").cloned()))
                }
            }
            @if settings.trusts(Provider::CircleCi) {
                div.for-provider.for-circleci {
                    (text_field("circleci_org", "CircleCI organisation id", "A UUID, from the organisation's settings.", &form.circleci_org, &errors.get("circleci_org").cloned()))
                    (text_field("circleci_project", "Project id", "A UUID, from the project's settings.", &form.circleci_project, &errors.get("circleci_project").cloned()))
                    (text_field("circleci_pipeline", "Pipeline definition id", "A UUID, from the project's pipeline settings.", &form.circleci_pipeline, &errors.get("circleci_pipeline").cloned()))
                    (text_field("circleci_vcs_origin", "VCS origin (optional)", "Only pipelines of this repository, such as github.com/acme/tool. Empty: any.", &form.circleci_vcs_origin, &errors.get("circleci_vcs_origin").cloned()))
                }
            }
            p.hint { "It may publish (staged releases are not supported by this registry yet)." }
            @if settings.ask_code { (otp_field("otp", &errors.get("otp").cloned())) }
            div { button type="submit" { "Add trusted publisher" } }
        }
    }
}

/// The staging rule and the form that changes it.
fn staging_form(settings: &Settings, view: &View) -> Markup {
    let errors = &view.staging_errors;
    html! {
        h2 { "Releases" }
        @if let Some(general) = errors.get("general") { p.error #staging-error role="alert" { (general) } }
        form #staging method="post" action=(format!("{}/staging", settings_path(&settings.name))) novalidate {
            p {
                input #required type="checkbox" name="required" value="on" checked[settings.staging_required];
                " " label for="required" style="display:inline" { "Every release must be staged" }
            }
            p.hint { "Then " code { "npm publish" } " (a trusted publisher's too) is refused: releases go through " code { "npm stage publish" } " and wait on the " a href="/-/web/stages" { "Staged releases" } " page until a maintainer approves them." }
            @if settings.ask_code { (otp_field("staging-otp", &errors.get("otp").cloned())) }
            button type="submit" { "Save" }
        }
    }
}
