//! Approving and rejecting a stage: `POST /-/stage/<id>/approve` (`npm stage approve`) and
//! `DELETE /-/stage/<id>` (`npm stage reject`).
//!
//! Both are a person's decision: one of the package's maintainers, through a session or a
//! token that may write the package, with a one-time password when their account has
//! two-factor authentication. A stage-only token, one that bypasses the second factor,
//! and one from trusted publishing are refused, so that a stolen CI credential cannot
//! approve what it staged. Approve and reject of one stage race safely: the stage's row
//! goes in the same transaction as the publish, so exactly one of them wins.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokengate::{Action, Authenticated, Resource, SecondFactor};

use super::{forget_tarball, iso, visible_stage};
use crate::controllers::packages::access;
use crate::controllers::packages::{NewVersion, PackageName, add_version, next_rev, owners};
use crate::db::StoredStage;
use crate::error::ApiError;
use crate::state::{AppState, ClientAddress};

/// The stage `id`, if `who` may decide on it, with their second factor checked (and used
/// up). Call it under the registry's write lock.
async fn decidable(
    state: &AppState,
    who: &Authenticated,
    id: &str,
    code: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Result<StoredStage, ApiError> {
    crate::controllers::tokens::refuse_exchanged(who, "approve or reject a staged release")?;
    if who.second_factor() == SecondFactor::Bypassed {
        return Err(ApiError::forbidden(
            "a token that bypasses two-factor authentication cannot approve or reject a \
             staged release: the decision is a person's, with their one-time password (use \
             npm login, or a token without --bypass-2fa)",
        ));
    }
    let stage = visible_stage(state, who, id).await?;
    who.check(Action::Write, &Resource::new(stage.package.clone()))
        .map_err(|rejection| {
            ApiError::forbidden(format!(
                "{}; approving or rejecting a staged release needs a token that may publish \
                 {}",
                rejection.message(),
                stage.package
            ))
        })?;
    crate::tfa::verify_owners_code(state, who, code, client).await?;
    Ok(stage)
}

/// The answer when the stage went between the read and the write.
fn decided_meanwhile(stage: &StoredStage) -> ApiError {
    ApiError::not_found(format!(
        "the staged release {} was approved or rejected meanwhile",
        stage.id
    ))
}

/// `POST /-/stage/<id>/approve`: publishes exactly what was staged, as published now by
/// the approver (`_npmUser`), with who staged it kept in the version's `_stagedBy`.
pub async fn approve(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let stage = approve_stage(&state, &who, &id, crate::tfa::code_in(&headers), client).await?;
    Ok(Json(json!({
        "ok": true,
        "id": stage.id,
        "packageName": stage.package,
        "version": stage.version,
    })))
}

/// `DELETE /-/stage/<id>`: removes the stage and its tarball; the version is free again.
pub async fn reject(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    reject_stage(&state, &who, &id, crate::tfa::code_in(&headers), client).await?;
    Ok(Json(json!({ "ok": true })))
}

/// Approves the stage `id` for `who`, with their one-time password `code`: what the API
/// and the Staged releases page share. Returns the stage published.
pub async fn approve_stage(
    state: &AppState,
    who: &Authenticated,
    id: &str,
    code: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Result<StoredStage, ApiError> {
    let _writing = state.write_lock().await;
    let stage = decidable(state, who, id, code, client).await?;
    let name = PackageName::parse(&stage.package)?;
    let package = access::load(state, &name, None)
        .await?
        .ok_or_else(|| access::not_found(&name))?;
    let mut release = staged_release(&stage)?;
    release.manifest["_stagedBy"] = json!({
        "name": stage.actor,
        "type": stage.actor_type,
        "stageId": stage.id,
        "stagedAt": iso(stage.created_at),
    });
    let publisher = owners::maintainer_entry(state, who.owner()).await?;
    let mut packument = package.packument;
    add_version(&mut packument, &name, release, publisher)?;
    next_rev(&mut packument);
    if !state
        .db()
        .approve_stage(&stage.id, &name, &packument, package.revision)
        .await?
    {
        return Err(decided_meanwhile(&stage));
    }
    tracing::info!(
        package = %name,
        version = stage.version,
        approver = who.owner(),
        stager = stage.actor,
        stage = stage.id,
        "staged release approved and published"
    );
    Ok(stage)
}

/// Rejects the stage `id` for `who`, with their one-time password `code`. Returns the
/// stage removed.
pub async fn reject_stage(
    state: &AppState,
    who: &Authenticated,
    id: &str,
    code: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Result<StoredStage, ApiError> {
    let _writing = state.write_lock().await;
    let stage = decidable(state, who, id, code, client).await?;
    let Some(removed) = state.db().remove_stage(&stage.id).await? else {
        return Err(decided_meanwhile(&stage));
    };
    forget_tarball(state, &removed).await;
    tracing::info!(
        package = removed.package,
        version = removed.version,
        user = who.owner(),
        stage = removed.id,
        "staged release rejected"
    );
    Ok(removed)
}

/// The release a stage keeps, as it was checked at staging.
fn staged_release(stage: &StoredStage) -> Result<NewVersion, ApiError> {
    let damaged = || ApiError::internal("a staged release is damaged", &stage.id);
    let document = &stage.document;
    let tags = document["tags"]
        .as_array()
        .ok_or_else(damaged)?
        .iter()
        .map(|tag| tag.as_str().map(str::to_owned).ok_or_else(damaged))
        .collect::<Result<Vec<_>, _>>()?;
    let readme = match &document["readme"] {
        Value::Null => None,
        Value::Array(pair) => match pair.as_slice() {
            [Value::String(file), Value::String(text)] => Some((file.clone(), text.clone())),
            _ => return Err(damaged()),
        },
        _ => return Err(damaged()),
    };
    let manifest = document["manifest"].clone();
    if !manifest.is_object() {
        return Err(damaged());
    }
    Ok(NewVersion {
        version: stage.version.clone(),
        manifest,
        tags,
        readme,
    })
}
