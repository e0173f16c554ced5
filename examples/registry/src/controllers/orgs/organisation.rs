//! The organisation itself, beyond its members and teams: its settings (`GET` and `PATCH
//! /-/org/<org>`, read by members and changed by admins and owners) and its removal
//! (`DELETE /-/org/<org>`, by owners, once no package is left in its scope). npm does
//! these on its website; these calls are the registry's own, and the organisation's page
//! makes them too.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tokengate::Authenticated;

use super::{change, may_change, readable, tell};
use crate::db::{NewPackageAccess, Org, OrgRemoval, Role};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// `GET /-/org/<org>`: its name, when it was made, how many members and teams it has, and
/// its settings. Members only.
pub async fn show(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(org): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let org = readable(&state, who, &org).await?;
    Ok(Json(summary(&org)))
}

fn summary(org: &Org) -> Value {
    json!({
        "name": org.name,
        "created": org.created,
        "members": org.members.len(),
        "teams": org.teams.len(),
        "developers_on_new_packages": org.developers_on_new_packages.as_str(),
    })
}

/// What `PATCH /-/org/<org>` may change; every field is optional, and a field the
/// registry does not know is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `read-write` (npm's default), `read-only` or `none`.
    developers_on_new_packages: Option<String>,
}

/// `PATCH /-/org/<org>`: changes its settings (admins and owners, a code with 2FA).
pub async fn update(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(org): Path<String>,
    JsonBody(body): JsonBody<Settings>,
) -> Result<impl IntoResponse, ApiError> {
    let Some(text) = body.developers_on_new_packages else {
        return Err(ApiError::bad_request(
            "nothing to change: send developers_on_new_packages",
        ));
    };
    let choice = parse_new_package_access(&text)?;
    let changed =
        set_new_package_access(&state, who, crate::tfa::code_in(&headers), &org, choice).await?;
    Ok(Json(summary(&changed)))
}

/// The choice `text` names, or a 400 listing the choices.
pub fn parse_new_package_access(text: &str) -> Result<NewPackageAccess, ApiError> {
    NewPackageAccess::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "developers_on_new_packages {:?} is not one of read-write, read-only, none",
            text.chars().take(32).collect::<String>()
        ))
    })
}

/// Sets what `developers` gets on each new package (for the API and the web page). Only
/// packages started from now on are given it: a team's access to existing ones is
/// changed with `npm access`.
pub async fn set_new_package_access(
    state: &AppState,
    who: Option<Authenticated>,
    code: Option<&str>,
    org: &str,
    choice: NewPackageAccess,
) -> Result<Org, ApiError> {
    change(state, who, code, org, Role::Admin, |org, _| {
        org.developers_on_new_packages = choice;
        Ok(())
    })
    .await
}

/// `DELETE /-/org/<org>`: removes the organisation, its teams and their access (owners, a
/// code with 2FA), once no package is left in `@org`: a 409 says how many are.
pub async fn remove(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    delete(&state, who, crate::tfa::code_in(&headers), &org).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes `org` for `who` (for the API and the web page); its members' tokens lose what
/// it gave them on their next request, and its name is free again.
pub async fn delete(
    state: &AppState,
    who: Option<Authenticated>,
    code: Option<&str>,
    org: &str,
) -> Result<(), ApiError> {
    // Under the write lock, as publishes are: a first publish into the scope, which
    // records no owner of its own, lands before the removal (which then refuses) or after.
    let _writing = state.write_lock().await;
    let (current, _, who) = may_change(state, who, code, org, Role::Owner).await?;
    let removed = state.db().remove_org(&current).await.map_err(|error| {
        if error.is_conflict() {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("{org} changed while it was being removed: look at it again, then retry"),
            )
        } else {
            error.into()
        }
    })?;
    match removed {
        OrgRemoval::Removed => {}
        OrgRemoval::HasPackages(count) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "{org} cannot be removed while @{org} has packages ({count}): unpublish \
                     them first (`npm unpublish @{org}/<name> --force`)"
                ),
            ));
        }
    }
    tell(state, current.members.keys().cloned().collect()).await;
    tracing::info!(org, user = who.owner(), "organisation removed");
    Ok(())
}
