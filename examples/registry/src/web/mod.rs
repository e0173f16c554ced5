//! The registry's web pages: log in and out, the Tokens page, creating and revoking tokens,
//! the Packages page and each package's trusted publishers, and npm's browser login (`POST /-/v1/login`, then polling `doneUrl`).
//!
//! Server-rendered HTML (maud), no JavaScript but the copy button's. The session is a
//! session token in an `HttpOnly`, `SameSite=Strict` cookie that only `/-/web/` pages get;
//! the gate reads it ([`TokenAuthLayer::cookie_token`]) and refuses every write that does
//! not come from these pages. What a person types is kept on a form sent back with an
//! error, except passwords and one-time passwords, which never appear in a page.
//!
//! - [`layout`]: the page around every page (header, style, the script every page runs),
//!   the headers every page gets, message and refusal pages, and how times are shown;
//! - [`session`]: logging in (the password, then the one-time password with 2FA) and out,
//!   and the session cookie;
//! - [`tokens`]: the Tokens page, generating a token (and showing it once) and revoking one;
//! - [`packages`]: the Packages page, and each package's settings page, where its
//!   maintainers see, add and remove its trusted publishers;
//! - [`stages`]: the Staged releases page, approving and rejecting what `npm stage
//!   publish` staged;
//! - [`npm_login`]: npm's browser login;
//! - [`orgs`]: an organisation's page, for its members.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use tokengate::TokenAuthLayer;
use zeroize::Zeroizing;

use crate::controllers::users;
use crate::error::ApiError;
use crate::state::AppState;

mod layout;
mod npm_login;
mod orgs;
mod packages;
mod session;
mod stages;
mod tokens;

use layout::{redirect, refused_page};
use packages::packages_page;
use packages::settings::settings_page;
use session::{login, login_page, logout};
use tokens::created::created_page;
use tokens::new::{create, new_page};
use tokens::revoke::{revoke, revoke_page};
use tokens::tokens_page;

/// The session cookie's name.
pub const COOKIE: &str = "tg_session";
/// Where the pages live; the cookie is sent to nothing else.
const BASE: &str = "/-/web";
/// How long a new token waits to be shown (npm's browser logins: [`npm_login::TTL`]).
const ONE_SHOT_TTL: Duration = Duration::from_secs(600);
/// Most new tokens waiting to be shown at once.
const MAX_WAITING: usize = 1_000;

/// What the pages keep between requests, in memory.
#[derive(Default)]
pub struct WebState {
    /// New tokens waiting to be shown once, by a random key in the page's address.
    shown: Mutex<HashMap<String, ShownToken>>,
    /// npm browser logins, by the id in `loginUrl`.
    npm: npm_login::NpmLogins,
    /// Logins whose password was right and that wait for their one-time password, by a
    /// random key in the form: the second step does not ask for the password again.
    passed: Mutex<HashMap<String, PasswordPassed>>,
}

/// A login's first step, done.
struct PasswordPassed {
    /// Whose password was right, and the hash it was right for: a password changed in
    /// between is not this step's.
    checked: users::PasswordChecked,
    at: Instant,
}

/// How long a login's second step may wait for its code.
const SECOND_STEP_TTL: Duration = Duration::from_secs(5 * 60);

impl WebState {
    /// Remembers that `checked`'s password was right; the key for the form.
    fn passed(&self, checked: users::PasswordChecked) -> Result<String, ApiError> {
        let key = random_key()?;
        let mut passed = self
            .passed
            .lock()
            .map_err(|_| ApiError::internal("cannot log in", "a lock was poisoned"))?;
        passed.retain(|_, step| step.at.elapsed() < SECOND_STEP_TTL);
        if passed.len() >= MAX_WAITING {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many logins waiting for their code; try again shortly",
            ));
        }
        passed.insert(
            key.clone(),
            PasswordPassed {
                checked,
                at: Instant::now(),
            },
        );
        Ok(key)
    }

    /// The first step of `user`'s login under `key`, used up; `None` when there is none,
    /// it is someone else's, or it is too old.
    fn take_passed(&self, key: &str, user: &str) -> Option<users::PasswordChecked> {
        let step = self.passed.lock().ok()?.remove(key)?;
        (step.at.elapsed() < SECOND_STEP_TTL && step.checked.name() == user).then_some(step.checked)
    }
}

struct ShownToken {
    owner: String,
    token: Zeroizing<String>,
    id: String,
    name: String,
    at: Instant,
}

fn random_key() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("cannot make a random key", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Drops tokens that waited too long to be shown, and refuses to keep more than
/// [`MAX_WAITING`].
fn prune<T>(map: &mut HashMap<String, T>, at: impl Fn(&T) -> Instant) -> Result<(), ApiError> {
    map.retain(|_, value| at(value).elapsed() < ONE_SHOT_TTL);
    if map.len() >= MAX_WAITING {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many new tokens waiting to be shown; try again shortly",
        ));
    }
    Ok(())
}

/// The pages and npm's browser login, to merge into the registry's router.
pub fn router(state: &AppState) -> Router<AppState> {
    let web = Arc::new(WebState::default());
    let gate = TokenAuthLayer::new(state.tokens().clone())
        .cookie_token(COOKIE)
        .trusted_proxies(state.trusted_proxies().clone())
        // As on npm's routes: a client guessing sessions gets refusals, not store lookups.
        .limit_failures(tokengate::FailureLimit::new(50, Duration::from_secs(60)))
        .respond_with(|rejection, request| {
            refused_page(rejection.reason(), request.uri.path().starts_with(BASE))
        });
    let signed_in = Router::new()
        .route("/-/web/tokens", get(tokens_page))
        .route("/-/web/tokens/new", get(new_page).post(create))
        .route("/-/web/tokens/created/{key}", get(created_page))
        .route("/-/web/tokens/{id}/revoke", get(revoke_page).post(revoke))
        .route("/-/web/packages", get(packages_page))
        .route("/-/web/packages/{name}", get(settings_page))
        .route("/-/web/packages/{name}/trust", post(packages::trust::add))
        .route(
            "/-/web/packages/{name}/staging",
            post(packages::staging::set),
        )
        .route(
            "/-/web/packages/{name}/trust/{id}/remove",
            post(packages::trust::remove),
        )
        // Not under /-/web/orgs/, where every name is an organisation's.
        .route(
            "/-/web/new-organisation",
            get(orgs::new_org_page).post(orgs::create_org),
        )
        .route("/-/web/orgs/{org}", get(orgs::org_page))
        .route("/-/web/orgs/{org}/{action}", post(orgs::org_change))
        .route(
            "/-/web/orgs/{org}/members/remove",
            post(orgs::remove_member),
        )
        .route(
            "/-/web/orgs/{org}/teams/{team}/{action}",
            post(orgs::team_change),
        )
        .route("/-/web/stages", get(stages::stages_page))
        .route("/-/web/stages/{id}/approve", post(stages::approve))
        .route("/-/web/stages/{id}/reject", post(stages::reject))
        .route(
            "/-/web/stages/{id}/tarball",
            get(crate::controllers::stage::tarball),
        )
        .route("/-/web/logout", post(logout))
        .route_layer(gate);
    Router::new()
        .route("/-/web", get(|| async { redirect("/-/web/tokens") }))
        .route("/-/web/", get(|| async { redirect("/-/web/tokens") }))
        .route("/-/web/login", get(login_page).post(login))
        .route("/-/v1/login", post(npm_login::start))
        .route("/-/v1/done", get(npm_login::done))
        .merge(signed_in)
        .layer(Extension(web))
}
