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

fn user_key(name: &str) -> String {
    format!("users/{name}.json")
}

pub async fn load(state: &AppState, name: &str) -> Result<Option<User>, ApiError> {
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

async fn hash_password(password: &str) -> Result<String, ApiError> {
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
    if body.password.len() < 8 || body.password.len() > 1024 {
        return Err(ApiError::bad_request("passwords have 8 to 1024 characters"));
    }
    let _writing = state.write_lock().await;
    match load(&state, name).await? {
        Some(user) => {
            if !check_password(&user, &body.password).await? {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "incorrect user name or password",
                ));
            }
        }
        None => {
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
            };
            let bytes = serde_json::to_vec_pretty(&user)
                .map_err(|e| ApiError::internal("cannot save the user", e))?;
            state
                .storage()
                .write(&user_key(name), bytes)
                .await
                .map_err(|e| ApiError::internal("cannot save the user", e))?;
            tracing::info!(user = name, "user created");
        }
    }
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

/// `DELETE /-/user/token/<token>`: `npm logout` revokes the token it was using.
pub async fn logout(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(token): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    if state.tokens().revoke_owned(who.owner(), &token).await? {
        Ok(Json(serde_json::json!({ "ok": true })))
    } else {
        Err(ApiError::not_found("token not found"))
    }
}
