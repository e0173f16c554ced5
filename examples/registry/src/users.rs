//! Accounts: `npm adduser` / `npm login` (CouchDB-style), `npm whoami`, `npm logout`.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tokengate::{Authenticated, NewToken};

use crate::app::AppState;
use crate::error::{ApiError, JsonBody};

/// What is kept about a user: never the password, only its Argon2 hash.
#[derive(Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub password_hash: String,
    pub email: Option<String>,
    /// Two-factor authentication, when set up.
    #[serde(default)]
    pub tfa: Option<crate::tfa::Tfa>,
    /// `npm profile set` fields other than email: fullname, homepage, github, …
    #[serde(default)]
    pub profile: std::collections::BTreeMap<String, String>,
    /// Ids of the session tokens logins gave out, so that a new password can end them.
    #[serde(default)]
    pub sessions: Vec<String>,
}

/// Sessions remembered per user; older ones have expired long before this many more.
const MAX_REMEMBERED_SESSIONS: usize = 100;

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

fn user_key(name: &str) -> String {
    format!("users/{name}.json")
}

/// Writes the user's record (owner-only file). Call it under the registry's write lock.
pub async fn save(state: &AppState, user: &User) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec_pretty(user)
        .map_err(|e| ApiError::internal("cannot save the user", e))?;
    state
        .storage()
        .write(&user_key(&user.name), bytes)
        .await
        .map_err(|e| ApiError::internal("cannot save the user", e))
}

/// The user named `name`; `None` for a name no user can have, which never reaches the
/// storage (so a name cannot climb out of the users' folder).
pub async fn load(state: &AppState, name: &str) -> Result<Option<User>, ApiError> {
    if !valid_username(name) {
        return Ok(None);
    }
    state.load_json(&user_key(name), "user").await
}

/// Checks `password` against the user's hash; Argon2 compares in constant time.
pub async fn check_password(user: &User, password: &str) -> Result<bool, ApiError> {
    let hash = user.password_hash.clone();
    let password = password.to_owned();
    // Hashing is deliberately slow: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
        Ok::<_, String>(
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
        )
    })
    .await
    .map_err(|e| ApiError::internal("password check failed", e))?
    .map_err(|e| ApiError::internal("a stored password hash is damaged", e))
}

pub async fn hash_password(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| e.to_string())?;
        let salt = SaltString::encode_b64(&random).map_err(|e| e.to_string())?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal("password hashing failed", e))?
    .map_err(|e| ApiError::internal("password hashing failed", e))
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
    let acceptable = (8..=1024).contains(&body.password.len());
    let _writing = state.write_lock().await;
    match load(&state, name).await? {
        Some(mut user) => {
            // A wrong password is a 401 whatever its length: the rule for new passwords
            // says nothing about an existing one.
            if !acceptable || !check_password(&user, &body.password).await? {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "incorrect user name or password",
                ));
            }
            // With two-factor authentication, the password alone is not enough: npm asks
            // for a code on this 401 and sends the login again with it.
            crate::tfa::check_code(&state, &mut user, &headers).await?;
        }
        None => {
            if !acceptable {
                return Err(ApiError::bad_request("passwords have 8 to 1024 characters"));
            }
            if crate::scopes::recorded_owner(&state, name).await?.is_some() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "the user name {name:?} is taken: the scope @{name} belongs to another user"
                    ),
                ));
            }
            let user = User {
                name: name.to_owned(),
                password_hash: hash_password(&body.password).await?,
                email: body.email,
                tfa: None,
                profile: Default::default(),
                sessions: Vec::new(),
            };
            save(&state, &user).await?;
            tracing::info!(user = name, "user created");
        }
    }
    let created = state
        .tokens()
        .create(name, NewToken::session().name("npm login session"))
        .await?;
    if let Some(mut user) = load(&state, name).await? {
        user.sessions.push(created.listing.id.to_string());
        let excess = user.sessions.len().saturating_sub(MAX_REMEMBERED_SESSIONS);
        user.sessions.drain(..excess);
        save(&state, &user).await?;
    }
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
    Path(token): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if state.tokens().parse(&token).is_err() {
        return Err(ApiError::not_found("token not found"));
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
            return Err(ApiError::not_found("token not found"));
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
