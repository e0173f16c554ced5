//! npm's token API, in the wire format `npm token list | create | revoke` reads.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tokengate::store::{Cursor, Page};
use tokengate::{
    Authenticated, Grant, Grants, NewToken, Permission, ResourcePattern, SecondFactor, TokenListing,
};

use crate::controllers::packages::PackageName;
use crate::controllers::users;
use crate::error::{ApiError, JsonBody};
use crate::query::KnownQuery;
use crate::security::passwords::Standing;
use crate::state::{AppState, ClientAddress};
use crate::tfa;

/// npm's default page size; a bigger one is cut to this.
const MAX_PER_PAGE: u32 = 1_000;

fn iso(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// One token as npm lists it, with the granular fields npm's website shows.
#[derive(Serialize)]
struct ListedToken {
    key: String,
    token: String,
    created: String,
    updated: String,
    /// True when the token can change nothing.
    readonly: bool,
    cidr_whitelist: Option<Vec<String>>,
    /// npm prints it as it is: an unnamed token says so rather than `null`.
    name: String,
    description: Option<String>,
    expires: Option<String>,
    accessed: Option<String>,
    packages_all: bool,
    packages: Vec<String>,
    scopes: Vec<String>,
    packages_and_scopes_permission: String,
    bypass_2fa: bool,
}

/// What `npm token list` shows for a token created without a name.
const UNNAMED: &str = "(unnamed)";

impl From<&TokenListing> for ListedToken {
    fn from(listing: &TokenListing) -> Self {
        let (mut packages, mut scopes, mut packages_all) = (Vec::new(), Vec::new(), false);
        for grant in listing.grants.iter() {
            match &grant.pattern {
                ResourcePattern::All => packages_all = true,
                ResourcePattern::Exact(name) => packages.push(name.clone()),
                ResourcePattern::Prefix(prefix) => {
                    scopes.push(prefix.trim_end_matches('/').to_owned());
                }
                _ => {}
            }
        }
        let broadest = listing.grants.broadest();
        Self {
            key: listing.id.to_string(),
            token: listing.token_prefix.clone(),
            created: iso(listing.created_at),
            updated: iso(listing.created_at),
            readonly: !broadest.allows(tokengate::Action::Stage),
            cidr_whitelist: (!listing.cidr.is_empty()).then(|| listing.cidr.to_strings()),
            name: listing.name.clone().unwrap_or_else(|| UNNAMED.to_owned()),
            description: listing.description.clone(),
            expires: listing.expires_at.map(iso),
            accessed: listing.last_used_at.map(iso),
            packages_all,
            packages,
            scopes,
            packages_and_scopes_permission: npm_permission_name(broadest).to_owned(),
            bypass_2fa: listing.second_factor == SecondFactor::Bypassed,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    page: Option<u32>,
    #[serde(rename = "perPage")]
    per_page: Option<u32>,
    /// Where the page starts: the cursor of this registry's own `urls.next`.
    after: Option<String>,
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

/// Who may manage tokens: a token with a grant on everything (a session, or a classic
/// token), of at least `needs`. A token limited to some packages manages nothing, or it
/// could list and revoke the tokens it was made to be narrower than.
pub(crate) fn token_manager(
    who: Option<Authenticated>,
    needs: Permission,
) -> Result<Authenticated, ApiError> {
    account_manager(who, needs, Governs::Tokens)
}

/// 403 for a token that trusted publishing minted: it may publish its one package, and
/// never `what` (govern the account, or the package's owners, access and trust).
pub(crate) fn refuse_exchanged(who: &Authenticated, what: &str) -> Result<(), ApiError> {
    if who.kind() == tokengate::TokenKind::Exchanged {
        return Err(ApiError::forbidden(format!(
            "a token from trusted publishing cannot {what}: it may only publish its package \
             and change its dist-tags"
        )));
    }
    Ok(())
}

/// What of the account a request changes or reads.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Governs {
    Tokens,
    Profile,
    Orgs,
}

/// `who`, if their token may govern their account: a session, or a token for every
/// package with at least `needs` (a token limited to some packages governs nothing).
pub(crate) fn account_manager(
    who: Option<Authenticated>,
    needs: Permission,
    governs: Governs,
) -> Result<Authenticated, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let what = match governs {
        Governs::Tokens => "manage tokens",
        Governs::Profile => "change the profile",
        Governs::Orgs => "create an organisation",
    };
    refuse_exchanged(&who, what)?;
    match who.grants().on_everything() {
        Some(permission) if permission >= needs => Ok(who),
        _ => Err(ApiError::forbidden(format!(
            "this token is limited to some packages and cannot {what}: use a session \
             (npm login) or a token for all packages"
        ))),
    }
}

/// `GET /-/npm/v1/tokens?page=&perPage=`, or `?after=&perPage=` as `urls.next` (which
/// `npm token list` follows) gives it: newest first. A page from `after` costs the same
/// however many tokens come before it; a numbered page skips the tokens before it.
pub async fn list(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    KnownQuery(query): KnownQuery<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let who = token_manager(who, Permission::ReadOnly)?;
    let per_page = query.per_page.unwrap_or(100).clamp(1, MAX_PER_PAGE);
    let list = match &query.after {
        Some(after) => {
            let cursor = after
                .parse::<Cursor>()
                .map_err(|_| ApiError::bad_request("after is not a cursor from urls.next"))?;
            let page = Page::after(cursor, per_page).newest_first();
            state.tokens().list(who.owner(), page).await?
        }
        None => newest_first_page(&state, who.owner(), query.page.unwrap_or(0), per_page).await?,
    };
    let next = list
        .next
        .map(|cursor| format!("/-/npm/v1/tokens?perPage={per_page}&after={cursor}"));
    Ok(Json(TokenPage {
        objects: list.tokens.iter().map(ListedToken::from).collect(),
        total: list.total,
        urls: Urls { next },
    }))
}

/// Page `number` (from 0) of `owner`'s tokens, `per_page` a page, newest first.
async fn newest_first_page(
    state: &AppState,
    owner: &str,
    number: u32,
    per_page: u32,
) -> Result<tokengate::TokenList, ApiError> {
    let page = Page::number(number, per_page).newest_first();
    Ok(state.tokens().list(owner, page).await?)
}

/// Page `number` (from 0) of `owner`'s tokens, `per_page` a page, newest first, as npm's
/// and the web's lists show them; and how many there are in all.
pub(crate) async fn newest_first(
    state: &AppState,
    owner: &str,
    number: u64,
    per_page: u64,
) -> Result<(Vec<tokengate::TokenListing>, u64), ApiError> {
    let saturate = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let list = newest_first_page(state, owner, saturate(number), saturate(per_page)).await?;
    Ok((list.tokens, list.total))
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
    packages: Option<Vec<String>>,
    packages_all: Option<bool>,
    scopes: Option<Vec<String>>,
    packages_and_scopes_permission: Option<String>,
    cidr_whitelist: Option<Vec<String>>,
    bypass_2fa: Option<bool>,
    /// Older clients.
    readonly: Option<bool>,
    /// Organisations whose members and teams the token may manage (`--orgs`), and how
    /// much (`--orgs-permission`); never anything about their packages.
    orgs: Option<Vec<String>>,
    orgs_permission: Option<String>,
}

/// The options a create request asks for, or what is wrong with it.
pub(crate) fn options(request: &CreateRequest) -> Result<NewToken, ApiError> {
    let mut options = NewToken::with_grants(grants(request)?);
    if request.bypass_2fa == Some(true) {
        options = options.bypass_second_factor();
    }
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

/// The permission npm names so (`npm token create --packages-and-scopes-permission`):
/// npm 12's `read-write-stage-only` is tokengate's [`Permission::ReadStage`], a token
/// that may stage releases and not publish them. Only npm's names are taken here.
fn npm_permission(text: &str) -> Option<Permission> {
    match text {
        "no-access" => Some(Permission::NoAccess),
        "read-only" => Some(Permission::ReadOnly),
        "read-write-stage-only" => Some(Permission::ReadStage),
        "read-write" => Some(Permission::ReadWrite),
        _ => None,
    }
}

/// npm's name for a permission, as `npm token list` shows it.
fn npm_permission_name(permission: Permission) -> &'static str {
    match permission {
        Permission::ReadStage => "read-write-stage-only",
        other => other.as_str(),
    }
}

/// The grants of `--packages`, `--scopes`, `--packages-all` and
/// `--packages-and-scopes-permission`; a token that names no package or scope covers
/// every package, as classic tokens do. Its permission is always named: by
/// `packages_and_scopes_permission`, or by older clients' `readonly`.
fn grants(request: &CreateRequest) -> Result<Grants, ApiError> {
    let permission = match (
        request.packages_and_scopes_permission.as_deref(),
        request.readonly,
    ) {
        (Some(text), readonly) => {
            let permission = npm_permission(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "packages_and_scopes_permission {:?} is not supported: use read-only, \
                     read-write, read-write-stage-only or no-access",
                    text.chars().take(32).collect::<String>()
                ))
            })?;
            if readonly == Some(true) && permission != Permission::ReadOnly {
                return Err(ApiError::bad_request(
                    "readonly and packages_and_scopes_permission disagree",
                ));
            }
            Some(permission)
        }
        (None, Some(true)) => Some(Permission::ReadOnly),
        (None, _) => None,
    };
    let mut patterns = Vec::new();
    if request.packages_all == Some(true) {
        patterns.push(ResourcePattern::All);
    }
    for package in request.packages.iter().flatten() {
        let name = PackageName::parse(package)
            .map_err(|e| ApiError::bad_request(format!("packages: {}", e.message())))?;
        patterns.push(ResourcePattern::Exact(name.to_string()));
    }
    for scope in request.scopes.iter().flatten() {
        let bare = scope.strip_prefix('@').unwrap_or(scope);
        if !PackageName::valid_scope(bare) {
            return Err(ApiError::bad_request(format!(
                "scopes: {:?} is not a scope such as @alice",
                scope.chars().take(64).collect::<String>()
            )));
        }
        patterns.push(ResourcePattern::Prefix(format!("@{bare}/")));
    }
    let asked_for_some =
        request.packages.is_some() || request.scopes.is_some() || request.packages_all.is_some();
    let orgs = org_grants(request)?;
    if patterns.is_empty() && !orgs.is_empty() && !asked_for_some && permission.is_none() {
        // A token for organisations only: it can do nothing with packages.
        return Grants::new(orgs).map_err(|e| ApiError::bad_request(e.to_string()));
    }
    if patterns.is_empty() {
        if asked_for_some {
            // An explicit empty list is not "everything".
            return Err(ApiError::bad_request(
                "the token would cover no package: name --packages or --scopes, or use \
                 --packages-all",
            ));
        }
        patterns.push(ResourcePattern::All);
    }
    let permission = match permission {
        Some(permission) => permission,
        // A granular token names its permission: npm 11 drops a value it does not know
        // (such as npm 12's read-write-stage-only) with only a warning, and a default
        // would make the token more than the person asked for.
        None if asked_for_some => {
            return Err(ApiError::bad_request(
                "packages_and_scopes_permission is missing: a token for some packages or \
                 scopes names its permission (read-only, read-write, read-write-stage-only \
                 or no-access)",
            ));
        }
        // A classic token, for everything, as older clients ask for it (`readonly: false`).
        None if request.readonly.is_some() => Permission::ReadWrite,
        // npm 11 and 12 send neither `readonly` nor a permission unless told one: their
        // `--read-only` is accepted and dropped, so a default here would turn a read-only
        // request into a publishing token.
        None => {
            return Err(ApiError::bad_request(
                "say what the token may do: --packages-and-scopes-permission=read-only (or \
                 read-write, or read-write-stage-only), for every package or with \
                 --packages or --scopes; npm 11 and 12 do not send --read-only",
            ));
        }
    };
    patterns.sort_by_key(ToString::to_string);
    patterns.dedup();
    Grants::new(
        patterns
            .into_iter()
            .map(|pattern| Grant::new(pattern, permission))
            .chain(orgs),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The grants of `--orgs` with `--orgs-permission`: one on `org:<name>` each.
fn org_grants(request: &CreateRequest) -> Result<Vec<Grant>, ApiError> {
    let orgs = request.orgs.as_deref().unwrap_or_default();
    let permission = match (&request.orgs_permission, orgs.is_empty()) {
        (None, true) => return Ok(Vec::new()),
        (Some(_), true) => {
            return Err(ApiError::bad_request(
                "orgs_permission needs orgs: name the organisations with --orgs",
            ));
        }
        (None, false) => {
            return Err(ApiError::bad_request(
                "orgs_permission is missing: a token for organisations names its permission \
                 (read-only, read-write or no-access)",
            ));
        }
        (Some(text), false) => text.parse::<Permission>().map_err(|_| {
            ApiError::bad_request(format!(
                "orgs_permission {:?} is not supported: use read-only, read-write or no-access",
                text.chars().take(32).collect::<String>()
            ))
        })?,
    };
    let mut grants: Vec<Grant> = Vec::new();
    for org in orgs {
        let bare = org.strip_prefix('@').unwrap_or(org);
        if !PackageName::valid_scope(bare) {
            return Err(ApiError::bad_request(format!(
                "orgs: {:?} is not an organisation's name",
                org.chars().take(64).collect::<String>()
            )));
        }
        let pattern = ResourcePattern::Exact(crate::controllers::orgs::org_resource(bare));
        if !grants.iter().any(|grant| grant.pattern == pattern) {
            grants.push(Grant::new(pattern, permission));
        }
    }
    Ok(grants)
}

/// `POST /-/npm/v1/tokens`: needs the account password, returns the full token once.
pub async fn create(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    who: Option<Authenticated>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let who = token_manager(who, Permission::ReadWrite)?;
    let options = options(&request)?;
    let password = request
        .password
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("password is required to create a token"))?;
    let mut verified =
        users::check_password_and_lock(&state, who.owner(), password, client, Standing::HoldsToken)
            .await?
            .ok_or_else(ApiError::incorrect_password)?;
    let sender = crate::security::wrong_codes::Sender::new(Some(who.token_id()), client);
    tfa::check_code(&state, &mut verified.user, &headers, sender).await?;
    let created = state.tokens().create(who.owner(), options).await?;
    let listing = ListedToken::from(&created.listing);
    tracing::info!(user = who.owner(), token_id = %created.listing.id, "token created");
    Ok((
        StatusCode::CREATED,
        Json(created_reply(listing, created.token.expose_secret())),
    ))
}

/// What `npm token create` prints: the listing, with the full token in place of the
/// truncated one.
fn created_reply(listing: ListedToken, token: &str) -> serde_json::Value {
    let mut reply = serde_json::to_value(listing).unwrap_or_default();
    reply["token"] = token.into();
    reply
}

/// `DELETE /-/npm/v1/tokens/token/<key or full token>`: another user's token is as
/// unknown as a token that never was.
pub async fn revoke(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let who = token_manager(who, Permission::ReadWrite)?;
    let _writing = state.write_lock().await;
    let mut user = users::load(&state, who.owner())
        .await?
        .ok_or_else(ApiError::needs_login)?;
    let sender = crate::security::wrong_codes::Sender::new(Some(who.token_id()), client);
    tfa::check_code(&state, &mut user, &headers, sender).await?;
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use tokengate::{Authenticated, Grants, Permission, TokenDigest, TokenKind, TokenRecord};

    use super::{Governs, account_manager, npm_permission, npm_permission_name};

    #[test]
    fn permissions_go_by_npm_names_at_the_boundary() {
        for permission in [
            Permission::NoAccess,
            Permission::ReadOnly,
            Permission::ReadStage,
            Permission::ReadWrite,
        ] {
            assert_eq!(
                npm_permission(npm_permission_name(permission)),
                Some(permission)
            );
        }
        assert_eq!(
            npm_permission("read-write-stage-only"),
            Some(Permission::ReadStage)
        );
        // tokengate's own name is not npm's.
        assert_eq!(npm_permission("read-stage"), None);
    }

    fn token(kind: TokenKind) -> Authenticated {
        let mut record = TokenRecord::new(
            "AbCdEfGhIj0".parse().unwrap(),
            "alice",
            TokenDigest::of("unused"),
            SystemTime::now(),
        );
        record.grants = Grants::everything(Permission::ReadWrite);
        record.kind = kind;
        Authenticated::for_record(record)
    }

    #[test]
    fn a_token_from_trusted_publishing_governs_nothing_of_the_account() {
        for governs in [Governs::Tokens, Governs::Profile] {
            let Err(refused) = account_manager(
                Some(token(TokenKind::Exchanged)),
                Permission::ReadOnly,
                governs,
            ) else {
                panic!("a trusted publishing token governed the account");
            };
            assert_eq!(refused.status(), axum::http::StatusCode::FORBIDDEN);
            assert!(
                refused.message().contains("trusted publishing"),
                "{}",
                refused.message()
            );
            assert!(
                account_manager(
                    Some(token(TokenKind::Standard)),
                    Permission::ReadOnly,
                    governs
                )
                .is_ok()
            );
        }
    }
}
