//! What happens to a package after it is published: `npm dist-tag add|rm|ls`,
//! `npm deprecate` and `npm unpublish`. Each change is a write by a maintainer through a
//! token that may write the package (and, where the package or the account asks, a
//! second factor, which the gate checks before any of this runs).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokengate::Authenticated;

use crate::controllers::packages::access;
use crate::controllers::packages::{self, PackageName, valid_tag, valid_version};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// `GET /-/package/<name>/dist-tags`: `npm dist-tag ls`.
pub async fn tags(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let name = PackageName::parse(&name)?;
    let package = access::readable(&state, who.as_ref(), &name).await?;
    Ok(Json(package.packument["dist-tags"].clone()))
}

/// `PUT /-/package/<name>/dist-tags/<tag>` with the version as a JSON string:
/// `npm dist-tag add`.
pub async fn add_tag(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((name, tag)): Path<(String, String)>,
    JsonBody(version): JsonBody<String>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    if !valid_tag(&tag) {
        return Err(ApiError::bad_request(format!(
            "invalid dist-tag {:?}: use letters, digits, '-', '.' and '_', not a version",
            tag.chars().take(64).collect::<String>()
        )));
    }
    let _writing = state.write_lock().await;
    let mut package = access::tags_changeable(&state, &who, &name).await?;
    if package.packument["versions"].get(&version).is_none() {
        return Err(ApiError::not_found(format!(
            "{name} has no version {:?}",
            version.chars().take(64).collect::<String>()
        )));
    }
    package.packument["dist-tags"][&tag] = json!(version);
    packages::save_changed(&state, &name, &mut package).await?;
    Ok(Json(json!({ "ok": true })))
}

/// `DELETE /-/package/<name>/dist-tags/<tag>`: `npm dist-tag rm`. `latest` stays: a
/// package without it does not install.
pub async fn remove_tag(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((name, tag)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    if tag == "latest" {
        return Err(ApiError::bad_request("the latest tag cannot be removed"));
    }
    let _writing = state.write_lock().await;
    let mut package = access::tags_changeable(&state, &who, &name).await?;
    let removed = package.packument["dist-tags"]
        .as_object_mut()
        .and_then(|tags| tags.remove(&tag));
    if removed.is_none() {
        return Err(ApiError::not_found(format!(
            "{name} has no dist-tag {tag:?}"
        )));
    }
    packages::save_changed(&state, &name, &mut package).await?;
    Ok(Json(json!({ "ok": true })))
}

/// `PUT /<name>` with the packument and no attachment: `npm deprecate`. Only the
/// `deprecated` message of existing versions may change; anything else is refused.
pub async fn deprecate(
    state: &AppState,
    who: Authenticated,
    name: &PackageName,
    body: Value,
) -> Result<Response, ApiError> {
    let asked = body["versions"]
        .as_object()
        .ok_or_else(|| ApiError::bad_request("versions must be an object"))?;
    let _writing = state.write_lock().await;
    let mut package = access::changeable(state, &who, name).await?;
    let stored = package.packument["versions"]
        .as_object_mut()
        .ok_or_else(|| ApiError::internal("a stored package is damaged", "no versions"))?;
    let mut changes = Vec::new();
    for (version, manifest) in asked {
        let current = stored.get(version).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name} has no version {:?}",
                version.chars().take(64).collect::<String>()
            ))
        })?;
        if without_deprecation(manifest) != without_deprecation(current) {
            return Err(ApiError::bad_request(format!(
                "only the deprecation message of {name}@{version} can change this way"
            )));
        }
        match &manifest["deprecated"] {
            Value::Null => changes.push((version.clone(), None)),
            Value::String(message) if message.chars().count() <= 1024 => {
                changes.push((version.clone(), Some(message.clone())));
            }
            _ => return Err(ApiError::bad_request("deprecated is a message of text")),
        }
    }
    for (version, message) in changes {
        let manifest = &mut stored[&version];
        match message {
            Some(message) if !message.is_empty() => manifest["deprecated"] = json!(message),
            _ => {
                if let Some(manifest) = manifest.as_object_mut() {
                    manifest.remove("deprecated");
                }
            }
        }
    }
    packages::save_changed(state, name, &mut package).await?;
    Ok(Json(json!({ "ok": true })).into_response())
}

/// A manifest as compared for a deprecation: without its message and the fields this
/// registry fills in when serving.
fn without_deprecation(manifest: &Value) -> Value {
    let mut manifest = manifest.clone();
    if let Some(fields) = manifest.as_object_mut() {
        fields.remove("deprecated");
        fields.remove("dist");
    }
    manifest
}

/// `DELETE /<name>/-rev/<rev>`: `npm unpublish <name>` (every version).
pub async fn unpublish_all(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((name, _rev)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    let _writing = state.write_lock().await;
    let package = access::changeable(&state, &who, &name).await?;
    let tarballs = tarball_digests(&package.packument);
    state.db().delete_package(&name, package.revision).await?;
    // Its teams' access goes with it. Should that fail, a grant to a package that does
    // not exist gives nothing, and a new package of the name is kept from it when first
    // published (`packages::release`).
    if let Err(error) = crate::controllers::orgs::teams::take_from_every_team(&state, &name).await {
        tracing::warn!(package = %name, error = %error.message(), "could not take the unpublished package from its teams");
    }
    remove_unused(&state, tarballs).await?;
    tracing::info!(package = %name, user = who.owner(), "unpublished");
    Ok(StatusCode::OK)
}

/// `PUT /<name>/-rev/<rev>` with the packument less some versions: the first step of
/// `npm unpublish <name>@<version>`. Only removals are taken; the tarballs go in the next
/// step ([`remove_tarball`]).
pub async fn unpublish_versions(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    body: &Value,
) -> Result<Response, ApiError> {
    let kept = body["versions"]
        .as_object()
        .ok_or_else(|| ApiError::bad_request("versions must be an object"))?;
    let _writing = state.write_lock().await;
    let mut package = access::changeable(state, who, name).await?;
    // What the versions name before: the removed ones' tarballs go once the change is in.
    let before = tarball_digests(&package.packument);
    let stored = package.packument["versions"]
        .as_object_mut()
        .ok_or_else(|| ApiError::internal("a stored package is damaged", "no versions"))?;
    if let Some(extra) = kept.keys().find(|version| !stored.contains_key(*version)) {
        return Err(ApiError::bad_request(format!(
            "{name}@{} was never published here: publish it, do not add it this way",
            extra.chars().take(64).collect::<String>()
        )));
    }
    if kept.is_empty() {
        return Err(ApiError::bad_request(
            "to remove every version, unpublish the whole package",
        ));
    }
    let removed: Vec<String> = stored
        .keys()
        .filter(|version| !kept.contains_key(*version))
        .cloned()
        .collect();
    for version in &removed {
        stored.remove(version);
    }
    if let Some(time) = package.packument["time"].as_object_mut() {
        time.retain(|version, _| !removed.contains(version));
    }
    // Tags that pointed at a removed version go; `latest` moves to the newest left.
    if let Some(tags) = package.packument["dist-tags"].as_object_mut() {
        tags.retain(|_, version| !removed.iter().any(|r| version == r));
    }
    if package.packument["dist-tags"].get("latest").is_none() {
        let newest = body["dist-tags"]["latest"]
            .as_str()
            .filter(|v| kept.contains_key(*v))
            .map(str::to_owned)
            .or_else(|| kept.keys().next_back().cloned());
        package.packument["dist-tags"]["latest"] = json!(newest);
    }
    packages::save_changed(state, name, &mut package).await?;
    // The removed versions' tarballs go now; the `DELETE` npm sends next finds them gone.
    let kept = tarball_digests(&package.packument);
    remove_unused(
        state,
        before.into_iter().filter(|d| !kept.contains(d)).collect(),
    )
    .await?;
    tracing::info!(package = %name, user = who.owner(), versions = ?removed, "unpublished");
    Ok(Json(json!({ "ok": true })).into_response())
}

/// `DELETE /<name>/-/<file>/-rev/<rev>`: the last step of `npm unpublish
/// <name>@<version>`, removing a tarball whose version is gone from the packument.
pub async fn remove_tarball(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((name, file, _rev)): Path<(String, String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let name = PackageName::parse(&name)?;
    remove_tarball_of(&state, who, name, &file).await
}

pub async fn remove_tarball_scoped(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((scope, name, file, _rev)): Path<(String, String, String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let name = PackageName::parse(&format!("{scope}/{name}"))?;
    remove_tarball_of(&state, who, name, &file).await
}

async fn remove_tarball_of(
    state: &AppState,
    who: Option<Authenticated>,
    name: PackageName,
    file: &str,
) -> Result<StatusCode, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let _writing = state.write_lock().await;
    let package = access::changeable(state, &who, &name).await?;
    let still_published = package.packument["versions"]
        .as_object()
        .into_iter()
        .flat_map(Map::keys)
        .any(|version| valid_version(version) && name.tarball_name(version) == file);
    if still_published {
        return Err(ApiError::bad_request(
            "that version is still published: unpublish it first",
        ));
    }
    // Its bytes went when its version was unpublished (see [`unpublish_versions`]).
    Ok(StatusCode::OK)
}

/// The tarballs a packument's versions name.
fn tarball_digests(packument: &Value) -> Vec<crate::db::Digest> {
    packument["versions"]
        .as_object()
        .into_iter()
        .flat_map(Map::values)
        .filter_map(|manifest| manifest["dist"]["integrity"].as_str())
        .filter_map(crate::db::Digest::from_integrity)
        .collect()
}

/// Removes the tarballs among `digests` that no version of any package names any more.
async fn remove_unused(state: &AppState, digests: Vec<crate::db::Digest>) -> Result<(), ApiError> {
    for digest in digests {
        state
            .blobs()
            .remove_unused(&digest, || state.db().tarball_in_use(&digest))
            .await?;
    }
    Ok(())
}
