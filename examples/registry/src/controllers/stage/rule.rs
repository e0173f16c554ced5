//! A package's staging rule: `GET`/`PUT /-/package/<name>/staging` with
//! `{"required": true|false}`. While it is required, every release of the package goes
//! through `npm stage publish` and a maintainer's approval: a direct `npm publish` (a
//! trusted publisher's included) is refused, saying so. npm's CLI has no command for it
//! (`npm access set` takes only `status` and `mfa`); the settings are curl's, or the API's.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tokengate::Authenticated;

use crate::controllers::packages::PackageName;
use crate::controllers::packages::access::{self, Outsiders};
use crate::error::{ApiError, JsonBody};
use crate::state::{AppState, ClientAddress};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagingRule {
    required: bool,
}

/// `GET /-/package/<name>/staging`: whether every release must be staged; for whoever may
/// read the package.
pub async fn get(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let name = PackageName::parse(&name)?;
    access::readable(&state, who.as_ref(), &name).await?;
    let required = state.db().requires_staging(&name).await?;
    Ok(Json(json!({ "required": required })))
}

/// `PUT /-/package/<name>/staging`: a maintainer, through a token that may write the
/// package (never a trusted publisher's), with their code under 2FA.
pub async fn set(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(name): Path<String>,
    JsonBody(rule): JsonBody<StagingRule>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    let code = crate::tfa::code_in(&headers);
    set_rule(
        &state,
        &who,
        &name,
        rule.required,
        code,
        client,
        Outsiders::Forbidden,
    )
    .await?;
    Ok(Json(json!({ "required": rule.required })))
}

/// Sets `name`'s staging rule for `who`: a maintainer (others answered as `outsiders`
/// says), with their one-time password `code` under 2FA. What the API and the package's
/// settings page share.
pub async fn set_rule(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    required: bool,
    code: Option<&str>,
    client: Option<std::net::IpAddr>,
    outsiders: Outsiders,
) -> Result<(), ApiError> {
    let _writing = state.write_lock().await;
    access::changeable_as(state, who, name, outsiders).await?;
    crate::tfa::verify_owners_code(state, who, code, client).await?;
    if !state.db().set_requires_staging(name, required).await? {
        return Err(access::not_found(name));
    }
    tracing::info!(package = %name, required, user = who.owner(), "staging rule set");
    Ok(())
}

/// Refuses a direct publish of a package whose releases must be staged.
pub async fn check_direct_publish(state: &AppState, name: &PackageName) -> Result<(), ApiError> {
    if state.db().requires_staging(name).await? {
        return Err(ApiError::forbidden(format!(
            "{name} requires every release to be staged: stage it with `npm stage publish`, \
             and have a maintainer approve it with `npm stage approve <id>`"
        )));
    }
    Ok(())
}
