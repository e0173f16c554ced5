//! `npm profile get` and the two-factor parts of `npm profile`: `enable-2fa`, the
//! confirmation with a first code, and `disable-2fa` (`/-/npm/v1/user`).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use tokengate::{Authenticated, Permission, TokenKind};

use crate::controllers::tokens::{self, Governs};
use crate::controllers::users::{self, User, Verified};
use crate::error::{ApiError, JsonBody};
use crate::security::passwords::Standing;
use crate::state::{AppState, ClientAddress};
use crate::tfa::{self, TfaMode};

fn profile(user: &User) -> Value {
    let tfa = match &user.tfa {
        Some(tfa) => json!({ "pending": tfa.pending, "mode": tfa.mode.as_str() }),
        None => Value::Bool(false),
    };
    let mut profile = json!({
        "name": user.name,
        "email": user.email,
        "email_verified": false,
        "tfa": tfa,
        "created": user.created,
        "updated": user.updated,
    });
    for (field, value) in &user.profile {
        profile[field] = json!(value);
    }
    profile
}

/// The fields `npm profile set` may change besides the password.
const PROFILE_FIELDS: [&str; 6] = [
    "email", "fullname", "homepage", "freenode", "twitter", "github",
];

/// What each of [`PROFILE_FIELDS`] allows; any other field is refused by name.
fn check_field(field: &str, value: &str) -> Result<(), String> {
    let printable = !value.chars().any(char::is_control);
    let ok = match field {
        "email" => {
            value.len() <= 254 && value.contains('@') && !value.contains(char::is_whitespace)
        }
        "fullname" => value.chars().count() <= 256 && printable,
        "homepage" => {
            value.len() <= 2048
                && (value.starts_with("https://") || value.starts_with("http://"))
                && !value.contains(char::is_whitespace)
        }
        "freenode" | "twitter" | "github" => {
            value.len() <= 64
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        }
        _ => {
            return Err(format!(
                "profile field {field:?} cannot be changed on this registry"
            ));
        }
    };
    if ok && printable {
        Ok(())
    } else {
        Err(format!(
            "invalid {field}: {:?}",
            value.chars().take(64).collect::<String>()
        ))
    }
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
    ClientAddress(client): ClientAddress,
    who: Option<Authenticated>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<impl IntoResponse, ApiError> {
    if body.contains_key("tfa") && body.len() > 1 {
        return Err(ApiError::bad_request("tfa changes on its own"));
    }
    let who = tokens::account_manager(who, Permission::ReadWrite, Governs::Profile)?;
    let current_token = who.token_id();
    let sender = crate::security::wrong_codes::Sender::new(Some(current_token), client);
    let change = Change::of(&body)?;
    // The password is checked, and a new one hashed, before the write lock is taken.
    let (verified, new_hash) = match change.password {
        Some(password) => {
            let checked =
                users::check_password(&state, who.owner(), password, client, Standing::HoldsToken)
                    .await?
                    .ok_or_else(ApiError::incorrect_password)?;
            let new_hash = match change.new_password {
                Some(new) => Some(state.passwords().hash(new).await?),
                None => None,
            };
            let verified = checked
                .lock(&state)
                .await?
                .ok_or_else(ApiError::incorrect_password)?;
            (verified, new_hash)
        }
        None => {
            let writing = state.write_lock().await;
            let user = users::load(&state, who.owner())
                .await?
                .ok_or_else(ApiError::needs_login)?;
            (Verified { user, writing }, None)
        }
    };
    let Verified {
        mut user,
        writing: _writing,
    } = verified;
    let Some(tfa_change) = body.get("tfa") else {
        return set_fields(
            &state,
            &mut user,
            &headers,
            &body,
            new_hash,
            sender,
            current_token,
        )
        .await;
    };
    let reply = match tfa_change {
        // The first code from the authenticator: enrolment is done.
        Value::Array(codes) => {
            let code = match codes.as_slice() {
                [Value::String(code)] => code,
                _ => return Err(ApiError::bad_request("tfa: send one code to confirm")),
            };
            let recovery = tfa::confirm(&state, &mut user, code)?;
            user.updated = Some(users::now());
            users::save(&state, &mut user).await?;
            tracing::info!(user = user.name, "two-factor authentication enabled");
            let shown: Vec<&str> = recovery.iter().map(|code| code.as_str()).collect();
            json!({ "tfa": shown })
        }
        Value::Object(change) => {
            // The password was checked above (`Change::of` requires it).
            let active = user.tfa.as_ref().is_some_and(tfa::Tfa::active);
            match change.get("mode").and_then(Value::as_str) {
                Some("disable") => {
                    // Turning it off takes a code, unless enrolment never finished.
                    if active {
                        tfa::check_code(&state, &mut user, &headers, sender).await?;
                    }
                    user.tfa = None;
                    user.updated = Some(users::now());
                    users::save(&state, &mut user).await?;
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
                        tfa::check_code(&state, &mut user, &headers, sender).await?;
                        if let Some(tfa) = user.tfa.as_mut() {
                            tfa.mode = mode;
                        }
                        user.updated = Some(users::now());
                        users::save(&state, &mut user).await?;
                        json!({ "tfa": { "mode": mode.as_str(), "pending": false } })
                    } else {
                        let url = tfa::begin(&state, &mut user, mode)?;
                        user.updated = Some(users::now());
                        users::save(&state, &mut user).await?;
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

/// What a profile change must prove before the write lock: the account's password, for
/// two-factor changes and a new password (then also checked for length before any hashing).
struct Change<'a> {
    password: Option<&'a str>,
    new_password: Option<&'a str>,
}

impl<'a> Change<'a> {
    fn of(body: &'a Map<String, Value>) -> Result<Self, ApiError> {
        match (body.get("tfa"), body.get("password")) {
            (Some(Value::Object(change)), _) => {
                let password = change
                    .get("password")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::bad_request("tfa: the password is required"))?;
                Ok(Self {
                    password: Some(password),
                    new_password: None,
                })
            }
            (_, Some(Value::Object(change))) => {
                let old = change
                    .get("old")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let new = change
                    .get("new")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::bad_request("password: send old and new"))?;
                users::check_new_password(new)?;
                Ok(Self {
                    password: Some(old),
                    new_password: Some(new),
                })
            }
            (_, Some(_)) => Err(ApiError::bad_request("password: send old and new")),
            _ => Ok(Self {
                password: None,
                new_password: None,
            }),
        }
    }
}

/// `npm profile set <field> <value>` and `npm profile set password`: the password needs the
/// old one, checked by the caller, which hashed the new one into `new_hash`; with 2FA it
/// also needs a code, and it ends every other session of the user.
async fn set_fields(
    state: &AppState,
    user: &mut User,
    headers: &HeaderMap,
    body: &Map<String, Value>,
    new_hash: Option<String>,
    sender: crate::security::wrong_codes::Sender,
    current_token: tokengate::TokenId,
) -> Result<Json<Value>, ApiError> {
    for (field, value) in body {
        match (field.as_str(), value) {
            // Checked by `Change::of`.
            ("password", _) => {}
            // npm sends null to clear a field.
            (field, Value::Null) if PROFILE_FIELDS.contains(&field) => {}
            (field, Value::String(text)) => {
                check_field(field, text).map_err(ApiError::bad_request)?
            }
            (field, _) if PROFILE_FIELDS.contains(&field) => {
                return Err(ApiError::bad_request(format!("{field} must be text")));
            }
            (field, _) => {
                return Err(ApiError::bad_request(format!(
                    "profile field {:?} cannot be changed on this registry",
                    field.chars().take(32).collect::<String>()
                )));
            }
        }
    }
    // Every change to the account, not only a new password, takes a code with 2FA on.
    tfa::check_code(state, user, headers, sender).await?;
    for (field, value) in body {
        match (field.as_str(), value.as_str()) {
            ("password", _) => {}
            ("email", email) => user.email = email.map(str::to_owned),
            (field, Some(text)) => {
                user.profile.insert(field.to_owned(), text.to_owned());
            }
            (field, None) => {
                user.profile.remove(field);
            }
        }
    }
    if let Some(new_hash) = new_hash {
        user.password_hash = new_hash;
        // Every session of the account through the store, whatever their number (a stolen
        // one among them), but the one that made the change.
        let ended = state
            .tokens()
            .revoke_all_except(&user.name, TokenKind::Session, current_token)
            .await?;
        tracing::info!(
            user = user.name,
            ended,
            "password changed; other sessions ended"
        );
    }
    user.updated = Some(users::now());
    users::save(state, user).await?;
    Ok(Json(profile(user)))
}
