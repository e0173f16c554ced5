//! The router and what the handlers share.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use serde::de::DeserializeOwned;
use tokengate::{TokenAuthLayer, Tokens};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::ApiError;
use crate::storage::Storage;
use crate::tfa::Sealer;
use crate::{owners, packages, profile, token_api, users, visibility, web};

/// Largest publish accepted (the tarball travels base64-encoded inside JSON).
const MAX_PUBLISH_BYTES: usize = 64 * 1024 * 1024;
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
    /// One writer at a time: user creation and publishes read, check, then write.
    writes: Mutex<()>,
}

impl Clone for AppState {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl AppState {
    pub fn new(tokens: Tokens, storage: Storage, sealer: Sealer) -> Self {
        Self {
            shared: Arc::new(Shared {
                tokens,
                storage,
                sealer,
                writes: Mutex::new(()),
            }),
        }
    }

    pub fn tokens(&self) -> &Tokens {
        &self.shared.tokens
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

pub fn router(state: AppState) -> Router {
    // Logging in is authenticated by the password, so it sits outside the token gate: a
    // stale token in the user's npm config must not stop them logging in again.
    // Logging out proves itself with the whole token in the path; it too sits outside.
    let login = Router::new()
        .route("/-/user/{couch_id}", put(users::login))
        .route("/-/user/token/{token}", delete(users::logout));

    // Everything else: reads are anonymous, anything with a token is held to its rules.
    let layer = TokenAuthLayer::new(state.tokens().clone())
        .optional()
        .resources(packages::resource_of)
        .second_factor({
            let state = state.clone();
            move |request| crate::tfa::package_writes(state.clone(), request)
        })
        .npm_responses("registry");
    let gated = Router::new()
        .route("/-/whoami", get(users::whoami))
        .route("/-/npm/v1/user", get(profile::get).post(profile::set))
        .route("/-/user/{couch_id}", get(owners::user_profile))
        .route("/-/user/{user}/package", get(visibility::user_packages))
        .route("/-/org/{org}/package", get(visibility::org_packages))
        .route(
            "/-/package/{name}/visibility",
            get(visibility::get_visibility),
        )
        .route("/-/package/{name}/access", post(visibility::set_access))
        .route(
            "/-/package/{name}/collaborators",
            get(visibility::collaborators),
        )
        .route("/{name}/-rev/{rev}", put(owners::change))
        .route(
            "/-/npm/v1/tokens",
            get(token_api::list).post(token_api::create),
        )
        .route("/-/npm/v1/tokens/token/{key}", delete(token_api::revoke))
        .route(
            "/{name}",
            get(packages::packument)
                .put(packages::publish)
                .layer(DefaultBodyLimit::max(MAX_PUBLISH_BYTES)),
        )
        .route(
            "/{scope}/{name}",
            get(packages::packument_scoped)
                .put(packages::publish_scoped)
                .layer(DefaultBodyLimit::max(MAX_PUBLISH_BYTES)),
        )
        .route("/{name}/-/{file}", get(packages::tarball))
        .route("/{scope}/{name}/-/{file}", get(packages::tarball_scoped))
        .layer(layer);

    Router::new()
        .merge(login)
        .merge(gated)
        // The web pages and npm's browser login, with a gate of their own (web.rs).
        .merge(web::router(state.clone()))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
