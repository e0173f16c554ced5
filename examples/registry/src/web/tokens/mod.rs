//! The Tokens page: the signed-in user's tokens, newest first, a page at a time, with
//! what each may do; and what the pages that generate ([`new`], [`created`]) and revoke
//! ([`revoke`]) a token share.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use tokengate::{Authenticated, Permission, ResourcePattern, SecondFactor, TokenListing};

use super::layout::{api_error_page, layout, page_response, when};
use crate::controllers::{tokens, users};
use crate::error::ApiError;
use crate::query::KnownQuery;
use crate::state::AppState;

pub(super) mod created;
pub(super) mod new;
pub(super) mod revoke;

/// Tokens per page of the Tokens page.
const PER_PAGE: u64 = 20;

/// What the token may do, as `npm token list` says it.
fn access(listing: &TokenListing) -> String {
    if let Some(permission) = listing.grants.on_everything()
        && listing.grants.iter().count() == 1
    {
        return match permission {
            Permission::ReadOnly => "read-only".into(),
            Permission::ReadWrite => "read-write (all packages)".into(),
            other => other.to_string(),
        };
    }
    listing
        .grants
        .iter()
        .map(|grant| {
            let on = match &grant.pattern {
                ResourcePattern::All => "all packages".to_owned(),
                ResourcePattern::Exact(name) => name.clone(),
                ResourcePattern::Prefix(prefix) => format!("{}*", prefix),
                other => other.to_string(),
            };
            format!("{on}: {}", grant.permission)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensQuery {
    page: Option<u64>,
    revoked: Option<String>,
}

/// The name of `owner`'s token `id`, just revoked, and its id: what the notice names. An id
/// that is not `owner`'s says nothing of whose it is.
async fn revoked_name(
    state: &AppState,
    owner: &str,
    id: &str,
) -> Result<(String, String), ApiError> {
    use tokengate::store::TokenStore;
    let Ok(parsed) = id.parse::<tokengate::TokenId>() else {
        return Ok(("(unknown)".into(), id.chars().take(32).collect()));
    };
    let record = state
        .tokens()
        .store()
        .get(parsed)
        .await
        .map_err(tokengate::TokensError::from)?;
    let name = record
        .filter(|record| record.owner == owner)
        .map(|record| record.name.unwrap_or_else(|| "(unnamed)".into()))
        .unwrap_or_else(|| "(unknown)".into());
    Ok((name, parsed.to_string()))
}

/// The signed-in user, when the token may manage tokens.
fn manager(who: Authenticated, needs: Permission) -> Result<Authenticated, ApiError> {
    tokens::token_manager(Some(who), needs)
}

/// `GET /-/web/tokens?page=N`: newest first, [`PER_PAGE`] a page.
pub(super) async fn tokens_page(
    State(state): State<AppState>,
    who: Authenticated,
    KnownQuery(query): KnownQuery<TokensQuery>,
) -> Response {
    let owner = who.owner().to_owned();
    match tokens_markup(&state, who, &query).await {
        Ok(markup) => page_response(StatusCode::OK, layout("Your tokens", Some(&owner), markup)),
        Err(error) => api_error_page(Some(&owner), error),
    }
}

async fn tokens_markup(
    state: &AppState,
    who: Authenticated,
    query: &TokensQuery,
) -> Result<Markup, ApiError> {
    let who = manager(who, Permission::ReadOnly)?;
    let number = query.page.unwrap_or(0);
    let (mut listed, total) = tokens::newest_first(state, who.owner(), number, PER_PAGE).await?;
    let pages = total.div_ceil(PER_PAGE).max(1);
    // Past the last page: the last page.
    let number = if number >= pages {
        let last = pages - 1;
        listed = tokens::newest_first(state, who.owner(), last, PER_PAGE)
            .await?
            .0;
        last
    } else {
        number
    };
    let revoked = match &query.revoked {
        Some(id) => Some(revoked_name(state, who.owner(), id).await?),
        None => None,
    };
    Ok(html! {
        @if let Some((name, id)) = &revoked {
            p.notice role="status" { "Token " strong { (name) } " (ID " code { (id) } ") was revoked." }
        }
        p { "Tokens you make here and with " code { "npm token create" } " are the same tokens: each list shows both." }
        p.actions { a.button href="/-/web/tokens/new" { "Generate new token" } }
        p { (total) " token" @if total != 1 { "s" } @if pages > 1 { ", page " (number + 1) " of " (pages) } "." }
        @if !listed.is_empty() {
            div.table-wrap {
                table.tokens {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Access" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Expires" } th scope="col" { span.visually-hidden { "Revoke" } } } }
                    tbody {
                        @for listing in &listed {
                            tr {
                                th scope="row" {
                                    (listing.name.as_deref().unwrap_or("(unnamed)"))
                                    br; code.token-id title=(format!("The token's ID; the token starts {}…", listing.token_prefix)) { (listing.id) }
                                    @if let Some(description) = &listing.description { br; span.hint { (description) } }
                                }
                                td {
                                    (access(listing))
                                    @if !listing.cidr.is_empty() { br; "from " (listing.cidr.to_strings().join(", ")) }
                                    @if listing.second_factor == SecondFactor::Bypassed { br; "bypasses 2FA" }
                                }
                                td { (when(Some(listing.created_at), "")) }
                                td { (when(listing.last_used_at, "never")) }
                                td { (when(listing.expires_at, "never")) }
                                td { a href=(format!("/-/web/tokens/{}/revoke", listing.id)) aria-label=(format!("Revoke token {}", listing.name.as_deref().unwrap_or(&listing.id.to_string()))) { "Revoke…" } }
                            }
                        }
                    }
                }
            }
        }
        @if pages > 1 {
            nav.pages aria-label="Pages" {
                @if number > 0 { a href=(format!("/-/web/tokens?page={}", number - 1)) rel="prev" { "← Newer" } } @else { span {} }
                @if number + 1 < pages { a href=(format!("/-/web/tokens?page={}", number + 1)) rel="next" { "Older →" } }
            }
        }
    })
}

/// Whether `owner` has two-factor authentication on: changes then ask for a code.
pub(super) async fn has_2fa(state: &AppState, owner: &str) -> Result<bool, ApiError> {
    Ok(users::load(state, owner)
        .await?
        .and_then(|user| user.tfa)
        .is_some_and(|tfa| tfa.active()))
}
