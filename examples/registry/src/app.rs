//! The router and what the handlers share.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use serde::de::DeserializeOwned;
use tokengate::{TokenAuthLayer, Tokens, TrustedProxies};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::ApiError;
use crate::storage::Storage;
use crate::tfa::Sealer;
use crate::{
    lifecycle, owners, packages, profile, search, stars, token_api, users, visibility, web,
};

/// Largest body of any other request.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    tokens: Tokens,
    storage: Storage,
    /// Seals two-factor secrets at rest.
    sealer: Sealer,
    /// Runs password checks a few at a time, and stops guessers.
    passwords: crate::passwords::PasswordGuard,
    /// Stops guessers of one-time passwords.
    wrong_codes: crate::tfa::WrongCodes,
    /// One writer at a time: user creation and publishes read, check, then write.
    writes: Mutex<()>,
    /// Whose `X-Forwarded-For` names the client.
    trusted_proxies: TrustedProxies,
    /// Failed authentications per client address: the gates' and logout's.
    token_failures: tokengate::FailureLimit,
    /// Searches take turns.
    search_turns: crate::search::SearchTurns,
}

impl Clone for AppState {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl AppState {
    pub fn new(
        tokens: Tokens,
        storage: Storage,
        sealer: Sealer,
        trusted_proxies: TrustedProxies,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                tokens,
                storage,
                sealer,
                passwords: Default::default(),
                // A client guessing tokens gets 429 after 50 misses a minute, not 50 store
                // lookups.
                search_turns: Default::default(),
                token_failures: tokengate::FailureLimit::new(
                    50,
                    std::time::Duration::from_secs(60),
                ),
                wrong_codes: Default::default(),
                writes: Mutex::new(()),
                trusted_proxies,
            }),
        }
    }

    pub fn tokens(&self) -> &Tokens {
        &self.shared.tokens
    }

    pub fn passwords(&self) -> &crate::passwords::PasswordGuard {
        &self.shared.passwords
    }

    pub fn wrong_codes(&self) -> &crate::tfa::WrongCodes {
        &self.shared.wrong_codes
    }

    pub fn sealer(&self) -> &Sealer {
        &self.shared.sealer
    }

    pub fn storage(&self) -> &Storage {
        &self.shared.storage
    }

    pub async fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.shared.writes.lock().await
    }

    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.shared.trusted_proxies
    }

    pub fn search_turns(&self) -> &crate::search::SearchTurns {
        &self.shared.search_turns
    }

    pub fn token_failures(&self) -> &tokengate::FailureLimit {
        &self.shared.token_failures
    }

    /// A stored JSON document (`what` names it in errors), or `None` if there is none.
    pub async fn load_json<T: DeserializeOwned>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, ApiError> {
        let Some(bytes) = self
            .storage()
            .read(key)
            .await
            .map_err(|e| ApiError::internal(&format!("cannot read the {what}"), e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ApiError::internal(&format!("a stored {what} is damaged"), e))
    }
}

/// The client's address as far as the registry can tell: the connection's peer, or the
/// address a trusted proxy forwarded (`--trusted-proxy`). What failed-password limits
/// count against; `None` only for a request that came through no connection.
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = tokengate::peer_addr(&parts.extensions);
        Ok(Self(
            state.trusted_proxies().client_ip(peer, &parts.headers),
        ))
    }
}

/// Refuses a write to a package before its body is read: anonymous ones with 401, and
/// ones that declare a body over `max_bytes` with 413, so that nobody makes the server
/// parse megabytes only to be told to log in. (The token gate, in front, has already
/// refused read-only tokens and tokens without a grant on the package.)
async fn bounded_package_write(
    max_bytes: usize,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if tokengate::Action::of_method(request.method()) == tokengate::Action::Read {
        return next.run(request).await;
    }
    if request
        .extensions()
        .get::<tokengate::Authenticated>()
        .is_none()
    {
        return ApiError::needs_login().into_response();
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes as u64) {
        return too_large(max_bytes).into_response();
    }
    let mut request = request;
    request
        .extensions_mut()
        .insert(crate::json_body::BodyLimit(max_bytes));
    next.run(request).await
}

fn too_large(max_bytes: usize) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the publish is larger than this registry accepts ({} MiB; see --max-publish-mb)",
            max_bytes / (1024 * 1024)
        ),
    )
}

pub fn router(state: AppState, max_publish_bytes: usize) -> Router {
    let bounded = axum::middleware::from_fn(move |request, next| {
        bounded_package_write(max_publish_bytes, request, next)
    });
    // Logging in is authenticated by the password, so it sits outside the token gate: a
    // stale token in the user's npm config must not stop them logging in again.
    // Logging out proves itself with the whole token in the path; it too sits outside.
    let login = Router::new()
        .route("/-/user/{couch_id}", put(users::login))
        .route("/-/user/token/{token}", delete(users::logout));

    // Everything else: reads are anonymous, anything with a token is held to its rules.
    // Two gates with one failure count: package writes get the second-factor check in
    // the gate, where it fails closed; the rest check codes in their handlers (account
    // changes, and `PUT /<name>`, whose body says whether it is a publish or a star).
    let gate = || {
        TokenAuthLayer::new(state.tokens().clone())
            .optional()
            .trusted_proxies(state.trusted_proxies().clone())
            .limit_failures(state.token_failures().clone())
            .resources(packages::resource_of)
            .npm_responses("registry")
    };
    let package_gate = gate().second_factor({
        let state = state.clone();
        move |request| crate::tfa::package_writes(state.clone(), request)
    });
    let package_routes = Router::new()
        .route(
            "/-/package/{name}/visibility",
            get(visibility::get_visibility),
        )
        .route("/-/package/{name}/access", post(visibility::set_access))
        .route(
            "/-/package/{name}/collaborators",
            get(visibility::collaborators),
        )
        .route(
            "/{name}/-rev/{rev}",
            put(owners::change).delete(lifecycle::unpublish_all),
        )
        .route(
            "/{name}/-/{file}/-rev/{rev}",
            delete(lifecycle::remove_tarball),
        )
        .route(
            "/{scope}/{name}/-/{file}/-rev/{rev}",
            delete(lifecycle::remove_tarball_scoped),
        )
        .route("/-/package/{name}/dist-tags", get(lifecycle::tags))
        .route(
            "/-/package/{name}/dist-tags/{tag}",
            put(lifecycle::add_tag).delete(lifecycle::remove_tag),
        )
        .route("/{name}/-/{file}", get(packages::tarball))
        .route("/{scope}/{name}/-/{file}", get(packages::tarball_scoped))
        .layer(package_gate);
    let other_routes = Router::new()
        .route("/-/whoami", get(users::whoami))
        .route(
            "/-/ping",
            get(|| async { axum::Json(serde_json::json!({})) }),
        )
        .route("/-/v1/search", get(search::search))
        .route("/-/_view/starredByUser", get(stars::starred_by))
        .route("/-/npm/v1/user", get(profile::get).post(profile::set))
        .route("/-/user/{couch_id}", get(owners::user_profile))
        .route("/-/user/{user}/package", get(visibility::user_packages))
        .route("/-/org/{org}/package", get(visibility::org_packages))
        .route(
            "/-/npm/v1/tokens",
            get(token_api::list).post(token_api::create),
        )
        .route("/-/npm/v1/tokens/token/{key}", delete(token_api::revoke))
        .route(
            "/{name}",
            get(packages::packument)
                .put(packages::put)
                .layer(DefaultBodyLimit::max(max_publish_bytes))
                .route_layer(bounded.clone()),
        )
        .route(
            "/{scope}/{name}",
            get(packages::packument_scoped)
                .put(packages::put_scoped)
                .layer(DefaultBodyLimit::max(max_publish_bytes))
                .route_layer(bounded),
        )
        .layer(gate());
    let gated = package_routes.merge(other_routes);

    Router::new()
        .merge(login)
        .merge(gated)
        // The web pages and npm's browser login, with a gate of their own (web.rs).
        .merge(web::router(&state))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
