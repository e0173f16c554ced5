//! Maintainers: `npm owner ls|add|rm`, and the user lookup `npm owner add` makes first.
//! Maintainers may read and publish a package; only a maintainer changes the list. In an
//! organisation's scope only its members are maintainers.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tokengate::Authenticated;

use crate::controllers::packages::access;
use crate::controllers::packages::{self, PackageName};
use crate::controllers::users;
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// A maintainer as packuments list them: name and email.
pub async fn maintainer_entry(state: &AppState, user: &str) -> Result<Value, ApiError> {
    let email = users::load(state, user).await?.and_then(|u| u.email);
    Ok(json!({ "name": user, "email": email }))
}

/// `GET /-/user/org.couchdb.user:<name>`: what `npm owner add` looks a user up by.
pub async fn user_profile(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(couch_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.ok_or_else(ApiError::needs_login)?;
    let name = couch_id
        .strip_prefix("org.couchdb.user:")
        .ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    let user = users::load(&state, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named {name:?}")))?;
    Ok(Json(json!({ "name": user.name, "email": user.email })))
}

/// What `npm owner add|rm` sends: the whole new list.
#[derive(Deserialize)]
pub struct OwnersChange {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_rev")]
    rev: String,
    maintainers: Vec<Maintainer>,
}

#[derive(Deserialize)]
struct Maintainer {
    name: String,
}

/// `PUT /<name>/-rev/<rev>`: a new list of maintainers, from a maintainer whose token may
/// write the package. Removing someone takes reading and publishing away at once.
pub async fn change(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((name, path_rev)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<axum::response::Response, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    // The same address takes `npm unpublish <name>@<version>`'s packument.
    if body.get("versions").is_some() {
        return crate::controllers::packages::lifecycle::unpublish_versions(
            &state, &who, &name, &body,
        )
        .await;
    }
    let change: OwnersChange = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    if change.id != name.to_string() {
        return Err(ApiError::bad_request(
            "the package name in the body does not match the one in the URL",
        ));
    }
    let _writing = state.write_lock().await;
    let mut package = access::changeable(&state, &who, &name).await?;
    if change.maintainers.is_empty() {
        return Err(ApiError::bad_request(
            "a package needs at least one maintainer",
        ));
    }
    // In an organisation's scope only its members maintain: someone else would count for
    // nothing (and someone who leaves is taken off).
    let org = match name.scope() {
        Some(scope) => state.db().org(scope).await?,
        None => None,
    };
    let mut entries = Vec::new();
    for maintainer in &change.maintainers {
        if users::load(&state, &maintainer.name).await?.is_none() {
            return Err(ApiError::bad_request(format!(
                "no user named {:?}",
                maintainer.name.chars().take(64).collect::<String>()
            )));
        }
        let listed = package.maintainers().contains(&maintainer.name.as_str());
        if let Some(org) = org
            .as_ref()
            .filter(|org| !listed && org.role_of(&maintainer.name).is_none())
        {
            return Err(ApiError::bad_request(format!(
                "{user} is not a member of the organisation {org}, and only its members \
                 maintain @{org}/ packages: an owner adds them first (npm org set {org} {user})",
                user = maintainer.name,
                org = org.name
            )));
        }
        if !entries
            .iter()
            .any(|e: &Value| e["name"] == maintainer.name.as_str())
        {
            entries.push(maintainer_entry(&state, &maintainer.name).await?);
        }
    }
    // npm sends the list it read with the revision it read: a list read before someone
    // else's change must not be written over it (it would bring back a removed owner).
    let current = package.packument["_rev"].as_str().unwrap_or_default();
    if change.rev != current || path_rev != current {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!(
                "{name} changed since its owners were read (revision {:?}, now {current:?}): \
                 run the command again",
                change.rev.chars().take(64).collect::<String>()
            ),
        ));
    }
    let before: Vec<String> = package
        .maintainers()
        .into_iter()
        .map(str::to_owned)
        .collect();
    package.packument["maintainers"] = Value::Array(entries);
    packages::save_changed(&state, &name, &mut package).await?;
    let mut changed: Vec<&str> = before.iter().map(String::as_str).collect();
    changed.extend(package.maintainers());
    crate::controllers::orgs::package_rights_changed(&state, &name, &changed).await;
    let names = access::maintainer_names(&package.packument).join(", ");
    tracing::info!(package = %name, user = who.owner(), maintainers = names, "owners changed");
    Ok(Json(json!({ "ok": true, "id": name.to_string() })).into_response())
}
