//! The organisation pages: making one (its maker becomes its owner), and an organisation's
//! page with its members and their roles, and its teams with their members and packages,
//! for its members only (others get the page of an organisation that does not exist). On
//! it, with the same checks as npm's commands and the registry's API (a one-time password
//! with 2FA): owners add, re-role and remove members and remove the organisation; admins
//! and owners make and remove teams, put members into them and take them out, give teams
//! packages and take them away, and choose what `developers` gets on new packages.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use tokengate::Authenticated;

use serde::Deserialize;

use super::layout::{api_error_page, field_error, layout, page_response, redirect};
use crate::controllers::orgs::{members, organisation, teams};
use crate::controllers::packages::PackageName;
use crate::db::orgs::DEVELOPERS;
use crate::db::{NewPackageAccess, Org, Role, TeamAccess};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /-/web/orgs/<org>`.
pub(super) async fn org_page(
    State(state): State<AppState>,
    who: Authenticated,
    Path(org): Path<String>,
) -> Response {
    let owner = who.owner().to_owned();
    let shown = async {
        let org = crate::controllers::orgs::readable(&state, Some(who), &org).await?;
        let code = super::tokens::has_2fa(&state, &owner).await?;
        Ok::<_, crate::error::ApiError>((org, code))
    };
    match shown.await {
        Ok((org, code)) => {
            let role = org.role_of(&owner).unwrap_or(Role::Developer);
            let body = markup(&org, role, code);
            page_response(
                StatusCode::OK,
                layout(&format!("@{}", org.name), Some(&owner), body),
            )
        }
        Err(error) => api_error_page(Some(&owner), error),
    }
}

/// The one-time password field of a change's form, when the account has 2FA.
fn code_field(code: bool) -> Markup {
    html! {
        @if code {
            label { "One-time password " input type="text" name="otp" inputmode="numeric" autocomplete="one-time-code" required; }
        }
    }
}

fn markup(org: &Org, role: Role, code: bool) -> Markup {
    let base = format!("/-/web/orgs/{}", org.name);
    // The only owner cannot be removed (nor offered the button).
    let owners = org
        .members
        .values()
        .filter(|their| **their == Role::Owner)
        .count();
    html! {
        h2 { "Members" }
        div.table-wrap {
            table.members {
                thead { tr {
                    th scope="col" { "User" } th scope="col" { "Role" }
                    @if role == Role::Owner { th scope="col" { span.visually-hidden { "Change" } } }
                } }
                tbody {
                    @for (user, their) in &org.members {
                        tr {
                            th scope="row" { (user) }
                            td { (their.as_str()) }
                            @if role == Role::Owner && !(*their == Role::Owner && owners == 1) {
                                td {
                                    form.inline method="post" action=(format!("{base}/members/remove")) {
                                        input type="hidden" name="user" value=(user);
                                        (code_field(code))
                                        button type="submit" aria-label=(format!("Remove {user}")) { "Remove" }
                                    }
                                }
                            } @else if role == Role::Owner {
                                td.hint { "the only owner" }
                            }
                        }
                    }
                }
            }
        }
        @if role == Role::Owner {
            form.inline method="post" action=(format!("{base}/members")) {
                label { "User " input type="text" name="user" required autocomplete="off"; }
                label { "Role "
                    select name="role" {
                        option value="developer" { "developer" }
                        option value="admin" { "admin" }
                        option value="owner" { "owner" }
                    }
                }
                (code_field(code))
                button type="submit" { "Add or change member" }
            }
        }
        h2 { "Teams" }
        @for (name, team) in &org.teams {
            section.team {
                h3 { (org.name) ":" (name) }
                @if let Some(description) = &team.description { p.hint { (description) } }
                p { "Members: "
                    @if team.members.is_empty() { "none" }
                    @else { (team.members.iter().cloned().collect::<Vec<_>>().join(", ")) }
                }
                @if role >= Role::Admin {
                    form.inline method="post" action=(format!("{base}/teams/{name}/add")) {
                        label { "User " input type="text" name="user" required autocomplete="off"; }
                        (code_field(code))
                        button type="submit" { "Add to team" }
                        button type="submit" formaction=(format!("{base}/teams/{name}/remove")) { "Remove from team" }
                    }
                }
                @if team.packages.is_empty() {
                    p { "No packages." }
                } @else {
                    ul.packages {
                        @for (package, access) in &team.packages {
                            li {
                                code { (package) } " " (access.as_str())
                                @if role >= Role::Admin {
                                    form.inline method="post" action=(format!("{base}/teams/{name}/revoke")) {
                                        input type="hidden" name="package" value=(package);
                                        (code_field(code))
                                        button type="submit" aria-label=(format!("Take {package} away from {}:{name}", org.name)) { "Take away" }
                                    }
                                }
                            }
                        }
                    }
                }
                @if role >= Role::Admin {
                    form.inline method="post" action=(format!("{base}/teams/{name}/grant")) {
                        label { "Package " input type="text" name="package" required autocomplete="off" placeholder=(format!("@{}/…", org.name)); }
                        label { "Access "
                            select name="permissions" {
                                option value=(TeamAccess::ReadOnly.as_str()) { "read-only (install)" }
                                option value=(TeamAccess::ReadWrite.as_str()) { "read-write (install and publish)" }
                            }
                        }
                        (code_field(code))
                        button type="submit" { "Give the team this package" }
                    }
                    @if name != DEVELOPERS {
                        form.inline method="post" action=(format!("{base}/teams/{name}/destroy")) {
                            (code_field(code))
                            button.danger type="submit" aria-label=(format!("Remove the team {}:{name}", org.name)) { "Remove team" }
                        }
                    }
                }
            }
        }
        @if role >= Role::Admin {
            h3 { "New team" }
            form.inline method="post" action=(format!("{base}/teams")) {
                label { "Name " input #team-name type="text" name="name" required autocomplete="off"; }
                label { "Description " input #team-description type="text" name="description" autocomplete="off"; }
                (code_field(code))
                button type="submit" { "Create team" }
            }
        }
        h2 { "New packages" }
        @if role >= Role::Admin {
            form.inline method="post" action=(format!("{base}/settings")) {
                label { "On each new package of @" (org.name) ", " (DEVELOPERS) " gets "
                    select name="developers_on_new_packages" {
                        @for choice in NewPackageAccess::ALL {
                            option value=(choice.as_str()) selected[choice == org.developers_on_new_packages] { (new_package_words(choice)) }
                        }
                    }
                }
                (code_field(code))
                button type="submit" { "Save" }
            }
        } @else {
            p { "On each new package of @" (org.name) ", " (DEVELOPERS) " gets "
                (new_package_words(org.developers_on_new_packages)) "." }
        }
        @if role == Role::Owner {
            h2 { "Remove the organisation" }
            p { "Its teams and their access go with it, and its name is free again. It cannot be removed while @" (org.name) " has packages: unpublish them first." }
            form.inline method="post" action=(format!("{base}/remove")) {
                label { "Type " code { (org.name) } " to confirm " input type="text" name="confirm" required autocomplete="off"; }
                (code_field(code))
                button.danger type="submit" { "Remove " (org.name) }
            }
        }
    }
}

/// A new-package choice as the page says it.
fn new_package_words(choice: NewPackageAccess) -> &'static str {
    match choice {
        NewPackageAccess::ReadWrite => "read-write (as on npm)",
        NewPackageAccess::ReadOnly => "read-only",
        NewPackageAccess::NoAccess => "nothing",
    }
}

/// `GET /-/web/new-organisation`: the form that makes an organisation.
pub(super) async fn new_org_page(who: Authenticated) -> Response {
    new_org_form(who.owner(), "", &None)
}

fn new_org_form(owner: &str, name: &str, error: &Option<String>) -> Response {
    let status = match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    let body = html! {
        p { "An organisation's name is its scope: packages named " code { "@<name>/…" } " are its. You become its owner." }
        form method="post" action="/-/web/new-organisation" {
            label for="name" { "Name" }
            input #name name="name" value=(name) required autocomplete="off"
                aria-describedby=[error.as_ref().map(|_| "name-error")];
            (field_error("name", error))
            button type="submit" { "Create organisation" }
        }
    };
    page_response(status, layout("New organisation", Some(owner), body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewOrgForm {
    name: String,
}

/// `POST /-/web/new-organisation`: makes it, then shows its page; a taken or bad name is said on the
/// form.
pub(super) async fn create_org(
    State(state): State<AppState>,
    who: Authenticated,
    Form(form): Form<NewOrgForm>,
) -> Response {
    let owner = who.owner().to_owned();
    let name = form.name.trim().to_lowercase();
    match crate::controllers::orgs::members::make(&state, Some(who), &name).await {
        Ok(made) => redirect(&format!("/-/web/orgs/{}", made.name)),
        Err(error) if error.status().is_client_error() => {
            new_org_form(&owner, &form.name, &Some(error.message().to_owned()))
        }
        Err(error) => api_error_page(Some(&owner), error),
    }
}

/// A change's form: what it names (a field for each change; a field no change has is
/// refused), and the one-time password when the account has 2FA.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeForm {
    user: Option<String>,
    role: Option<String>,
    name: Option<String>,
    description: Option<String>,
    package: Option<String>,
    permissions: Option<String>,
    developers_on_new_packages: Option<String>,
    confirm: Option<String>,
    #[serde(default)]
    otp: String,
}

impl ChangeForm {
    fn code(&self) -> Option<&str> {
        Some(self.otp.trim()).filter(|code| !code.is_empty())
    }

    /// The field `name`, trimmed, or a 400 naming it.
    fn field<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("fill in the {name}")))
    }

    fn user(&self) -> Result<String, ApiError> {
        Ok(Self::field(&self.user, "user")?
            .trim_start_matches('@')
            .to_owned())
    }
}

/// What a form asks of an organisation.
enum Asked {
    SetMember,
    RemoveMember,
    AddToTeam(String),
    RemoveFromTeam(String),
    CreateTeam,
    DestroyTeam(String),
    Grant(String),
    Revoke(String),
}

/// `POST /-/web/orgs/<org>/<action>`: `members` adds a member or changes their role
/// (owners), `teams` makes a team and `settings` says what `developers` gets on new
/// packages (admins and owners), `remove` removes the organisation once its name is typed
/// to confirm (owners).
pub(super) async fn org_change(
    State(state): State<AppState>,
    who: Authenticated,
    Path((org, action)): Path<(String, String)>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let owner = who.owner().to_owned();
    let asked = match action.as_str() {
        "members" => Asked::SetMember,
        "teams" => Asked::CreateTeam,
        "settings" => {
            let changed = set_new_package_access(&state, who, &org, &form).await;
            return shown_again(&owner, changed.map(|org| org.name));
        }
        "remove" => {
            let removed = remove_org(&state, who, &org, &form).await;
            return match removed {
                Ok(()) => redirect("/-/web/new-organisation"),
                Err(error) => api_error_page(Some(&owner), error),
            };
        }
        _ => return api_error_page(Some(&owner), ApiError::not_found("no such page")),
    };
    apply(State(state), who, org, form, asked).await
}

/// The settings form: what `developers` gets on new packages.
async fn set_new_package_access(
    state: &AppState,
    who: Authenticated,
    org: &str,
    form: &ChangeForm,
) -> Result<Org, ApiError> {
    let text = ChangeForm::field(&form.developers_on_new_packages, "choice for new packages")?;
    let choice = organisation::parse_new_package_access(text)?;
    organisation::set_new_package_access(state, Some(who), form.code(), org, choice).await
}

/// The removal form, once the organisation's name is typed to confirm.
async fn remove_org(
    state: &AppState,
    who: Authenticated,
    org: &str,
    form: &ChangeForm,
) -> Result<(), ApiError> {
    if ChangeForm::field(&form.confirm, "organisation's name to confirm")? != org {
        return Err(ApiError::bad_request(format!(
            "type {org} to confirm that it is the organisation to remove"
        )));
    }
    organisation::delete(state, Some(who), form.code(), org).await
}

/// The organisation's page again after a change, or the page saying what went wrong.
fn shown_again(owner: &str, changed: Result<String, ApiError>) -> Response {
    match changed {
        Ok(org) => redirect(&format!("/-/web/orgs/{org}")),
        Err(error) => api_error_page(Some(owner), error),
    }
}

/// `POST /-/web/orgs/<org>/members/remove` (owners).
pub(super) async fn remove_member(
    state: State<AppState>,
    who: Authenticated,
    Path(org): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    apply(state, who, org, form, Asked::RemoveMember).await
}

/// `POST /-/web/orgs/<org>/teams/<team>/<action>`: `add` and `remove` a member, `grant`
/// and `revoke` a package, `destroy` the team (admins and owners).
pub(super) async fn team_change(
    state: State<AppState>,
    who: Authenticated,
    Path((org, team, action)): Path<(String, String, String)>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let asked = match action.as_str() {
        "add" => Asked::AddToTeam(team),
        "remove" => Asked::RemoveFromTeam(team),
        "grant" => Asked::Grant(team),
        "revoke" => Asked::Revoke(team),
        "destroy" => Asked::DestroyTeam(team),
        _ => return api_error_page(Some(who.owner()), ApiError::not_found("no such page")),
    };
    apply(state, who, org, form, asked).await
}

/// A form's change, its fields read and checked: what [`crate::controllers::orgs::change`]
/// applies.
enum Edit {
    SetMember(String, Role),
    RemoveMember(String),
    AddToTeam(String, String),
    RemoveFromTeam(String, String),
    CreateTeam(String, Option<String>),
    DestroyTeam(String),
    Grant(String, PackageName, TeamAccess),
    Revoke(String, PackageName),
}

impl Edit {
    /// The change `asked` names, from `form`'s fields (users and granted packages must
    /// exist).
    async fn of(
        state: &AppState,
        who: &Authenticated,
        org: &str,
        asked: Asked,
        form: &ChangeForm,
    ) -> Result<Self, ApiError> {
        let existing = |text: String, needs: Role| async move {
            crate::controllers::orgs::existing_user(state, Some(who), org, needs, &text).await
        };
        Ok(match asked {
            Asked::SetMember => {
                let role = members::role_named(form.role.as_deref())?;
                Edit::SetMember(existing(form.user()?, Role::Owner).await?, role)
            }
            Asked::RemoveMember => Edit::RemoveMember(form.user()?),
            Asked::AddToTeam(team) => {
                Edit::AddToTeam(team, existing(form.user()?, Role::Admin).await?)
            }
            Asked::RemoveFromTeam(team) => Edit::RemoveFromTeam(team, form.user()?),
            Asked::CreateTeam => Edit::CreateTeam(
                teams::team_name(ChangeForm::field(&form.name, "team's name")?)?,
                form.description
                    .as_deref()
                    .map(str::trim)
                    .filter(|text| !text.is_empty())
                    .map(str::to_owned),
            ),
            Asked::DestroyTeam(team) => Edit::DestroyTeam(team),
            Asked::Grant(team) => {
                let access = teams::access_named(ChangeForm::field(&form.permissions, "access")?)?;
                let package = ChangeForm::field(&form.package, "package")?;
                Edit::Grant(
                    team,
                    teams::grantable(state, Some(who), org, package).await?,
                    access,
                )
            }
            Asked::Revoke(team) => Edit::Revoke(
                team,
                PackageName::parse(ChangeForm::field(&form.package, "package")?)?,
            ),
        })
    }

    /// The least role that may make it.
    fn needs(&self) -> Role {
        match self {
            Edit::SetMember(..) | Edit::RemoveMember(_) => Role::Owner,
            _ => Role::Admin,
        }
    }

    fn apply(&self, org: &mut Org) -> Result<(), ApiError> {
        match self {
            Edit::SetMember(user, role) => members::set_member(org, user, *role),
            Edit::RemoveMember(user) => members::remove_member(org, user),
            Edit::AddToTeam(team, user) => teams::add_to_team(org, team, user),
            Edit::RemoveFromTeam(team, user) => teams::remove_from_team(org, team, user),
            Edit::CreateTeam(name, description) => {
                teams::create_team(org, name, description.as_deref())
            }
            Edit::DestroyTeam(team) => teams::destroy_team(org, team),
            Edit::Grant(team, name, access) => teams::grant_package(org, team, name, *access),
            Edit::Revoke(team, name) => teams::revoke_package(org, team, name),
        }
    }
}

/// Makes the change as the API would, then shows the organisation again.
async fn apply(
    State(state): State<AppState>,
    who: Authenticated,
    org: String,
    form: ChangeForm,
    asked: Asked,
) -> Response {
    let owner = who.owner().to_owned();
    let done = async {
        let edit = Edit::of(&state, &who, &org, asked, &form).await?;
        let changed = crate::controllers::orgs::change(
            &state,
            Some(who),
            form.code(),
            &org,
            edit.needs(),
            |org, _| edit.apply(org),
        )
        .await?;
        Ok(changed.name)
    };
    shown_again(&owner, done.await)
}
