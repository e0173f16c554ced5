//! Stars: `npm star` / `npm unstar` (a `PUT /<name>` with the packument's `users`) and
//! `npm stars [user]` (`/-/_view/starredByUser`). Starring is a write, held to the token
//! like any other; a user changes only their own star.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokengate::Authenticated;

use crate::controllers::packages::access;
use crate::controllers::packages::{self, PackageName};
use crate::error::ApiError;
use crate::query::KnownQuery;
use crate::state::AppState;

/// What `npm star` and `npm unstar` send.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarChange {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_rev")]
    _rev: Option<String>,
    users: Map<String, Value>,
}

pub async fn change(
    state: &AppState,
    who: Authenticated,
    name: &PackageName,
    change: StarChange,
) -> Result<Response, ApiError> {
    if change.id != name.to_string() {
        return Err(ApiError::bad_request(
            "the package name in the body does not match the one in the URL",
        ));
    }
    crate::controllers::tokens::refuse_exchanged(&who, "star packages")?;
    packages::check_write(&who, name)?;
    let _writing = state.write_lock().await;
    let mut package = access::readable(state, Some(&who), name).await?;
    let mut users = package.packument["users"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let me = who.owner();
    // Only the caller's own entry may differ from what is stored.
    let others_changed = change
        .users
        .iter()
        .filter(|(user, _)| user.as_str() != me)
        .any(|(user, starred)| users.get(user) != Some(starred))
        || users
            .keys()
            .any(|user| user != me && !change.users.contains_key(user));
    if others_changed {
        return Err(ApiError::forbidden(
            "you can star or unstar a package for yourself only",
        ));
    }
    match change.users.get(me) {
        Some(Value::Bool(true)) => {
            users.insert(me.to_owned(), Value::Bool(true));
        }
        None => {
            users.remove(me);
        }
        Some(_) => return Err(ApiError::bad_request("a star is `true`")),
    }
    package.packument["users"] = Value::Object(users);
    packages::save_changed(state, name, &mut package).await?;
    Ok(Json(json!({ "ok": true, "id": name.to_string() })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarredQuery {
    /// A JSON string: `"alice"`.
    key: String,
}

/// `GET /-/_view/starredByUser?key="<user>"`: the packages `user` starred that the caller
/// may see.
pub async fn starred_by(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    KnownQuery(query): KnownQuery<StarredQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let user: String = serde_json::from_str(&query.key)
        .map_err(|_| ApiError::bad_request("key must be a user name in quotes"))?;
    let mut rows = Vec::new();
    let reader = who.as_ref().map(Authenticated::owner);
    for name in state.db().starred_by(&user).await? {
        let Ok(name) = PackageName::parse(&name) else {
            continue;
        };
        let rule = state.db().read_rule(&name, reader).await?;
        if rule.is_some_and(|rule| access::rule_allows(rule, who.as_ref(), &name)) {
            rows.push(json!({ "key": user, "value": name.to_string() }));
        }
    }
    Ok(Json(json!({ "rows": rows })))
}
