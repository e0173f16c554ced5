//! `npm profile get` and the two-factor parts of `npm profile`: `enable-2fa`, the
//! confirmation with a first code, and `disable-2fa` (`/-/npm/v1/user`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use tokengate::Authenticated;

use crate::app::AppState;
use crate::error::{ApiError, JsonBody};
use crate::tfa::{self, TfaMode};
use crate::users::{self, User};

fn profile(user: &User) -> Value {
    let tfa = match &user.tfa {
        Some(tfa) => json!({ "pending": tfa.pending, "mode": tfa.mode.as_str() }),
        None => Value::Bool(false),
    };
    json!({
        "name": user.name,
        "email": user.email,
        "email_verified": false,
        "tfa": tfa,
    })
}

async fn signed_in(state: &AppState, who: Option<Authenticated>) -> Result<User, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    users::load(state, who.owner())
        .await?
        .ok_or_else(ApiError::needs_login)
}

/// `GET /-/npm/v1/user`: `npm profile get`.
pub async fn get(
    State(state): State<AppState>,
    who: Option<Authenticated>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(profile(&signed_in(&state, who).await?)))
}

/// `POST /-/npm/v1/user`. Only `tfa` can change here; any other field is refused by name.
pub async fn set(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(field) = body.keys().find(|key| key.as_str() != "tfa") {
        return Err(ApiError::bad_request(format!(
            "profile field {:?} cannot be changed on this registry",
            field.chars().take(32).collect::<String>()
        )));
    }
    let tfa_change = body
        .get("tfa")
        .ok_or_else(|| ApiError::bad_request("nothing to change: send tfa"))?;
    let _writing = state.write_lock().await;
    let mut user = signed_in(&state, who).await?;
    let reply = match tfa_change {
        // The first code from the authenticator: enrolment is done.
        Value::Array(codes) => {
            let code = match codes.as_slice() {
                [Value::String(code)] => code,
                _ => return Err(ApiError::bad_request("tfa: send one code to confirm")),
            };
            let recovery = tfa::confirm(&state, &mut user, code)?;
            users::save(&state, &user).await?;
            tracing::info!(user = user.name, "two-factor authentication enabled");
            let shown: Vec<&str> = recovery.iter().map(|code| code.as_str()).collect();
            json!({ "tfa": shown })
        }
        Value::Object(change) => {
            let password = change
                .get("password")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request("tfa: the password is required"))?;
            if !users::check_password(&user, password).await? {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "incorrect password",
                ));
            }
            let active = user.tfa.as_ref().is_some_and(tfa::Tfa::active);
            match change.get("mode").and_then(Value::as_str) {
                Some("disable") => {
                    // Turning it off takes a code, unless enrolment never finished.
                    if active {
                        tfa::check_code(&state, &mut user, &headers).await?;
                    }
                    user.tfa = None;
                    users::save(&state, &user).await?;
                    tracing::info!(user = user.name, "two-factor authentication disabled");
                    profile(&user)
                }
                Some(mode) => {
                    let mode = match mode {
                        "auth-only" => TfaMode::AuthOnly,
                        "auth-and-writes" => TfaMode::AuthAndWrites,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "tfa: mode {:?} is not one of auth-only, auth-and-writes, disable",
                                other.chars().take(32).collect::<String>()
                            )));
                        }
                    };
                    if active {
                        tfa::check_code(&state, &mut user, &headers).await?;
                        if let Some(tfa) = user.tfa.as_mut() {
                            tfa.mode = mode;
                        }
                        users::save(&state, &user).await?;
                        json!({ "tfa": { "mode": mode.as_str(), "pending": false } })
                    } else {
                        let url = tfa::begin(&state, &mut user, mode)?;
                        users::save(&state, &user).await?;
                        json!({ "tfa": url.as_str() })
                    }
                }
                None => return Err(ApiError::bad_request("tfa: the mode is required")),
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "tfa: send a mode and password, or a code",
            ));
        }
    };
    Ok(Json(reply))
}
