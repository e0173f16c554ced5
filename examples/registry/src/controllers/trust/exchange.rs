//! `POST /-/npm/v1/oidc/token/exchange/package/<name>`: a CI job's OIDC ID token for a
//! token that can publish one package, for 15 minutes.
//!
//! Outside the token gate (the bearer is the provider's ID token, not one of ours), behind
//! the gates' failure limit per client address. npm hides every failure of this step and
//! falls back to the configured token, logging the body's `message` at `--loglevel
//! verbose`: every refusal is `{"error": <code>, "message": <what to do>}`.
//!
//! A refusal never tells a package without trusted publishers, a package that does not
//! exist and a private one apart, and never shows a policy's contents: anyone can have a
//! CI provider sign an ID token for this registry's audience. It shows what the token
//! says instead, for its holder to compare with `npm trust list`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;
use tokengate::Resource;
use tokengate::oidc::{VerifiedIdToken, match_policies};

use super::{issuer_for, pin_to_json, policy_of};
use crate::controllers::packages::PackageName;
use crate::error::ApiError;
use crate::state::{AppState, ClientAddress};

/// How long a client is asked to wait when an issuer's keys cannot be fetched.
const ISSUER_RETRY_SECONDS: u32 = 30;

/// The exchange.
pub async fn exchange(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let failures = state.token_failures();
    if let Some(exhausted) = crate::security::failures_exhausted(failures, client) {
        return Err(exhausted.coded("too_many_failures"));
    }
    let refused = |error: ApiError| {
        failures.record(client);
        error
    };
    let id_tokens = state
        .id_tokens()
        .map_err(|off| ApiError::not_found(off.reason()).coded("trusted_publishing_off"))?;
    let name = PackageName::parse(&name).map_err(|e| {
        ApiError::bad_request(format!("invalid package name: {}", e.message()))
            .coded("invalid_package")
    })?;
    let Some(bearer) = bearer(&headers) else {
        return Err(refused(
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "send the CI provider's ID token as `Authorization: Bearer <token>`",
            )
            .coded("missing_id_token"),
        ));
    };
    let verified = match id_tokens.verify(bearer).await {
        Ok(verified) => verified,
        Err(error) if error.is_unavailable() => {
            tracing::warn!(%error, "trusted publishing: an ID token could not be checked");
            let mut refusal = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the ID token cannot be checked right now ({error}); try again shortly"),
            )
            .coded("issuer_unavailable");
            refusal.retry_after(HeaderValue::from(ISSUER_RETRY_SECONDS));
            return Err(refusal);
        }
        Err(error) => {
            return Err(refused(
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    format!("the ID token was refused: {error}"),
                )
                .coded("invalid_id_token"),
            ));
        }
    };
    let no_match = || {
        refused(
            ApiError::forbidden(format!(
                "no trusted publisher of {name} matches this ID token ({}); a maintainer \
                 sees and sets them with `npm trust list {name}` and `npm trust github|gitlab|circleci`",
                described(&verified)
            ))
            .coded("no_matching_publisher"),
        )
    };

    // No lock: pinning is one conditional write, and a publish checks the publisher's
    // maintainership again. A package that does not exist has no publishers.
    // Only the policies made for this very issuer: another issuer of the same provider
    // (a GitHub Enterprise Server the registry trusted once) never matches them.
    let issuer = issuer_for(id_tokens, verified.provider());
    let stored: Vec<_> = state
        .db()
        .trusted_publishers(&name)
        .await?
        .into_iter()
        .filter(|publisher| Some(&publisher.issuer) == issuer.as_ref())
        .filter_map(|publisher| policy_of(&publisher).map(|policy| (publisher, policy)))
        .collect();
    let Ok((index, matched)) = match_policies(stored.iter().map(|(_, policy)| policy), &verified)
    else {
        return Err(no_match());
    };
    let publisher = &stored[index].0;
    // The exchanged token publishes as the maintainer who set the publisher up: one who has
    // since left the package takes the publisher's say-so with them. (A package removed
    // since its publishers were read matches nothing.)
    let rule = state
        .db()
        .read_rule(&name, Some(&publisher.created_by))
        .await?
        .ok_or_else(no_match)?;
    if !rule.reader_maintains {
        return Err(refused(
            ApiError::forbidden(format!(
                "the trusted publisher that matches was added by {}, who no longer maintains \
                 {name}; a current maintainer must add it again (npm trust)",
                publisher.created_by
            ))
            .coded("publisher_owner_gone"),
        ));
    }
    if let Some(pin) = matched.pin() {
        let pinned = match pin_to_json(pin) {
            Some(pin) => {
                state
                    .db()
                    .pin_trusted_publisher(&name, &publisher.id, &pin)
                    .await?
            }
            None => false,
        };
        if !pinned {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "the trusted publisher changed while this exchange was answered; run the job again",
            )
            .coded("conflict"));
        }
    }
    let created = state
        .tokens()
        .exchange(
            &publisher.created_by,
            &Resource::new(name.to_string()),
            &verified,
            &matched,
        )
        .await
        .map_err(|error| match error {
            tokengate::TokensError::Exchange(refusal) => {
                ApiError::forbidden(refusal.to_string()).coded("not_allowed")
            }
            other => ApiError::from(other),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": created.token.expose_secret() })),
    ))
}

/// The bearer of `Authorization: Bearer <token>`. Not the library's
/// `Credentials::from_headers`: that caps the header at the length of the registry's own
/// tokens, and an ID token is a JWT of a kilobyte or more (the verifier caps it instead).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// What the token says about where it comes from, for its holder.
fn described(verified: &VerifiedIdToken) -> String {
    let provenance = verified.provenance();
    match provenance.workflow {
        Some(workflow) => format!("{}: {}, {workflow}", provenance.provider, provenance.source),
        None => format!("{}: {}", provenance.provider, provenance.source),
    }
}
