//! Accounts: `npm adduser` / `npm login` (CouchDB-style), `npm whoami`, `npm logout`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use tokengate::{Authenticated, NewToken};
use tokio::sync::MutexGuard;

use crate::error::{ApiError, JsonBody};
use crate::security::passwords::Standing;
use crate::state::{AppState, ClientAddress};

pub use crate::db::User;

/// Lengths of the passwords accounts may have, in bytes.
const PASSWORD_LENGTHS: std::ops::RangeInclusive<usize> = 8..=1024;

/// Refuses a new password outside [`PASSWORD_LENGTHS`].
pub fn check_new_password(password: &str) -> Result<(), ApiError> {
    if PASSWORD_LENGTHS.contains(&password.len()) {
        Ok(())
    } else {
        Err(ApiError::bad_request("passwords have 8 to 1024 characters"))
    }
}

/// A password found right, before any lock is taken: Argon2 is slow on purpose, and a
/// crowd of guessers must not hold up everyone else's writes.
#[derive(Clone)]
pub struct PasswordChecked {
    name: String,
    hash: String,
}

impl PasswordChecked {
    /// Whose password was checked.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A user whose password was checked, reloaded under the registry's write lock, which is
/// held for as long as `writing` lives.
pub struct Verified<'a> {
    pub user: User,
    pub writing: MutexGuard<'a, ()>,
}

/// Checks `name`'s password without taking any lock; [`PasswordChecked::lock`] then takes
/// the write lock for the change the password allows.
///
/// # Errors
///
/// `Ok(None)` for no such user or a wrong password (a password no account can have is
/// wrong without hashing); 429 when the account or `client` has failed too often.
pub async fn check_password(
    state: &AppState,
    name: &str,
    password: &str,
    client: Option<IpAddr>,
    standing: Standing,
) -> Result<Option<PasswordChecked>, ApiError> {
    // An unknown user is checked too (against a dummy), so that the answer takes as long.
    let user = load(state, name).await?;
    if !PASSWORD_LENGTHS.contains(&password.len())
        || !state
            .passwords()
            .check(name, user.as_ref(), password, client, standing)
            .await?
    {
        return Ok(None);
    }
    let Some(user) = user else {
        return Ok(None);
    };
    Ok(Some(PasswordChecked {
        name: user.name,
        hash: user.password_hash,
    }))
}

/// [`check_password`], then [`PasswordChecked::lock`] at once: `Ok(None)` for no such
/// user, a wrong password, or one changed in between.
pub async fn check_password_and_lock<'a>(
    state: &'a AppState,
    name: &str,
    password: &str,
    client: Option<IpAddr>,
    standing: Standing,
) -> Result<Option<Verified<'a>>, ApiError> {
    match check_password(state, name, password, client, standing).await? {
        Some(checked) => checked.lock(state).await,
        None => Ok(None),
    }
}

impl PasswordChecked {
    /// Takes the write lock and reloads the user, who must still have the password that
    /// was checked: one changed in between is not this check's, and `Ok(None)` says so.
    pub async fn lock(self, state: &AppState) -> Result<Option<Verified<'_>>, ApiError> {
        let writing = state.write_lock().await;
        Ok(load(state, &self.name)
            .await?
            .filter(|user| user.password_hash == self.hash)
            .map(|user| Verified { user, writing }))
    }
}

/// npm user names: lower-case letters, digits, `-`, `.` and `_`, not starting with `.` or
/// `_`, at most 214 characters.
pub fn valid_username(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 214
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
        })
}

/// Now, as the profile shows times.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Writes the user's record. Call it under the registry's write lock.
pub async fn save(state: &AppState, user: &mut User) -> Result<(), ApiError> {
    user.revision = Some(state.db().put_user(user).await?);
    Ok(())
}

/// The user named `name`; `None` for a name no user can have, which never reaches the
/// database.
pub async fn load(state: &AppState, name: &str) -> Result<Option<User>, ApiError> {
    if !valid_username(name) {
        return Ok(None);
    }
    Ok(state.db().user(name).await?)
}

#[derive(Deserialize)]
pub struct CouchLogin {
    name: String,
    password: String,
    email: Option<String>,
}

#[derive(Serialize)]
struct LoginReply {
    ok: bool,
    id: String,
    rev: String,
    token: String,
}

/// `PUT /-/user/org.couchdb.user:<name>`: creates the user, or logs an existing one in;
/// either way answers with a new session token: read-write, two hours, never listed.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: axum::http::HeaderMap,
    Path(couch_id): Path<String>,
    JsonBody(body): JsonBody<CouchLogin>,
) -> Result<impl IntoResponse, ApiError> {
    let name = couch_id
        .strip_prefix("org.couchdb.user:")
        .ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    if body.name != name {
        return Err(ApiError::bad_request(
            "the user name in the body does not match the one in the URL",
        ));
    }
    if !valid_username(name) {
        return Err(ApiError::bad_request(
            "invalid user name: use lower-case letters, digits, '-', '.' and '_' (at most 214)",
        ));
    }
    let wrong = || ApiError::new(StatusCode::UNAUTHORIZED, "incorrect user name or password");
    let _writing = if load(&state, name).await?.is_some() {
        let verified =
            check_password_and_lock(&state, name, &body.password, client, Standing::Stranger)
                .await?;
        let mut verified = verified.ok_or_else(wrong)?;
        // With two-factor authentication, the password alone is not enough: npm asks
        // for a code on this 401 and sends the login again with it.
        let sender = crate::security::wrong_codes::Sender::new(None, client);
        crate::tfa::check_code(&state, &mut verified.user, &headers, sender).await?;
        verified.writing
    } else {
        check_new_password(&body.password)?;
        // Hashed before the lock, for the same reason a password is checked before it.
        let password_hash = state.passwords().hash(&body.password).await?;
        let writing = state.write_lock().await;
        // Made in between by someone else: this login's password was never checked.
        if load(&state, name).await?.is_some() {
            return Err(wrong());
        }
        // A scope someone publishes into is a name taken like a user's: answered as a
        // taken user name with a wrong password is, so that nothing tells the two apart
        // (or says whose the scope is, or what it holds).
        // So is an organisation's (the database refuses it too, on every node).
        if crate::controllers::packages::scopes::recorded_owner(&state, name)
            .await?
            .is_some()
            || state.db().org(name).await?.is_some()
        {
            return Err(wrong());
        }
        let mut user = User {
            name: name.to_owned(),
            password_hash,
            email: body.email,
            created: Some(now()),
            updated: Some(now()),
            tfa: None,
            profile: Default::default(),
            revision: None,
        };
        save(&state, &mut user).await?;
        tracing::info!(user = name, "user created");
        writing
    };
    let created = state
        .tokens()
        .create(name, NewToken::session().name("npm login session"))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(LoginReply {
            ok: true,
            id: couch_id.clone(),
            rev: "1-tokengate".into(),
            token: created.token.expose_secret().to_owned(),
        }),
    ))
}

/// `GET /-/whoami`.
pub async fn whoami(who: Option<Authenticated>) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    Ok(Json(serde_json::json!({ "username": who.owner() })))
}

/// `DELETE /-/user/token/<token>`: `npm logout` revokes the token it was using. Outside
/// the token gate: holding the whole token is the right to revoke it, whatever the token
/// may otherwise do (a read-only or address-bound token can still be logged out), and an
/// id alone is not enough.
pub async fn logout(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Path(token): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    // The gates' budget of failures: logging out made-up tokens is guessing them too.
    let failures = state.token_failures();
    if let Some(exhausted) = crate::security::failures_exhausted(failures, client) {
        return Err(exhausted);
    }
    let not_found = || {
        failures.record(client);
        ApiError::not_found("token not found")
    };
    if state.tokens().parse(&token).is_err() {
        return Err(not_found());
    }
    match state
        .tokens()
        .authenticate(&token, None, tokengate::Action::Read)
        .await
    {
        Err(rejection)
            if matches!(
                rejection.reason(),
                tokengate::Reason::UnknownToken
                    | tokengate::Reason::SecretMismatch
                    | tokengate::Reason::Revoked
            ) =>
        {
            return Err(not_found());
        }
        Err(rejection) if rejection.reason() == tokengate::Reason::StoreUnavailable => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the token store is unavailable; try again shortly",
            ));
        }
        // Expired, or refused for its address: the holder may still retire it.
        _ => {}
    }
    if state.tokens().revoke(&token).await? {
        Ok(Json(serde_json::json!({ "ok": true })))
    } else {
        Err(ApiError::not_found("token not found"))
    }
}
