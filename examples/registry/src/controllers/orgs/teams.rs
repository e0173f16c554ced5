//! An organisation's teams: `npm team create|destroy|add|rm|ls` and `npm access
//! grant|revoke|list packages` (`/-/org/<org>/team`, `/-/team/<org>/<team>`, its `user`
//! and `package`). Admins and owners change them; members read them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokengate::Authenticated;

use super::{change, created, existing_user, org_package, readable};
use crate::controllers::packages::PackageName;
use crate::db::orgs::DEVELOPERS;
use crate::db::{Org, Role, Team, TeamAccess};
use crate::error::{ApiError, JsonBody};
use crate::query::KnownQuery;
use crate::state::AppState;

/// Most teams an organisation has.
const MAX_TEAMS: usize = 100;
/// Most characters of a team's description.
const MAX_DESCRIPTION_CHARS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    name: String,
    description: Option<String>,
}

/// `PUT /-/org/<org>/team`: `npm team create <org:team>`.
pub async fn create(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(org): Path<String>,
    JsonBody(body): JsonBody<NewTeam>,
) -> Result<impl IntoResponse, ApiError> {
    let name = team_name(&body.name)?;
    change(
        &state,
        who,
        crate::tfa::code_in(&headers),
        &org,
        Role::Admin,
        |org, _| create_team(org, &name, body.description.as_deref()),
    )
    .await?;
    Ok(created(Json(json!({ "name": name }))))
}

/// `DELETE /-/team/<org>/<team>`: `npm team destroy <org:team>`; never `developers`.
pub async fn destroy(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path((org, team)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    change(
        &state,
        who,
        crate::tfa::code_in(&headers),
        &org,
        Role::Admin,
        |org, _| destroy_team(org, &team),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?format=cli`, which npm sends: a list of names. No other format is known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Format {
    format: Option<String>,
}

impl Format {
    fn check(&self) -> Result<(), ApiError> {
        match self.format.as_deref() {
            None | Some("cli") => Ok(()),
            Some(other) => Err(ApiError::bad_request(format!(
                "format {:?} is not supported: only cli (a list of names)",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}

/// `GET /-/org/<org>/team?format=cli`: `npm team ls <org>`, `["org:team", …]`.
pub async fn list(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(org): Path<String>,
    KnownQuery(format): KnownQuery<Format>,
) -> Result<impl IntoResponse, ApiError> {
    format.check()?;
    let org = readable(&state, who, &org).await?;
    let names: Vec<String> = org
        .teams
        .keys()
        .map(|team| format!("{}:{team}", org.name))
        .collect();
    Ok(Json(names))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    user: String,
}

/// `PUT /-/team/<org>/<team>/user`: `npm team add <org:team> <user>`; the user must be a
/// member of the organisation.
pub async fn add_member(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path((org, team)): Path<(String, String)>,
    JsonBody(body): JsonBody<TeamMember>,
) -> Result<impl IntoResponse, ApiError> {
    let user = existing_user(&state, who.as_ref(), &org, Role::Admin, &body.user).await?;
    change(
        &state,
        who,
        crate::tfa::code_in(&headers),
        &org,
        Role::Admin,
        |org, _| add_to_team(org, &team, &user),
    )
    .await?;
    Ok(created(Json(json!({}))))
}

/// `DELETE /-/team/<org>/<team>/user`: `npm team rm <org:team> <user>`; what the team gave
/// their tokens is gone on the next request.
pub async fn remove_member(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path((org, team)): Path<(String, String)>,
    JsonBody(body): JsonBody<TeamMember>,
) -> Result<impl IntoResponse, ApiError> {
    let user = body.user.strip_prefix('@').unwrap_or(&body.user).to_owned();
    change(
        &state,
        who,
        crate::tfa::code_in(&headers),
        &org,
        Role::Admin,
        |org, _| remove_from_team(org, &team, &user),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /-/team/<org>/<team>/user?format=cli`: `npm team ls <org:team>`, `["user", …]`.
pub async fn members(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((org, team)): Path<(String, String)>,
    KnownQuery(format): KnownQuery<Format>,
) -> Result<impl IntoResponse, ApiError> {
    format.check()?;
    let mut org = readable(&state, who, &org).await?;
    let members: Vec<String> = team_of(&mut org, &team)?.members.iter().cloned().collect();
    Ok(Json(members))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    package: String,
    permissions: Option<String>,
}

/// `PUT /-/team/<org>/<team>/package`: `npm access grant <read-only|read-write> <org:team>
/// <pkg>`, for a package of the organisation's scope that exists.
pub async fn grant(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path((org, team)): Path<(String, String)>,
    JsonBody(body): JsonBody<Grant>,
) -> Result<impl IntoResponse, ApiError> {
    let access = access_named(body.permissions.as_deref().unwrap_or_default())?;
    let name = grantable(&state, who.as_ref(), &org, &body.package).await?;
    change(
        &state,
        who,
        crate::tfa::code_in(&headers),
        &org,
        Role::Admin,
        |org, _| grant_package(org, &team, &name, access),
    )
    .await?;
    Ok(created(Json(json!({}))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    package: String,
}

/// `DELETE /-/team/<org>/<team>/package`: `npm access revoke <org:team> <pkg>`.
pub async fn revoke(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path((org, team)): Path<(String, String)>,
    JsonBody(body): JsonBody<Revoke>,
) -> Result<impl IntoResponse, ApiError> {
    let name = org_package(&org, &body.package)?;
    change(
        &state,
        who,
        crate::tfa::code_in(&headers),
        &org,
        Role::Admin,
        |org, _| revoke_package(org, &team, &name),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /-/team/<org>/<team>/package`: `npm access list packages <org:team>`,
/// `{package: "read-only" | "read-write"}`.
pub async fn packages(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((org, team)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let mut org = readable(&state, who, &org).await?;
    Ok(Json(access_map(team_of(&mut org, &team)?.packages.iter())))
}

/// `GET /-/org/<org>/package`: `npm access list packages <org>`, each package any of its
/// teams has, with the best access a team has to it. Members only.
pub async fn org_packages(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(org): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let org = readable(&state, who, &org).await?;
    let mut best: std::collections::BTreeMap<&String, TeamAccess> = Default::default();
    for team in org.teams.values() {
        for (package, access) in &team.packages {
            let entry = best.entry(package).or_insert(*access);
            *entry = (*entry).max(*access);
        }
    }
    Ok(Json(access_map(best.into_iter())))
}

fn access_map<'a>(
    packages: impl Iterator<Item = (&'a String, impl std::borrow::Borrow<TeamAccess>)>,
) -> Map<String, Value> {
    packages
        .map(|(package, access)| (package.clone(), json!(access.borrow().as_str())))
        .collect()
}

/// A new team's name as npm's `org:team` gives it, lower-cased, or a 400 saying why not.
pub fn team_name(text: &str) -> Result<String, ApiError> {
    let name = text.trim().to_lowercase();
    if !crate::controllers::packages::PackageName::valid_scope(&name) {
        return Err(ApiError::bad_request(format!(
            "{:?} cannot be a team's name: use lower-case letters, digits, `-`, `.` and `_`",
            text.chars().take(64).collect::<String>()
        )));
    }
    Ok(name)
}

/// A new team `name` in `org`; a 409 when it has one of that name.
pub fn create_team(org: &mut Org, name: &str, description: Option<&str>) -> Result<(), ApiError> {
    if org.teams.contains_key(name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{}:{name} exists already", org.name),
        ));
    }
    if description.is_some_and(|text| text.chars().count() > MAX_DESCRIPTION_CHARS) {
        return Err(ApiError::bad_request(format!(
            "a team's description is at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    if org.teams.len() >= MAX_TEAMS {
        return Err(ApiError::bad_request(format!(
            "{} has {MAX_TEAMS} teams, the most an organisation may have",
            org.name
        )));
    }
    let team = Team {
        description: description.map(str::to_owned),
        ..Team::default()
    };
    org.teams.insert(name.to_owned(), team);
    Ok(())
}

/// `team` out of `org`, with what it gave its members; never `developers`.
pub fn destroy_team(org: &mut Org, team: &str) -> Result<(), ApiError> {
    if team == DEVELOPERS {
        return Err(ApiError::bad_request(format!(
            "{}:{DEVELOPERS} is every organisation's team and cannot be removed",
            org.name
        )));
    }
    org.teams
        .remove(team)
        .map(|_| ())
        .ok_or_else(|| no_such_team(&org.name, team))
}

/// The package `package` of `org`'s scope, if it exists: only those are given to teams.
/// Asked only once `who` may change the organisation's teams: to anyone else a private
/// package and a missing one look the same.
pub async fn grantable(
    state: &AppState,
    who: Option<&Authenticated>,
    org: &str,
    package: &str,
) -> Result<PackageName, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    super::allowed(state, who, org, Role::Admin).await?;
    let name = org_package(org, package)?;
    if state.db().read_rule(&name, None).await?.is_none() {
        return Err(crate::controllers::packages::access::not_found(&name));
    }
    Ok(name)
}

/// The team access `text` names, or a 400 naming the choices (for the API and the web
/// page).
pub fn access_named(text: &str) -> Result<TeamAccess, ApiError> {
    TeamAccess::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "permissions {:?} is not read-only or read-write",
            text.chars().take(32).collect::<String>()
        ))
    })
}

/// `access` to `name` for `team`, in place of what it had.
pub fn grant_package(
    org: &mut Org,
    team: &str,
    name: &PackageName,
    access: TeamAccess,
) -> Result<(), ApiError> {
    team_of(org, team)?
        .packages
        .insert(name.to_string(), access);
    Ok(())
}

/// `name` taken away from every team of the organisation whose scope holds it, so that
/// no grant outlives its package: called when the package is unpublished, and again
/// before a new package of that name is first written (a grant made while the old one
/// was going would otherwise give its team the new one). Nothing to do when no team has
/// it, or the scope is no organisation's; retried when the organisation changed meanwhile.
pub async fn take_from_every_team(state: &AppState, name: &PackageName) -> Result<(), ApiError> {
    let Some(scope) = name.scope() else {
        return Ok(());
    };
    let full = name.to_string();
    for _ in 0..3 {
        let Some(mut current) = state.db().org(scope).await? else {
            return Ok(());
        };
        let before = current.clone();
        let mut taken = false;
        for team in current.teams.values_mut() {
            taken |= team.packages.remove(&full).is_some();
        }
        if !taken {
            return Ok(());
        }
        match state.db().put_org(&current).await {
            Ok(_) => {
                super::rights_changed(state, &before, &current).await;
                tracing::info!(package = %name, org = scope, "package taken from its teams");
                return Ok(());
            }
            Err(error) if error.is_conflict() => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "{name}: the access the teams of {scope} had to it could not be taken away \
             (the organisation kept changing); try again"
        ),
    ))
}

/// `team`'s access to `name` taken away (nothing to do when it had none).
pub fn revoke_package(org: &mut Org, team: &str, name: &PackageName) -> Result<(), ApiError> {
    team_of(org, team)?.packages.remove(&name.to_string());
    Ok(())
}

/// `user` (a member of the organisation) into `team`.
pub fn add_to_team(org: &mut Org, team: &str, user: &str) -> Result<(), ApiError> {
    if org.role_of(user).is_none() {
        return Err(ApiError::bad_request(format!(
            "{user} is not a member of {}: add them with `npm org set {} {user}` first",
            org.name, org.name
        )));
    }
    team_of(org, team)?.members.insert(user.to_owned());
    Ok(())
}

/// `user` out of `team`.
pub fn remove_from_team(org: &mut Org, team: &str, user: &str) -> Result<(), ApiError> {
    let name = org.name.clone();
    if !team_of(org, team)?.members.remove(user) {
        return Err(ApiError::not_found(format!(
            "{user} is not in {name}:{team}"
        )));
    }
    Ok(())
}

fn team_of<'a>(org: &'a mut Org, team: &str) -> Result<&'a mut Team, ApiError> {
    let name = org.name.clone();
    org.teams
        .get_mut(team)
        .ok_or_else(|| no_such_team(&name, team))
}

fn no_such_team(org: &str, team: &str) -> ApiError {
    ApiError::not_found(format!(
        "no team {org}:{}",
        team.chars().take(64).collect::<String>()
    ))
}
