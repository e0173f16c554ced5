//! Revoking a token: a page that asks to confirm, then the `POST` that revokes it (with a
//! code when the account has 2FA).

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use tokengate::store::Page;
use tokengate::{Authenticated, Permission, TokenListing};

use super::{access, has_2fa, manager};
use crate::controllers::users;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tfa;
use crate::web::layout::{
    api_error_page, field_error, layout, message_page, page_response, redirect,
};
use crate::web::session::Secret;

/// The owner's live token with this id, if any.
async fn find(state: &AppState, owner: &str, id: &str) -> Result<Option<TokenListing>, ApiError> {
    let mut page = Page::first(Page::MAX_LIMIT);
    loop {
        let list = state.tokens().list(owner, page).await?;
        if let Some(found) = list.tokens.iter().find(|t| t.id.to_string() == id) {
            return Ok(Some(found.clone()));
        }
        match list.next {
            Some(cursor) => page = Page::after(cursor, Page::MAX_LIMIT),
            None => return Ok(None),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct RevokeForm {
    #[serde(default)]
    otp: Secret,
}

fn revoke_form(
    owner: &str,
    listing: &TokenListing,
    ask_code: bool,
    otp_error: Option<String>,
) -> Response {
    let body = html! {
        p { "Revoke this token? Anything that uses it, npm included, is refused from the next request on. This cannot be undone." }
        dl {
            dt { "Name" } dd { (listing.name.as_deref().unwrap_or("(unnamed)")) }
            dt { "Token" } dd { code { (listing.token_prefix) "…" } }
            dt { "ID" } dd { code { (listing.id) } }
            dt { "Access" } dd { (access(listing)) }
        }
        form method="post" action=(format!("/-/web/tokens/{}/revoke", listing.id)) {
            @if ask_code {
                label for="otp" { "One-time password" }
                p.hint #otp-hint { "The code from your authenticator app." }
                input #otp type="text" name="otp" inputmode="numeric" autocomplete="one-time-code" aria-describedby="otp-hint otp-error";
                (field_error("otp", &otp_error))
            }
            button.danger type="submit" { "Revoke token" }
            " "
            a.button href="/-/web/tokens" style="background:#fff;color:#234" { "Cancel" }
        }
    };
    let status = if otp_error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page_response(status, layout("Revoke token", Some(owner), body))
}

/// `GET /-/web/tokens/<id>/revoke`: asks to confirm.
pub(crate) async fn revoke_page(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> Response {
    let owner = who.owner().to_owned();
    let found = async {
        manager(who, Permission::ReadWrite)?;
        let listing = find(&state, &owner, &id).await?;
        Ok::<_, ApiError>((listing, has_2fa(&state, &owner).await?))
    }
    .await;
    match found {
        Ok((Some(listing), ask_code)) => revoke_form(&owner, &listing, ask_code, None),
        Ok((None, _)) => message_page(
            StatusCode::NOT_FOUND,
            "No such token",
            Some(&owner),
            "token not found: it may have been revoked already",
        ),
        Err(error) => api_error_page(Some(&owner), error),
    }
}

/// `POST /-/web/tokens/<id>/revoke`: revokes, with a code when the account has 2FA (as
/// `npm token revoke` asks for one).
pub(crate) async fn revoke(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Response {
    let owner = who.owner().to_owned();
    let result = async {
        let who = manager(who, Permission::ReadWrite)?;
        let Some(listing) = find(&state, &owner, &id).await? else {
            return Ok(Err(None));
        };
        let _writing = state.write_lock().await;
        let mut user = users::load(&state, who.owner())
            .await?
            .ok_or_else(ApiError::needs_login)?;
        let code = Some(form.otp.trim()).filter(|code| !code.is_empty());
        match tfa::verify(
            &state,
            &mut user,
            code,
            crate::security::wrong_codes::Sender::new(Some(who.token_id()), None),
        )
        .await
        {
            Ok(_) => {}
            Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
                return Ok(Err(Some((listing, error.message().to_owned()))));
            }
            Err(error) => return Err(error),
        }
        let revoked = state.tokens().revoke_owned(who.owner(), &id).await?;
        Ok(Ok(revoked))
    }
    .await;
    match result {
        Ok(Ok(true)) => {
            tracing::info!(user = %owner, token_id = %id, "token revoked on the web");
            redirect(&format!("/-/web/tokens?revoked={id}"))
        }
        Ok(Ok(false)) | Ok(Err(None)) => message_page(
            StatusCode::NOT_FOUND,
            "No such token",
            Some(&owner),
            "token not found: it may have been revoked already",
        ),
        Ok(Err(Some((listing, message)))) => revoke_form(&owner, &listing, true, Some(message)),
        Err(error) => api_error_page(Some(&owner), error),
    }
}
