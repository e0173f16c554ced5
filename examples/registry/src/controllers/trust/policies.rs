//! `npm trust github|gitlab|circleci`, `npm trust list` and `npm trust revoke`:
//! `POST`/`GET /-/package/<name>/trust` and `DELETE /-/package/<name>/trust/<id>`.
//!
//! Only the package's maintainers manage its trusted publishers, through a token that may
//! write the package (never one that trusted publishing minted), and with a one-time
//! password when their account has two-factor authentication: every one of the three, as
//! npm asks for one, since the list tells which workflows can publish.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;
use tokengate::Authenticated;
use tokengate::oidc::TrustPolicy;

use super::publishers::{self, Added, Refused};
use super::{MAX_PUBLISHERS, listed};
use crate::controllers::packages::PackageName;
use crate::controllers::packages::access::{Outsiders, Package};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// The package, for managing its trusted publishers, with the code in npm's `npm-otp`
/// header. Call it under the registry's write lock.
async fn managed(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    headers: &HeaderMap,
) -> Result<Package, ApiError> {
    let code = crate::tfa::code_in(headers);
    publishers::managed(state, who, name, code, Outsiders::Forbidden).await
}

/// A refusal as `npm trust` shows it, about `which` publisher of the request.
fn for_cli(refused: Refused, which: &str) -> ApiError {
    ApiError::bad_request(match refused {
        Refused::Off(off) => off.reason().to_owned(),
        Refused::Untrusted(provider) => format!(
            "{which}: this registry does not trust {provider}'s ID tokens (its operator \
             turned them off with --oidc-issuer {}=off)",
            provider.as_str()
        ),
    })
}

/// `GET /-/package/<name>/trust`: `npm trust list`.
pub async fn list(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    let _writing = state.write_lock().await;
    managed(&state, &who, &name, &headers).await?;
    let publishers = state.db().trusted_publishers(&name).await?;
    Ok(Json(publishers.iter().map(listed).collect::<Vec<_>>()))
}

/// `POST /-/package/<name>/trust`: `npm trust github|gitlab|circleci`, a JSON array of
/// policies in npm's shape, added all or none. Answers them as `npm trust list` would.
pub async fn create(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    let id_tokens = publishers::enabled(&state).map_err(|refused| for_cli(refused, ""))?;
    let items = body.as_array().ok_or_else(|| {
        ApiError::bad_request(
            "invalid request body: a JSON array of trusted publishers, as `npm trust` sends",
        )
    })?;
    if items.is_empty() || items.len() > MAX_PUBLISHERS {
        return Err(ApiError::bad_request(format!(
            "invalid request body: 1 to {MAX_PUBLISHERS} trusted publishers at once"
        )));
    }
    // Everything about the body before the second factor is asked for.
    let mut policies = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let which = if items.len() == 1 {
            "the trusted publisher".to_owned()
        } else {
            format!("trusted publisher {} of {}", n + 1, items.len())
        };
        let policy = TrustPolicy::from_npm(item)
            .map_err(|e| ApiError::bad_request(format!("{which}: {e}")))?;
        policies.push(publishers::admit(id_tokens, &policy).map_err(|r| for_cli(r, &which))?);
    }
    let _writing = state.write_lock().await;
    managed(&state, &who, &name, &headers).await?;
    match publishers::add(&state, &who, &name, policies).await? {
        Added::Added(publishers) => Ok((
            StatusCode::CREATED,
            Json(publishers.iter().map(listed).collect::<Vec<_>>()),
        )),
        Added::TooMany { existing } => Err(ApiError::bad_request(format!(
            "{name} has {existing} trusted publishers; a package has at most \
             {MAX_PUBLISHERS} (remove one with npm trust revoke)"
        ))),
    }
}

/// `DELETE /-/package/<name>/trust/<id>`: `npm trust revoke --id <id>`.
pub async fn revoke(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    let _writing = state.write_lock().await;
    managed(&state, &who, &name, &headers).await?;
    if state.db().remove_trusted_publisher(&name, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "{name} has no trusted publisher {:?} (npm trust list {name} shows their ids)",
            id.chars().take(64).collect::<String>()
        )))
    }
}
