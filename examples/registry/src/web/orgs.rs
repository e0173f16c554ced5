//! The organisation pages: making one (its maker becomes its owner), and an organisation's
//! page with its members and their roles, and its teams with their members and packages,
//! for its members only (others get the page of an organisation that does not exist).
//! Members and teams are changed with npm's commands (`npm org`, `npm team`, `npm access`);
//! the page says which.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use tokengate::Authenticated;

use serde::Deserialize;

use super::layout::{api_error_page, field_error, layout, page_response, redirect};
use crate::db::Org;
use crate::state::AppState;

/// `GET /-/web/orgs/<org>`.
pub(super) async fn org_page(
    State(state): State<AppState>,
    who: Authenticated,
    Path(org): Path<String>,
) -> Response {
    let owner = who.owner().to_owned();
    match crate::controllers::orgs::readable(&state, Some(who), &org).await {
        Ok(org) => page_response(
            StatusCode::OK,
            layout(&format!("@{}", org.name), Some(&owner), markup(&org)),
        ),
        Err(error) => api_error_page(Some(&owner), error),
    }
}

fn markup(org: &Org) -> Markup {
    html! {
        h2 { "Members" }
        div.table-wrap {
            table.members {
                thead { tr { th scope="col" { "User" } th scope="col" { "Role" } } }
                tbody {
                    @for (user, role) in &org.members {
                        tr { th scope="row" { (user) } td { (role.as_str()) } }
                    }
                }
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
            "Owners change members with " code { "npm org set|rm" } "; admins and owners change teams with "
            code { "npm team" } " and their packages with " code { "npm access grant|revoke" } "."
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
