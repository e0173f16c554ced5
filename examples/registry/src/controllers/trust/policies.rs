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

use super::{MAX_PUBLISHERS, issuer_for, listed};
use crate::controllers::packages::PackageName;
use crate::controllers::packages::access::{self, Package};
use crate::db::{PublishersAdded, StoredPublisher};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// The package, for managing its trusted publishers, with `who`'s second factor checked
/// (and used up). Call it under the registry's write lock.
async fn managed(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    headers: &HeaderMap,
) -> Result<Package, ApiError> {
    let package = access::changeable(state, who, name).await?;
    crate::tfa::check_owners_code(state, who, headers, None).await?;
    Ok(package)
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
    let id_tokens = state.id_tokens().ok_or_else(|| {
        ApiError::bad_request(
            "trusted publishing is not enabled on this registry: its operator turns it on \
             with --oidc-issuer",
        )
    })?;
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
        let issuer = issuer_for(id_tokens, policy.provider()).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{which}: this registry does not trust {}'s ID tokens; its operator can add \
                 --oidc-issuer {}",
                policy.provider(),
                policy.provider().as_str()
            ))
        })?;
        // Stored as read back: npm's shape, normalised, without an id of the client's.
        policies.push((policy.to_npm(), issuer));
    }
    let _writing = state.write_lock().await;
    managed(&state, &who, &name, &headers).await?;
    let created = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let publishers = policies
        .into_iter()
        .map(|(policy, issuer)| {
            Ok(StoredPublisher {
                id: crate::controllers::new_uuid()?,
                issuer,
                policy,
                pin: None,
                created_by: who.owner().to_owned(),
                created: created.clone(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    match state
        .db()
        .add_trusted_publishers(&name, &publishers, MAX_PUBLISHERS)
        .await?
    {
        PublishersAdded::Added => Ok((
            StatusCode::CREATED,
            Json(publishers.iter().map(listed).collect::<Vec<_>>()),
        )),
        PublishersAdded::TooMany { existing } => Err(ApiError::bad_request(format!(
            "{name} has {existing} trusted publishers; a package has at most \
             {MAX_PUBLISHERS} (remove one with npm trust revoke)"
        ))),
        PublishersAdded::NoPackage => Err(access::not_found(&name)),
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
