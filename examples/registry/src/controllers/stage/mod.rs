//! Staged publishing (`npm stage`): a release is uploaded and checked as a publish is,
//! reserved and kept aside, shown to nobody but the package's maintainers, and made live
//! only when one of them approves it with their second factor (`decide`).
//!
//! - `POST /-/stage/package/<name>`: `npm stage publish`, answered `{"stageId"}`. A token
//!   that may stage the package (read-write, or stage-only) or a session; never a code.
//! - `GET /-/stage?page&perPage&package`: `npm stage list`, the stages of the packages the
//!   caller maintains, `{"items", "total"}`.
//! - `GET /-/stage/<id>` and `GET /-/stage/<id>/tarball`: `npm stage view|download`.
//! - `POST /-/stage/<id>/approve` and `DELETE /-/stage/<id>`: in [`decide`].
//! - `GET`/`PUT /-/package/<name>/staging`: whether every release must be staged, in
//!   [`rule`].

pub mod decide;
pub mod rule;

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokengate::{Action, Authenticated, Resource, TokenKind};

use crate::controllers::packages::{self, NewVersion, Outcome, PackageName};
use crate::db::{Digest, StageAdded, StageQuery, StoredStage};
use crate::error::ApiError;
use crate::json_body::JsonBytes;
use crate::query::KnownQuery;
use crate::state::AppState;

/// How long a stage waits for approval unless `--stage-expiry-seconds` says otherwise.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 86_400);

/// Most stages one page of `npm stage list` holds (npm asks for 100).
const MAX_PER_PAGE: u64 = 100;

/// What a request does, for the token gate: an upload to `/-/stage/package/…` stages
/// ([`Action::Stage`], which a stage-only grant allows); everything else is as its
/// method says (approving and rejecting are writes).
pub fn action_of(request: &tokengate::RequestHead<'_>) -> Action {
    match Action::of_method(request.method) {
        Action::Write
            if request.method == axum::http::Method::POST
                && request.uri.path().starts_with("/-/stage/package/") =>
        {
            Action::Stage
        }
        action => action,
    }
}

/// `POST /-/stage/package/<name>`: `npm stage publish`. The gate has already refused a
/// token that may not stage the package; the document goes through every check a
/// publish does, and no code is asked for (approving asks).
pub async fn upload(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(name): Path<String>,
    body: JsonBytes,
) -> Result<Response, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    who.check(Action::Stage, &Resource::new(name.to_string()))
        .map_err(|rejection| ApiError::forbidden(rejection.message()))?;
    let (access, checked, readme) = packages::read_release(&name, body).await?;
    packages::release(
        &state,
        &who,
        &name,
        access.as_deref(),
        checked,
        readme,
        Outcome::Stage,
    )
    .await
}

/// Keeps a checked release as a stage (its tarball is stored already); answers npm's
/// `{"stageId"}`.
pub async fn keep(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    release: NewVersion,
    digest: Digest,
) -> Result<Response, ApiError> {
    let now = millis(SystemTime::now());
    let expiry = i64::try_from(state.stage_expiry().as_millis()).unwrap_or(i64::MAX);
    let stage = StoredStage {
        id: crate::controllers::new_uuid()?,
        package: name.to_string(),
        version: release.version.clone(),
        tag: release
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| "latest".to_owned()),
        document: json!({
            "manifest": release.manifest,
            "tags": release.tags,
            "readme": release.readme,
        }),
        digest,
        actor: who.owner().to_owned(),
        actor_type: actor_type(who).to_owned(),
        created_at: now,
        expires_at: now.saturating_add(expiry),
    };
    match state.db().add_stage(&stage).await? {
        StageAdded::Added => {}
        StageAdded::Taken { id } => return Err(reserved(name, &stage.version, &id)),
        StageAdded::Published => {
            return Err(ApiError::forbidden(format!(
                "cannot stage the previously published version {}",
                stage.version
            )));
        }
        StageAdded::NoPackage => return Err(crate::controllers::packages::access::not_found(name)),
    }
    tracing::info!(
        package = %name,
        version = stage.version,
        user = who.owner(),
        stage = stage.id,
        "staged"
    );
    Ok((StatusCode::CREATED, Json(json!({ "stageId": stage.id }))).into_response())
}

/// Who staged: a person (their session or token), or a CI job through trusted publishing.
fn actor_type(who: &Authenticated) -> &'static str {
    if who.kind() == TokenKind::Exchanged {
        "trusted-publisher"
    } else {
        "user"
    }
}

/// The refusal of a publish or stage of a version that a stage holds.
pub fn reserved(name: &PackageName, version: &str, id: &str) -> ApiError {
    ApiError::forbidden(format!(
        "{name}@{version} is staged (stage {id}): approve it with `npm stage approve {id}` \
         or reject it with `npm stage reject {id}` first"
    ))
}

/// What `npm stage list` and `npm stage view` show of a stage.
fn item(stage: &StoredStage) -> Value {
    json!({
        "id": stage.id,
        "packageName": stage.package,
        "version": stage.version,
        "tag": stage.tag,
        "createdAt": iso(stage.created_at),
        "expiresAt": iso(stage.expires_at),
        "actor": stage.actor,
        "actorType": stage.actor_type,
        "shasum": stage.document["manifest"]["dist"]["shasum"],
        "integrity": stage.digest.integrity(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    page: Option<u64>,
    #[serde(rename = "perPage")]
    per_page: Option<u64>,
    package: Option<String>,
}

/// `GET /-/stage?page=N&perPage=M[&package=name]`: the live stages of the packages the
/// caller maintains (and their token may read), oldest first.
pub async fn list(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    KnownQuery(query): KnownQuery<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let per_page = query.per_page.unwrap_or(MAX_PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::bad_request(format!(
            "perPage must be 1 to {MAX_PER_PAGE}"
        )));
    }
    let package = query
        .package
        .as_deref()
        .map(PackageName::parse)
        .transpose()?
        .map(|name| name.to_string());
    let page = query.page.unwrap_or(0);
    let (stages, total) = state
        .db()
        .stages(&StageQuery {
            maintainer: who.owner(),
            package: package.as_deref(),
            now: millis(SystemTime::now()),
            offset: page.saturating_mul(per_page),
            limit: per_page,
        })
        .await?;
    // A token limited to some packages lists only those (the count is the maintainer's).
    let items: Vec<Value> = stages
        .iter()
        .filter(|stage| who.may(Action::Read, Some(&Resource::new(stage.package.clone()))))
        .map(item)
        .collect();
    Ok(Json(json!({ "items": items, "total": total })))
}

/// The stage `id`, for one of its package's maintainers whose token may read the package;
/// the same 404 for everyone else as for a stage that does not exist. An expired stage
/// is removed here (the sweep would remove it soon anyway) and answered 404 saying so.
pub async fn visible_stage(
    state: &AppState,
    who: &Authenticated,
    id: &str,
) -> Result<StoredStage, ApiError> {
    let missing = || {
        ApiError::not_found(format!(
            "no staged release {:?} (npm stage list shows them)",
            id.chars().take(64).collect::<String>()
        ))
    };
    let stage = state.db().stage(id).await?.ok_or_else(missing)?;
    let name = PackageName::parse(&stage.package)?;
    let maintains = crate::controllers::packages::access::load(state, &name, Some(who.owner()))
        .await?
        .is_some_and(|package| package.reader_maintains);
    if !maintains || !who.may(Action::Read, Some(&Resource::new(stage.package.clone()))) {
        return Err(missing());
    }
    if stage.expires_at <= millis(SystemTime::now()) {
        if let Some(gone) = state.db().remove_stage(&stage.id).await? {
            forget_tarball(state, &gone).await;
        }
        return Err(ApiError::not_found(format!(
            "the staged release {} of {}@{} expired at {} and was removed: stage it again",
            stage.id,
            stage.package,
            stage.version,
            iso(stage.expires_at)
        )));
    }
    Ok(stage)
}

/// `GET /-/stage/<id>`: `npm stage view`.
pub async fn view(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let stage = visible_stage(&state, &who, &id).await?;
    Ok(Json(item(&stage)))
}

/// `GET /-/stage/<id>/tarball`: `npm stage download`, for maintainers only.
pub async fn tarball(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let stage = visible_stage(&state, &who, &id).await?;
    packages::send_tarball(&state, &stage.digest).await
}

/// Removes a removed stage's tarball file, unless a version or another stage names the
/// same bytes. A failure leaves a file nobody names, which is only disk space.
pub async fn forget_tarball(state: &AppState, stage: &StoredStage) {
    let removed = state
        .blobs()
        .remove_unused(&stage.digest, || state.db().tarball_in_use(&stage.digest))
        .await;
    if let Err(error) = removed {
        tracing::warn!(%error, stage = stage.id, "cannot remove a staged tarball");
    }
}

/// Removes expired stages (and their tarballs) once a minute, for as long as the
/// registry runs.
pub fn sweep_expired(state: AppState) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            match state
                .db()
                .remove_expired_stages(millis(SystemTime::now()))
                .await
            {
                Ok(removed) => {
                    for stage in &removed {
                        tracing::info!(
                            package = stage.package,
                            version = stage.version,
                            stage = stage.id,
                            "staged release expired"
                        );
                        forget_tarball(&state, stage).await;
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot remove expired staged releases"),
            }
        }
    });
}

/// Milliseconds since the Unix epoch.
pub fn millis(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// RFC 3339, from milliseconds since the Unix epoch.
fn iso(millis: i64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(millis.max(0).unsigned_abs());
    humantime::format_rfc3339_millis(at).to_string()
}
