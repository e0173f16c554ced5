//! npm's token API, in the wire format `npm token list | create | revoke` reads.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tokengate::store::Page;
use tokengate::{Authenticated, NewToken, TokenListing};

use crate::app::AppState;
use crate::error::{ApiError, JsonBody};
use crate::users;

/// npm's default page size; a bigger one is cut to this.
const MAX_PER_PAGE: u32 = 1_000;

fn iso(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// One token as npm lists it.
#[derive(Serialize)]
struct ListedToken {
    key: String,
    token: String,
    created: String,
    updated: String,
    readonly: bool,
    cidr_whitelist: Option<Vec<String>>,
    /// npm prints it as it is: an unnamed token says so rather than `null`.
    name: String,
    description: Option<String>,
    expires: Option<String>,
    accessed: Option<String>,
}

/// What `npm token list` shows for a token created without a name.
const UNNAMED: &str = "(unnamed)";

impl From<&TokenListing> for ListedToken {
    fn from(listing: &TokenListing) -> Self {
        Self {
            key: listing.id.to_string(),
            token: listing.token_prefix.clone(),
            created: iso(listing.created_at),
            updated: iso(listing.created_at),
            readonly: listing.access.is_read_only(),
            cidr_whitelist: (!listing.cidr.is_empty()).then(|| listing.cidr.to_strings()),
            name: listing.name.clone().unwrap_or_else(|| UNNAMED.to_owned()),
            description: listing.description.clone(),
            expires: listing.expires_at.map(iso),
            accessed: listing.last_used_at.map(iso),
        }
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<u32>,
    #[serde(rename = "perPage")]
    per_page: Option<u32>,
}

#[derive(Serialize)]
struct TokenPage {
    objects: Vec<ListedToken>,
    total: u64,
    urls: Urls,
}

#[derive(Serialize)]
struct Urls {
    next: Option<String>,
}

/// `GET /-/npm/v1/tokens?page=&perPage=`.
pub async fn list(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let number = query.page.unwrap_or(0);
    let per_page = query.per_page.unwrap_or(100).clamp(1, MAX_PER_PAGE);
    let page = state
        .tokens()
        .list(who.owner(), Page::number(number, per_page))
        .await?;
    let shown = (u64::from(number) + 1) * u64::from(per_page);
    let next = (shown < page.total)
        .then(|| format!("/-/npm/v1/tokens?page={}&perPage={per_page}", number + 1));
    Ok(Json(TokenPage {
        objects: page.tokens.iter().map(ListedToken::from).collect(),
        total: page.total,
        urls: Urls { next },
    }))
}

/// What `npm token create` sends (npm 11), and what older clients send. A field this
/// registry does not know is refused by name rather than ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    password: Option<String>,
    name: Option<String>,
    description: Option<String>,
    /// Days.
    expires: Option<i64>,
    packages_and_scopes_permission: Option<String>,
    cidr_whitelist: Option<Vec<String>>,
    /// Older clients.
    readonly: Option<bool>,
    #[allow(dead_code)]
    bypass_2fa: Option<bool>,
    /// Granular restrictions this registry cannot enforce yet: refused when present, so
    /// that a token asked to be narrow never comes out unrestricted.
    packages: Option<serde_json::Value>,
    packages_all: Option<serde_json::Value>,
    scopes: Option<serde_json::Value>,
    orgs: Option<serde_json::Value>,
    orgs_permission: Option<serde_json::Value>,
}

impl CreateRequest {
    /// The first restriction the request asks for that this registry cannot enforce.
    fn unsupported_field(&self) -> Option<&'static str> {
        [
            ("packages", &self.packages),
            ("packages_all", &self.packages_all),
            ("scopes", &self.scopes),
            ("orgs", &self.orgs),
            ("orgs_permission", &self.orgs_permission),
        ]
        .into_iter()
        .find(|(_, value)| value.as_ref().is_some_and(|v| !v.is_null()))
        .map(|(field, _)| field)
    }
}

#[derive(Serialize)]
struct CreatedReply {
    token: String,
    key: String,
    cidr_whitelist: Option<Vec<String>>,
    created: String,
    updated: String,
    readonly: bool,
    name: String,
    expires: Option<String>,
}

/// The options a create request asks for, or what is wrong with it.
fn options(request: &CreateRequest) -> Result<NewToken, ApiError> {
    if let Some(field) = request.unsupported_field() {
        return Err(ApiError::bad_request(format!(
            "{field} is not supported: this registry issues tokens for all packages only"
        )));
    }
    let read_only = match request.packages_and_scopes_permission.as_deref() {
        None => request.readonly.unwrap_or(false),
        Some("read-only") => true,
        Some("read-write") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "packages_and_scopes_permission {other:?} is not supported: use read-only or read-write"
            )));
        }
    };
    let mut options = if read_only {
        NewToken::read_only()
    } else {
        NewToken::read_write()
    };
    if let Some(cidr) = &request.cidr_whitelist {
        options = options.allow_cidrs(cidr.iter().cloned());
    }
    if let Some(days) = request.expires {
        if !(1..=3650).contains(&days) {
            return Err(ApiError::bad_request(
                "expires is a number of days from 1 to 3650",
            ));
        }
        options = options.expires_in(Duration::from_secs(days as u64 * 86_400));
    }
    if let Some(name) = &request.name {
        options = options.name(name.clone());
    }
    if let Some(description) = &request.description {
        options = options.description(description.clone());
    }
    Ok(options)
}

/// `POST /-/npm/v1/tokens`: needs the account password, returns the full token once.
pub async fn create(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    JsonBody(request): JsonBody<CreateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let options = options(&request)?;
    let password = request
        .password
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("password is required to create a token"))?;
    let user = users::load(&state, who.owner())
        .await?
        .ok_or_else(ApiError::needs_login)?;
    if !users::check_password(&user, password).await? {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "incorrect password",
        ));
    }
    let created = state.tokens().create(who.owner(), options).await?;
    let listing = ListedToken::from(&created.listing);
    tracing::info!(user = who.owner(), token_id = %created.listing.id, "token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedReply {
            token: created.token.expose_secret().to_owned(),
            key: listing.key,
            cidr_whitelist: listing.cidr_whitelist,
            created: listing.created,
            updated: listing.updated,
            readonly: listing.readonly,
            name: listing.name,
            expires: listing.expires,
        }),
    ))
}

/// `DELETE /-/npm/v1/tokens/token/<key or full token>`: another user's token is as
/// unknown as a token that never was.
pub async fn revoke(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(key): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    match state.tokens().revoke_owned(who.owner(), &key).await {
        Ok(true) => {
            tracing::info!(user = who.owner(), "token revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) | Err(tokengate::TokensError::InvalidReference) => {
            Err(ApiError::not_found("token not found"))
        }
        Err(other) => Err(other.into()),
    }
}
