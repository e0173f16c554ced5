//! Logging in and out: the login page (the password, then the one-time password for an
//! account with 2FA, without asking for the password twice), the login that finishes an
//! npm browser login, logging out, and the session cookie.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::extract::{Form, State};
use axum::http::header::{HOST, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use tokengate::{Authenticated, NewToken, Reason};
use zeroize::Zeroizing;

use super::layout::{api_error_page, field_error, layout, message_page, page_response, redirect};
use super::{BASE, COOKIE, WebState, npm_login};
use crate::controllers::users;
use crate::controllers::users::Verified;
use crate::error::ApiError;
use crate::query::KnownQuery;
use crate::security::passwords::Standing;
use crate::state::{AppState, ClientAddress};
use crate::tfa;

// ---------------------------------------------------------------------------------------
// Cookies and origins

/// Whether the browser reached us over HTTPS (through a proxy that says so).
pub(super) fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"))
        || headers
            .get("origin")
            .is_some_and(|origin| origin.as_bytes().starts_with(b"https://"))
}

fn session_cookie(token: &str, secure: bool) -> Result<HeaderValue, ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    let mut value = HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path={BASE}; HttpOnly; SameSite=Strict{secure}"
    ))
    .map_err(|e| ApiError::internal("cannot set the session cookie", e))?;
    value.set_sensitive(true);
    Ok(value)
}

pub(super) fn clear_cookie(secure: bool) -> HeaderValue {
    if secure {
        HeaderValue::from_static(
            "tg_session=; Path=/-/web; HttpOnly; SameSite=Strict; Secure; Max-Age=0",
        )
    } else {
        HeaderValue::from_static("tg_session=; Path=/-/web; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

/// `http://<Host>`, the registry's own address as this request reached it, when the Host
/// header is a plain authority.
pub(super) fn own_origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(HOST)?.to_str().ok()?;
    let authority: axum::http::uri::Authority = host.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let scheme = if over_https(headers) { "https" } else { "http" };
    Some(format!("{scheme}://{authority}"))
}

// ---------------------------------------------------------------------------------------
// Logging in and out

/// A password or one-time password from a form: wiped when dropped, never printed.
#[derive(Default)]
pub struct Secret(Zeroizing<String>);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Secret(Zeroizing::new(text)))
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    /// A browser login for npm in progress.
    npm: Option<String>,
    logged_out: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: Secret,
    #[serde(default)]
    otp: Secret,
    #[serde(default)]
    npm: String,
    /// The box ticked that says "I ran npm login myself" (see `npm_login`).
    #[serde(default)]
    confirm_npm: Option<String>,
    /// The key of a first step whose password was right (2FA accounts).
    #[serde(default)]
    passed: String,
}

/// What the login form shows: what was typed (never the password), and what is wrong.
#[derive(Default)]
struct LoginView<'a> {
    username: &'a str,
    npm: &'a str,
    /// The account has 2FA: ask for a code too.
    ask_code: bool,
    /// The password was right: the key of that first step, and no password field.
    passed: Option<String>,
    general: Option<String>,
    username_error: Option<String>,
    password_error: Option<String>,
    otp_error: Option<String>,
    notice: Option<&'static str>,
    /// The npm login `npm` names, and this browser's address, for what the page says of it.
    npm_waiting: Option<npm_login::Waiting>,
    browser: Option<IpAddr>,
    /// The box that confirms an npm login started elsewhere is ticked.
    confirmed: bool,
    confirm_error: Option<String>,
}
fn login_form(view: &LoginView<'_>) -> Response {
    let title = if view.npm.is_empty() {
        "Log in"
    } else {
        "Log in to npm"
    };
    let body = html! {
        @if let Some(notice) = view.notice { p.notice role="status" { (notice) } }
        @if !view.npm.is_empty() {
            p { "The npm command line is waiting for you to log in. Once you have, it receives a session of its own." }
        }
        @if let Some(general) = &view.general { p.error #form-error role="alert" { (general) } }
        form method="post" action="/-/web/login" {
            input type="hidden" name="npm" value=(view.npm);
            @if let Some(waiting) = &view.npm_waiting {
                (npm_login::panel(waiting, view.browser, view.confirmed, view.confirm_error.as_deref()))
            }
            label for="username" { "User name" }
            input #username type="text" name="username" value=(view.username)
                autocomplete="username" autocapitalize="none" spellcheck="false" required
                autofocus[!view.ask_code] aria-describedby="username-error";
            (field_error("username", &view.username_error))
            @if let Some(passed) = &view.passed {
                input type="hidden" name="passed" value=(passed);
                p.notice #password-passed role="status" { "Password checked." }
            } @else {
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required
                    aria-describedby="password-error";
                (field_error("password", &view.password_error))
            }
            @if view.ask_code {
                label for="otp" { "One-time password" }
                p.hint #otp-hint { "This account has two-factor authentication: enter the code from your authenticator app (or a recovery code). The password step stays good for 5 minutes." }
                input #otp type="text" name="otp" inputmode="numeric" autocomplete="one-time-code"
                    autofocus aria-describedby="otp-hint otp-error";
                (field_error("otp", &view.otp_error))
            }
            button type="submit" { "Log in" }
        }
    };
    let status = if view.general.is_some()
        || view.username_error.is_some()
        || view.password_error.is_some()
        || view.otp_error.is_some()
        || view.confirm_error.is_some()
    {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page_response(status, layout(title, None, body))
}

/// `GET /-/web/login`; with `npm=<id>`, for an npm login that waits, which the page
/// describes (when and where it started).
pub(super) async fn login_page(
    Extension(web): Extension<Arc<WebState>>,
    ClientAddress(client): ClientAddress,
    KnownQuery(query): KnownQuery<LoginQuery>,
) -> Response {
    let npm = query.npm.unwrap_or_default();
    let npm_waiting = if npm.is_empty() {
        None
    } else {
        match web.npm.waiting(&npm, Instant::now()) {
            Ok(Some(waiting)) => Some(waiting),
            Ok(None) => {
                return message_page(
                    StatusCode::NOT_FOUND,
                    "npm login expired",
                    None,
                    npm_login::GONE,
                );
            }
            Err(error) => return api_error_page(None, error),
        }
    };
    login_form(&LoginView {
        npm: &npm,
        notice: query.logged_out.map(|_| "You are logged out."),
        npm_waiting,
        browser: client,
        ..LoginView::default()
    })
}

/// `POST /-/web/login`: the password (and a code with 2FA) for a session in a cookie; for
/// a browser login for npm, a second session for npm.
pub(super) async fn login(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<WebState>>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // Logging in changes who the browser is: it too must come from these pages.
    if !tokengate::same_origin(&headers, &[]) {
        return message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            None,
            Reason::CrossSiteRequest.message(),
        );
    }
    let mut view = LoginView {
        username: form.username.trim(),
        npm: &form.npm,
        browser: client,
        confirmed: form.confirm_npm.as_deref() == Some("yes"),
        ..LoginView::default()
    };
    // An npm login: checked before the password, which is not spent on one that cannot
    // finish. Started elsewhere, it needs the box ticked as well (see `npm_login`).
    if !form.npm.is_empty() {
        match web.npm.waiting(&form.npm, Instant::now()) {
            Ok(Some(waiting)) => view.npm_waiting = Some(waiting),
            Ok(None) => {
                view.general = Some(npm_login::GONE.into());
                return login_form(&view);
            }
            Err(error) => return api_error_page(None, error),
        }
        if view
            .npm_waiting
            .as_ref()
            .is_some_and(|waiting| waiting.elsewhere(client))
            && !view.confirmed
        {
            view.confirm_error = Some(npm_login::NOT_CONFIRMED.into());
            return login_form(&view);
        }
    }
    if view.username.is_empty() {
        view.username_error = Some("user name is required".into());
    } else if !users::valid_username(view.username) {
        view.username_error = Some(
            "invalid user name: use lower-case letters, digits, '-', '.' and '_' (at most 214)"
                .into(),
        );
    }
    if form.password.is_empty() && form.passed.is_empty() {
        view.password_error = Some("password is required".into());
    }
    if view.username_error.is_some() || view.password_error.is_some() {
        return login_form(&view);
    }
    let secure = over_https(&headers);
    match log_in(&state, &web, &mut view, &form, client, secure).await {
        Ok(Some(response)) => response,
        Ok(None) => login_form(&view),
        Err(error) => api_error_page(None, error),
    }
}

/// Checks the login; `Ok(None)` with `view` saying what is wrong, or the response.
async fn log_in(
    state: &AppState,
    web: &WebState,
    view: &mut LoginView<'_>,
    form: &LoginForm,
    client: Option<IpAddr>,
    secure: bool,
) -> Result<Option<Response>, ApiError> {
    let name = view.username.to_owned();
    // The first step: the password, or the key of a first step already passed.
    let checked = if form.passed.is_empty() {
        users::check_password(state, &name, &form.password, client, Standing::Stranger).await?
    } else {
        let checked = web.take_passed(&form.passed, &name);
        if checked.is_none() {
            view.general = Some("the password step is over (after 5 minutes): log in again".into());
            return Ok(None);
        }
        checked
    };
    let Some(checked) = checked else {
        view.general = Some("incorrect user name or password".into());
        return Ok(None);
    };
    let again = users::PasswordChecked::clone(&checked);
    let Some(Verified {
        mut user,
        writing: _writing,
    }) = checked.lock(state).await?
    else {
        view.general = Some("incorrect user name or password".into());
        return Ok(None);
    };
    if user.tfa.as_ref().is_some_and(tfa::Tfa::active) {
        view.ask_code = true;
        let code = form.otp.trim();
        let refused = if code.is_empty() {
            Some("a one-time password is needed".to_owned())
        } else {
            match tfa::verify(
                state,
                &mut user,
                Some(code),
                crate::security::wrong_codes::Sender::new(None, client),
            )
            .await
            {
                Ok(_) => None,
                Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
                    Some(error.message().to_owned())
                }
                Err(error) => return Err(error),
            }
        };
        if let Some(refused) = refused {
            // The password was right: the next try asks for the code alone.
            view.passed = Some(web.passed(again)?);
            view.otp_error = Some(refused);
            return Ok(None);
        }
    }
    // A browser login for npm: npm gets a session of its own, through `doneUrl`.
    let mut npm_done = None;
    if let Some(from) = view.npm_waiting.as_ref().map(|waiting| waiting.from) {
        let created = state
            .tokens()
            .create(&name, NewToken::session().name("npm web login session"))
            .await?;
        let token = Zeroizing::new(created.token.expose_secret().to_owned());
        if !web.npm.finish(&form.npm, token, Instant::now())? {
            // It expired (or another tab finished it) while the password was checked.
            state
                .tokens()
                .revoke_owned(&name, &created.listing.id.to_string())
                .await?;
            view.general = Some(npm_login::GONE.into());
            return Ok(None);
        }
        npm_done = Some(from);
        tracing::info!(user = %name, token_id = %created.listing.id, "npm logged in through the web");
    }
    let created = state
        .tokens()
        .create(&name, NewToken::session().name("web session"))
        .await?;
    users::save(state, &mut user).await?;
    let cookie = session_cookie(created.token.expose_secret(), secure)?;
    tracing::info!(user = %name, token_id = %created.listing.id, "web session started");
    let mut response = if let Some(from) = npm_done {
        let from = from.map_or_else(|| "an unknown address".into(), |ip| ip.to_string());
        page_response(
            StatusCode::OK,
            layout(
                "npm is logged in",
                Some(&name),
                html! {
                    p.notice role="status" { "npm is now logged in as " strong { (name) } " (the " code { "npm login" } " at " (from) "). You can go back to your terminal and close this page." }
                    p { a href="/-/web/tokens" { "See your tokens" } }
                },
            ),
        )
    } else {
        redirect("/-/web/tokens")
    };
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(Some(response))
}

/// `POST /-/web/logout`: revokes the session and forgets the cookie.
pub(super) async fn logout(
    State(state): State<AppState>,
    who: Authenticated,
    headers: HeaderMap,
) -> Response {
    if let Err(error) = state
        .tokens()
        .revoke_owned(who.owner(), &who.token_id().to_string())
        .await
    {
        return api_error_page(Some(who.owner()), error.into());
    }
    tracing::info!(user = who.owner(), token_id = %who.token_id(), "web session ended");
    let mut response = redirect("/-/web/login?logged_out=1");
    response
        .headers_mut()
        .insert(SET_COOKIE, clear_cookie(over_https(&headers)));
    response
}
