//! An organisation's members: `npm org set|rm|ls` (`/-/org/<org>/user`), and the
//! registry's own `PUT /-/org/<org>`, which makes an organisation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokengate::Authenticated;

use super::{change, created, existing_user, readable};
use crate::controllers::packages::{self, PackageName, access, owners};
use crate::db::orgs::DEVELOPERS;
use crate::db::{Org, Role};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// `PUT /-/org/<org>`: makes the organisation `org` (and so the scope `@org`), with the
/// caller as its owner. Refused when a user or an organisation has the name, or someone
/// else has published into the scope. Needs a session or a token for every package.
pub async fn create(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(org): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let made = make(&state, who, &org).await?;
    let owner = made.first_owner().unwrap_or_default().to_owned();
    Ok(created(Json(
        json!({ "name": made.name, "created": made.created, "owner": owner }),
    )))
}

/// Makes the organisation `org`, owned by `who` (for the API and the web page).
pub async fn make(
    state: &AppState,
    who: Option<Authenticated>,
    org: &str,
) -> Result<Org, ApiError> {
    let who = crate::controllers::tokens::account_manager(
        who,
        tokengate::Permission::ReadWrite,
        crate::controllers::tokens::Governs::Orgs,
    )?;
    super::refuse_bypassed(&who)?;
    if !PackageName::valid_scope(org) {
        return Err(ApiError::bad_request(format!(
            "{:?} cannot be an organisation's name: it is its scope, so lower-case letters, \
             digits, `-`, `.` and `_`",
            org.chars().take(64).collect::<String>()
        )));
    }
    // Its scope must hold a package: `@org/x` within a package name's length.
    let longest = PackageName::MAX_LEN - "@/x".len();
    if org.len() > longest {
        return Err(ApiError::bad_request(format!(
            "an organisation's name is at most {longest} characters, so that its scope \
             leaves room for a package's name"
        )));
    }
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let made = Org::new(org, who.owner(), now);
    // Under the write lock, as publishes are: a first publish into the scope, which claims
    // it, lands before (and the name is taken) or after (and is the organisation's).
    let _writing = state.write_lock().await;
    state.db().put_org(&made).await.map_err(|error| {
        if error.is_conflict() {
            ApiError::new(
                axum::http::StatusCode::CONFLICT,
                format!(
                    "the name {org} is taken: a user or an organisation has it, or someone \
                     else publishes in @{org}"
                ),
            )
        } else {
            error.into()
        }
    })?;
    tracing::info!(org, user = who.owner(), "organisation created");
    Ok(made)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    user: String,
    role: Option<String>,
}

/// `PUT /-/org/<org>/user`: `npm org set <org> <user> [developer|admin|owner]`. Owners
/// only; a new member joins the `developers` team; the last owner cannot step down.
pub async fn set(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(org): Path<String>,
    JsonBody(body): JsonBody<Membership>,
) -> Result<impl IntoResponse, ApiError> {
    let role = role_named(body.role.as_deref())?;
    let user = existing_user(&state, who.as_ref(), &org, Role::Owner, &body.user).await?;
    let changed = change(
        &state,
        who,
        crate::tfa::code_in(&headers),
        &org,
        Role::Owner,
        |org, _| set_member(org, &user, role),
    )
    .await?;
    Ok(Json(json!({
        "org": { "name": changed.name, "size": changed.members.len() },
        "user": user,
        "role": role.as_str(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    user: String,
}

/// `DELETE /-/org/<org>/user`: `npm org rm <org> <user>`. Owners only; the member leaves
/// every team, and their tokens lose what the organisation gave on the next request.
pub async fn remove(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(org): Path<String>,
    JsonBody(body): JsonBody<Member>,
) -> Result<impl IntoResponse, ApiError> {
    let user = body.user.strip_prefix('@').unwrap_or(&body.user).to_owned();
    change(
        &state,
        who,
        crate::tfa::code_in(&headers),
        &org,
        Role::Owner,
        |org, _| remove_member(org, &user),
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /-/org/<org>/user`: `npm org ls <org>`, `{user: role}`, for members.
pub async fn list(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(org): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let org = readable(&state, who, &org).await?;
    let roster: Map<String, Value> = org
        .members
        .iter()
        .map(|(user, role)| (user.clone(), json!(role.as_str())))
        .collect();
    Ok(Json(roster))
}

/// `user` a member with `role` (a new one in `developers` too); the last owner stays one.
pub fn set_member(org: &mut Org, user: &str, role: Role) -> Result<(), ApiError> {
    let demoted = org.role_of(user) == Some(Role::Owner) && role != Role::Owner;
    if demoted && owners(org) == 1 {
        return Err(last_owner(&org.name));
    }
    if org.members.insert(user.to_owned(), role).is_none() {
        if let Some(developers) = org.teams.get_mut(DEVELOPERS) {
            developers.members.insert(user.to_owned());
        }
    }
    Ok(())
}

/// The role `text` names (npm's default, developer, when none is named), or a 400 naming
/// the choices (for the API and the web page).
pub fn role_named(text: Option<&str>) -> Result<Role, ApiError> {
    let Some(text) = text else {
        return Ok(Role::Developer);
    };
    Role::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role {:?} is not one of developer, admin, owner",
            text.chars().take(32).collect::<String>()
        ))
    })
}

/// `user` out of the organisation and every team; never its last owner.
pub fn remove_member(org: &mut Org, user: &str) -> Result<(), ApiError> {
    match org.role_of(user) {
        None => {
            return Err(ApiError::not_found(format!(
                "{user} is not a member of {}",
                org.name
            )));
        }
        Some(Role::Owner) if owners(org) == 1 => return Err(last_owner(&org.name)),
        Some(_) => {}
    }
    org.members.remove(user);
    for team in org.teams.values_mut() {
        team.members.remove(user);
    }
    Ok(())
}

/// Who was a member of `before` and is not of `after`.
pub fn departed(before: &Org, after: &Org) -> Vec<String> {
    before
        .members
        .keys()
        .filter(|user| !after.members.contains_key(*user))
        .cloned()
        .collect()
}

/// The packages of `org`'s scope that any of `users` maintains (asked while they are
/// still members: the lists of anyone else's scope do not count them).
pub async fn org_packages_of(
    state: &AppState,
    org: &str,
    users: &[String],
) -> Result<Vec<PackageName>, ApiError> {
    let mut names = Vec::new();
    for user in users {
        for maintained in state.db().maintained_by(user).await? {
            let Ok(name) = PackageName::parse(&maintained.name) else {
                continue;
            };
            if name.scope() == Some(org) && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Takes `departed`, who have left the organisation, off the maintainers of its packages
/// `names`; where none would be left, `successor` (the owner who removed them) takes
/// their place, so that every package keeps someone who may govern it. The read rule
/// already ignores them there ([`crate::db::OrgStanding::Outsider`]); this keeps the
/// lists that `npm owner ls` and the packuments show true. A package that cannot be
/// rewritten (it kept changing, or the database failed) is logged and left.
pub async fn drop_from_maintainers(
    state: &AppState,
    names: Vec<PackageName>,
    departed: &[String],
    successor: &str,
) {
    for name in names {
        if let Err(error) = drop_from_one(state, &name, departed, successor).await {
            tracing::warn!(
                package = %name,
                error = %error.message(),
                "could not take departed members off the package's maintainers; they \
                 maintain nothing there all the same"
            );
        }
    }
}

async fn drop_from_one(
    state: &AppState,
    name: &PackageName,
    departed: &[String],
    successor: &str,
) -> Result<(), ApiError> {
    for _ in 0..3 {
        let Some(mut package) = access::load(state, name, None).await? else {
            return Ok(());
        };
        let Some(listed) = package.packument["maintainers"].as_array() else {
            return Ok(());
        };
        let mut kept: Vec<Value> = listed
            .iter()
            .filter(|entry| {
                !departed
                    .iter()
                    .any(|user| entry["name"].as_str() == Some(user.as_str()))
            })
            .cloned()
            .collect();
        if kept.len() == listed.len() {
            return Ok(());
        }
        if kept.is_empty() {
            kept.push(owners::maintainer_entry(state, successor).await?);
        }
        package.packument["maintainers"] = Value::Array(kept);
        match packages::save_changed(state, name, &mut package).await {
            Ok(()) => {
                tracing::info!(package = %name, maintainers = access::maintainer_names(&package.packument).join(", "), "departed members taken off the maintainers");
                return Ok(());
            }
            Err(error) if error.status() == axum::http::StatusCode::CONFLICT => continue,
            Err(error) => return Err(error),
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::CONFLICT,
        format!("{name} kept changing"),
    ))
}

fn owners(org: &Org) -> usize {
    org.members
        .values()
        .filter(|role| **role == Role::Owner)
        .count()
}

fn last_owner(org: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{org} would have no owner: make another member an owner first"
    ))
}
