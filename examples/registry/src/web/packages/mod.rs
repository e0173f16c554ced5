//! The Packages page: the packages the signed-in user maintains, each linking to its
//! settings page ([`settings`]), where its maintainers see, add ([`trust`]) and remove its
//! trusted publishers, and say whether every release must be staged ([`staging`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use tokengate::{Action, Authenticated, Resource};

use super::layout::{api_error_page, layout, page_response};
use crate::controllers::packages::PackageName;
use crate::controllers::packages::access::Visibility;
use crate::state::AppState;

pub(super) mod settings;
pub(super) mod staging;
pub(super) mod trust;

/// The settings page's address: a scoped name's `/` escaped, so that `@scope/name` is one
/// path segment.
pub(super) fn settings_path(name: &PackageName) -> String {
    format!("/-/web/packages/{}", name.to_string().replace('/', "%2F"))
}

/// `GET /-/web/packages`: the packages `who` maintains, by name, and their organisations:
/// as much as their token may read (as `npm access list packages` and `npm org ls` answer
/// it), so that a token limited to some packages learns nothing of the others here.
pub(super) async fn packages_page(State(state): State<AppState>, who: Authenticated) -> Response {
    let owner = who.owner();
    let mut maintained = match state.db().maintained_by(owner).await {
        Ok(maintained) => maintained,
        Err(error) => return api_error_page(Some(owner), error.into()),
    };
    maintained.sort_by(|a, b| a.name.cmp(&b.name));
    let orgs: Vec<_> = match state.db().orgs_of(owner).await {
        Ok(orgs) => orgs
            .into_iter()
            .filter(|(org, _)| crate::controllers::orgs::token_may_read(&who, org))
            .collect(),
        Err(error) => return api_error_page(Some(owner), error.into()),
    };
    let listed: Vec<_> = maintained
        .iter()
        .filter_map(|m| Some((PackageName::parse(&m.name).ok()?, m.visibility)))
        .filter(|(name, visibility)| {
            *visibility == Visibility::Public
                || who.may(Action::Read, Some(&Resource::new(name.to_string())))
        })
        .collect();
    // Said whatever is left out, so that it does not tell whether anything was.
    let through_a_token = who.kind() != tokengate::TokenKind::Session;
    let body = html! {
        @if through_a_token {
            p.hint { "Through the token this page was asked with: only the private packages and the organisations it may read are shown." }
        }
        p { "The packages you maintain. A package's settings page lists the CI workflows that may publish it without a token (trusted publishing, as " code { "npm trust" } " sets them up)." }
        @if listed.is_empty() {
            p { "You maintain no packages yet: one you publish with " code { "npm publish" } " appears here." }
        } @else {
            ul.packages {
                @for (name, visibility) in &listed {
                    li {
                        a href=(settings_path(name)) { (name.to_string()) }
                        @if *visibility == Visibility::Private { " " span.hint { "(private)" } }
                    }
                }
            }
        }
        h2 { "Your organisations" }
        @if orgs.is_empty() {
            p { "You are in no organisation. An organisation owns a scope (" code { "@acme/…" } ") and shares its packages with its teams." }
        } @else {
            ul.orgs {
                @for (org, role) in &orgs {
                    li { a href=(format!("/-/web/orgs/{org}")) { "@" (org) } " " span.hint { "(" (role.as_str()) ")" } }
                }
            }
        }
        p { a href="/-/web/new-organisation" { "Make an organisation" } }
    };
    page_response(StatusCode::OK, layout("Your packages", Some(owner), body))
}
