//! The organisation pages: making one (its maker becomes its owner), and an organisation's
//! page with its members and their roles, and its teams with their members and packages,
//! for its members only (others get the page of an organisation that does not exist). Its
//! owners add and remove members on it, and its admins and owners put members into teams
//! and take them out, with the same checks as npm's commands (a one-time password with
//! 2FA); teams and their packages are changed with `npm team` and `npm access`.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use tokengate::Authenticated;

use serde::Deserialize;

use super::layout::{api_error_page, field_error, layout, page_response, redirect};
use crate::controllers::orgs::{members, teams};
use crate::db::{Org, Role};
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
            label { "One-time password " input name="otp" inputmode="numeric" autocomplete="one-time-code" required; }
        }
    }
}

fn markup(org: &Org, role: Role, code: bool) -> Markup {
    let base = format!("/-/web/orgs/{}", org.name);
    html! {
        h2 { "Members" }
        div.table-wrap {
            table.members {
                thead { tr { th scope="col" { "User" } th scope="col" { "Role" } } }
                tbody {
                    @for (user, their) in &org.members {
                        tr {
                            th scope="row" { (user) }
                            td { (their.as_str()) }
                            @if role == Role::Owner {
                                td {
                                    form method="post" action=(format!("{base}/members/remove")) {
                                        input type="hidden" name="user" value=(user);
                                        (code_field(code))
                                        button type="submit" aria-label=(format!("Remove {user}")) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if role == Role::Owner {
            form method="post" action=(format!("{base}/members")) {
                label { "User " input name="user" required autocomplete="off"; }
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
                    @for (action, label) in [("add", "Add to team"), ("remove", "Remove from team")] {
                        form method="post" action=(format!("{base}/teams/{name}/{action}")) {
                            label { "User " input name="user" required autocomplete="off"; }
                            (code_field(code))
                            button type="submit" { (label) }
                        }
                    }
                }
                @if team.packages.is_empty() {
                    p { "No packages." }
                } @else {
                    ul.packages {
                        @for (package, access) in &team.packages {
                            li { code { (package) } " " (access.as_str()) }
                        }
                    }
                }
            }
        }
        p.hint {
            "Admins and owners make and remove teams with " code { "npm team create|destroy" }
            " and give them packages with " code { "npm access grant|revoke" } "."
        }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MemberForm {
    user: String,
    role: Option<String>,
    #[serde(default)]
    otp: String,
}

impl MemberForm {
    fn code(&self) -> Option<&str> {
        Some(self.otp.trim()).filter(|code| !code.is_empty())
    }
}

/// What a form asks of an organisation.
enum Asked {
    SetMember,
    RemoveMember,
    AddToTeam(String),
    RemoveFromTeam(String),
}

/// `POST /-/web/orgs/<org>/members`: adds a member, or changes their role (owners).
pub(super) async fn set_member(
    state: State<AppState>,
    who: Authenticated,
    Path(org): Path<String>,
    Form(form): Form<MemberForm>,
) -> Response {
    apply(state, who, org, form, Asked::SetMember).await
}

/// `POST /-/web/orgs/<org>/members/remove` (owners).
pub(super) async fn remove_member(
    state: State<AppState>,
    who: Authenticated,
    Path(org): Path<String>,
    Form(form): Form<MemberForm>,
) -> Response {
    apply(state, who, org, form, Asked::RemoveMember).await
}

/// `POST /-/web/orgs/<org>/teams/<team>/add` and `…/remove` (admins and owners).
pub(super) async fn team_member(
    state: State<AppState>,
    who: Authenticated,
    Path((org, team, action)): Path<(String, String, String)>,
    Form(form): Form<MemberForm>,
) -> Response {
    let asked = match action.as_str() {
        "add" => Asked::AddToTeam(team),
        "remove" => Asked::RemoveFromTeam(team),
        _ => {
            return api_error_page(
                Some(who.owner()),
                crate::error::ApiError::not_found("no such page"),
            );
        }
    };
    apply(state, who, org, form, asked).await
}

/// Makes the change as the API would, then shows the organisation again.
async fn apply(
    State(state): State<AppState>,
    who: Authenticated,
    org: String,
    form: MemberForm,
    asked: Asked,
) -> Response {
    let owner = who.owner().to_owned();
    let user = form.user.trim().trim_start_matches('@').to_owned();
    let done = async {
        let needs = match asked {
            Asked::SetMember | Asked::RemoveMember => Role::Owner,
            Asked::AddToTeam(_) | Asked::RemoveFromTeam(_) => Role::Admin,
        };
        let role = match (&asked, form.role.as_deref()) {
            (Asked::SetMember, Some(text)) => Role::parse(text).ok_or_else(|| {
                crate::error::ApiError::bad_request("the role is one of developer, admin, owner")
            })?,
            _ => Role::Developer,
        };
        let user = match asked {
            Asked::SetMember | Asked::AddToTeam(_) => {
                crate::controllers::orgs::existing_user(&state, &user).await?
            }
            _ => user,
        };
        crate::controllers::orgs::change(&state, Some(who), form.code(), &org, needs, |org, _| {
            match &asked {
                Asked::SetMember => members::set_member(org, &user, role),
                Asked::RemoveMember => members::remove_member(org, &user),
                Asked::AddToTeam(team) => teams::add_to_team(org, team, &user),
                Asked::RemoveFromTeam(team) => teams::remove_from_team(org, team, &user),
            }
        })
        .await
    };
    match done.await {
        Ok(changed) => redirect(&format!("/-/web/orgs/{}", changed.name)),
        Err(error) => api_error_page(Some(&owner), error),
    }
}
