//! The registry's web pages: log in and out, the Tokens page, creating and revoking tokens,
//! and npm's browser login (`POST /-/v1/login`, then polling `doneUrl`).
//!
//! Server-rendered HTML (maud), no JavaScript but the copy button's. The session is a
//! session token in an `HttpOnly`, `SameSite=Strict` cookie that only `/-/web/` pages get;
//! the gate reads it ([`TokenAuthLayer::cookie_token`]) and refuses every write that does
//! not come from these pages. What a person types is kept on a form sent back with an
//! error, except passwords and one-time passwords, which never appear in a page.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use tokengate::store::Page;
use tokengate::{
    Authenticated, CidrList, NewToken, Permission, Reason, ResourcePattern, SecondFactor,
    TokenAuthLayer, TokenListing,
};
use zeroize::Zeroizing;

use crate::controllers::users::Verified;
use crate::controllers::{tokens, users};
use crate::error::ApiError;
use crate::security::passwords::Standing;
use crate::state::{AppState, ClientAddress};
use crate::tfa;

mod npm_login;

/// The session cookie's name.
pub const COOKIE: &str = "tg_session";
/// Where the pages live; the cookie is sent to nothing else.
const BASE: &str = "/-/web";
/// Tokens per page of the Tokens page.
const PER_PAGE: u64 = 20;
/// How long a new token waits to be shown (npm's browser logins: [`npm_login::TTL`]).
const ONE_SHOT_TTL: Duration = Duration::from_secs(600);
/// Most new tokens waiting to be shown at once.
const MAX_WAITING: usize = 1_000;

/// What the pages keep between requests, in memory.
#[derive(Default)]
pub struct WebState {
    /// New tokens waiting to be shown once, by a random key in the page's address.
    shown: Mutex<HashMap<String, ShownToken>>,
    /// npm browser logins, by the id in `loginUrl`.
    npm: npm_login::NpmLogins,
    /// Logins whose password was right and that wait for their one-time password, by a
    /// random key in the form: the second step does not ask for the password again.
    passed: Mutex<HashMap<String, PasswordPassed>>,
}

/// A login's first step, done.
struct PasswordPassed {
    /// Whose password was right, and the hash it was right for: a password changed in
    /// between is not this step's.
    checked: users::PasswordChecked,
    at: Instant,
}

/// How long a login's second step may wait for its code.
const SECOND_STEP_TTL: Duration = Duration::from_secs(5 * 60);

impl WebState {
    /// Remembers that `checked`'s password was right; the key for the form.
    fn passed(&self, checked: users::PasswordChecked) -> Result<String, ApiError> {
        let key = random_key()?;
        let mut passed = self
            .passed
            .lock()
            .map_err(|_| ApiError::internal("cannot log in", "a lock was poisoned"))?;
        passed.retain(|_, step| step.at.elapsed() < SECOND_STEP_TTL);
        if passed.len() >= MAX_WAITING {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many logins waiting for their code; try again shortly",
            ));
        }
        passed.insert(
            key.clone(),
            PasswordPassed {
                checked,
                at: Instant::now(),
            },
        );
        Ok(key)
    }

    /// The first step of `user`'s login under `key`, used up; `None` when there is none,
    /// it is someone else's, or it is too old.
    fn take_passed(&self, key: &str, user: &str) -> Option<users::PasswordChecked> {
        let step = self.passed.lock().ok()?.remove(key)?;
        (step.at.elapsed() < SECOND_STEP_TTL && step.checked.name() == user).then_some(step.checked)
    }
}

struct ShownToken {
    owner: String,
    token: Zeroizing<String>,
    id: String,
    name: String,
    at: Instant,
}

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

fn random_key() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("cannot make a random key", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Drops tokens that waited too long to be shown, and refuses to keep more than
/// [`MAX_WAITING`].
fn prune<T>(map: &mut HashMap<String, T>, at: impl Fn(&T) -> Instant) -> Result<(), ApiError> {
    map.retain(|_, value| at(value).elapsed() < ONE_SHOT_TTL);
    if map.len() >= MAX_WAITING {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many new tokens waiting to be shown; try again shortly",
        ));
    }
    Ok(())
}

/// The pages and npm's browser login, to merge into the registry's router.
pub fn router(state: &AppState) -> Router<AppState> {
    let web = Arc::new(WebState::default());
    let gate = TokenAuthLayer::new(state.tokens().clone())
        .cookie_token(COOKIE)
        .trusted_proxies(state.trusted_proxies().clone())
        // As on npm's routes: a client guessing sessions gets refusals, not store lookups.
        .limit_failures(tokengate::FailureLimit::new(50, Duration::from_secs(60)))
        .respond_with(|rejection, request| {
            refused_page(rejection.reason(), request.uri.path().starts_with(BASE))
        });
    let signed_in = Router::new()
        .route("/-/web/tokens", get(tokens_page))
        .route("/-/web/tokens/new", get(new_page).post(create))
        .route("/-/web/tokens/created/{key}", get(created_page))
        .route("/-/web/tokens/{id}/revoke", get(revoke_page).post(revoke))
        .route("/-/web/logout", post(logout))
        .route_layer(gate);
    Router::new()
        .route("/-/web", get(|| async { redirect("/-/web/tokens") }))
        .route("/-/web/", get(|| async { redirect("/-/web/tokens") }))
        .route("/-/web/login", get(login_page).post(login))
        .route("/-/v1/login", post(npm_login::start))
        .route("/-/v1/done", get(npm_login::done))
        .merge(signed_in)
        .layer(Extension(web))
}

// ---------------------------------------------------------------------------------------
// Pages and responses

/// Headers every page gets: not cached, not framed, no referrer, scripts only inline.
fn page_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.5;margin:0;color:#1a1a1a;background:#fafafa}
header{background:#233;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}
header a,header button{color:#fff}
header .brand{font-weight:bold;margin-right:auto}
main{max-width:60rem;margin:0 auto;padding:1rem}
form,main>p{max-width:42rem}
label{display:block;font-weight:600;margin-top:1rem}
input[type=text],input[type=password],input[type=number],textarea,select{box-sizing:border-box;width:100%;font:inherit;padding:.4rem;border:1px solid #888;border-radius:4px;background:#fff}
input[type=radio],input[type=checkbox]{width:1.1rem;height:1.1rem;vertical-align:middle}
fieldset{border:1px solid #ccc;border-radius:4px;margin-top:1rem}
fieldset label{display:inline;font-weight:normal;margin:0}
.granular{display:none}fieldset:has(#perm-granular:checked) .granular{display:block}
.granular label{display:block;font-weight:600;margin-top:1rem}
.hint{color:#555;font-size:.9rem;margin:.1rem 0}
.error{color:#b00020;font-weight:600;margin:.2rem 0}
.notice{background:#e8f4ea;border:1px solid #7a7;padding:.5rem;border-radius:4px}
.warning{background:#fff4e0;border:1px solid #c90;padding:.5rem;border-radius:4px}
button,.button{font:inherit;padding:.45rem 1rem;margin-top:1rem;border-radius:4px;border:1px solid #233;background:#234;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.danger{background:#a01;border-color:#a01}
header button{margin:0;background:none;border:1px solid #fff;padding:.2rem .6rem}
:focus-visible{outline:3px solid #f90;outline-offset:2px}
.token{border:1px solid #ccc;background:#fff;border-radius:4px;padding:.5rem 1rem;margin:1rem 0}
.token h2{font-size:1.1rem;margin:.2rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.5rem 0}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
code{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
#new-token{display:block;font-size:1.05rem;background:#fff;border:2px solid #233;padding:.6rem;margin:.5rem 0}
nav.pages{display:flex;justify-content:space-between;margin-top:1rem}
.table-wrap{overflow-x:auto}
table.tokens{border-collapse:collapse;width:100%;background:#fff;font-size:.95rem}
table.tokens th,table.tokens td{border-bottom:1px solid #ddd;padding:.4rem .5rem;text-align:left;vertical-align:top}
table.tokens thead th{border-bottom:2px solid #233}
table.tokens tbody th{font-weight:600}
.token-id{font-size:.8rem;font-weight:normal;white-space:nowrap}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
@media (max-width:32rem){header{gap:.25rem .6rem;font-size:.9rem}header .brand{flex-basis:100%}main{padding:.5rem}}
";

/// One page: the header (with the user's links when signed in) and `body`.
fn layout(title: &str, user: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tokengate registry" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "tokengate registry" }
                    @if let Some(user) = user {
                        a href="/-/web/tokens" { "Tokens" }
                        a href="/-/web/tokens/new" { "Generate new token" }
                        span { "Signed in as " strong { (user) } }
                        form method="post" action="/-/web/logout" style="display:inline" {
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
                script { (PreEscaped(PAGE_SCRIPT)) }
            }
        }
    }
}

fn message_page(status: StatusCode, title: &str, user: Option<&str>, text: &str) -> Response {
    let body = html! {
        p { (text) }
        p { a href="/-/web/tokens" { "Back to your tokens" } }
    };
    page_response(status, layout(title, user, body))
}

fn api_error_page(user: Option<&str>, error: ApiError) -> Response {
    message_page(
        error.status(),
        "Something went wrong",
        user,
        error.message(),
    )
}

/// The gate's refusals, for browsers: a cross-site write is a page that says so; an
/// unusable session sends the browser to log in again; the rest are pages too.
fn refused_page(reason: Reason, under_web: bool) -> axum::http::Response<axum::body::Bytes> {
    let (status, location, text) = match reason {
        Reason::CrossSiteRequest => (StatusCode::FORBIDDEN, None, reason.message()),
        Reason::StoreUnavailable | Reason::SecondFactorUnavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, None, reason.message())
        }
        Reason::ReadOnly | Reason::NotPermitted(_) => {
            (StatusCode::FORBIDDEN, None, reason.message())
        }
        Reason::TooManyFailures => (StatusCode::TOO_MANY_REQUESTS, None, reason.message()),
        _ if under_web => (StatusCode::SEE_OTHER, Some("/-/web/login"), ""),
        _ => (StatusCode::UNAUTHORIZED, None, reason.message()),
    };
    let markup = match location {
        Some(_) => String::new(),
        None => layout(
            "Refused",
            None,
            html! { p.error role="alert" { (text) } p { a href="/-/web/tokens" { "Back to your tokens" } } },
        )
        .into_string(),
    };
    let mut response = axum::http::Response::new(axum::body::Bytes::from(markup));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(location) = location {
        headers.insert(LOCATION, HeaderValue::from_static(location));
        // A session the gate refused is of no more use: forget it.
        headers.insert(SET_COOKIE, clear_cookie(false));
    } else {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    response
}

// ---------------------------------------------------------------------------------------
// Cookies and origins

/// Whether the browser reached us over HTTPS (through a proxy that says so).
fn over_https(headers: &HeaderMap) -> bool {
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

fn clear_cookie(secure: bool) -> HeaderValue {
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
fn own_origin(headers: &HeaderMap) -> Option<String> {
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

#[derive(Deserialize, Default)]
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

fn field_error(id: &str, error: &Option<String>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.error id=(format!("{id}-error")) role="alert" { (error) }
        }
    }
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
async fn login_page(
    Extension(web): Extension<Arc<WebState>>,
    ClientAddress(client): ClientAddress,
    Query(query): Query<LoginQuery>,
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
async fn login(
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
    users::save(state, &user).await?;
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
async fn logout(State(state): State<AppState>, who: Authenticated, headers: HeaderMap) -> Response {
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

// ---------------------------------------------------------------------------------------
// The Tokens page

fn iso(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A time as people read it ("2026-12-01 21:44 UTC", which the page's script turns into
/// the reader's own time zone and format), the exact time on hover; `none` when there is
/// no time.
fn when(at: Option<SystemTime>, none: &str) -> Markup {
    let Some(at) = at else {
        return html! { (none) };
    };
    let exact = iso(at);
    let (day, time) = exact.split_once('T').unwrap_or((&exact, ""));
    let minutes = time.get(..5).unwrap_or(time);
    html! { time datetime=(exact) title=(exact) { (day) " " (minutes) " UTC" } }
}

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
async fn tokens_page(
    State(state): State<AppState>,
    who: Authenticated,
    Query(query): Query<TokensQuery>,
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
        p {
            "Tokens you make here and with " code { "npm token create" } " are the same tokens: each list shows both. "
            a.button href="/-/web/tokens/new" { "Generate new token" }
        }
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

// ---------------------------------------------------------------------------------------
// Generating a token

#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// `read-only`, `read-write` or `granular`.
    #[serde(default)]
    permission: String,
    #[serde(default)]
    packages: String,
    #[serde(default)]
    scopes: String,
    /// For granular tokens: `read-only` or `read-write`.
    #[serde(default)]
    granular_permission: String,
    #[serde(default)]
    cidr: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    bypass_2fa: Option<String>,
    #[serde(default)]
    password: Secret,
    #[serde(default)]
    otp: Secret,
}

/// Errors by field name (`general` for the form as a whole).
type Errors = std::collections::BTreeMap<&'static str, String>;

/// Which field an error message from the token API is about.
fn field_of(message: &str) -> &'static str {
    let lower = message.to_ascii_lowercase();
    if lower.contains("cidr") {
        "cidr"
    } else if lower.starts_with("expires") || lower.contains("expiry") {
        "expires"
    } else if lower.starts_with("packages_and_scopes") || lower.starts_with("readonly") {
        "permission"
    } else if lower.starts_with("packages") || lower.contains("cover no package") {
        "packages"
    } else if lower.starts_with("scopes") {
        "scopes"
    } else if lower.contains("one-time password") || lower.contains("recovery code") {
        "otp"
    } else if lower.contains("password") {
        "password"
    } else if lower.starts_with("invalid name") {
        "name"
    } else if lower.starts_with("invalid description") {
        "description"
    } else {
        "general"
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The request `npm token create` would send for this form.
fn create_request(form: &CreateForm, errors: &mut Errors) -> serde_json::Value {
    let mut request = serde_json::Map::new();
    let name = form.name.trim();
    if !name.is_empty() {
        request.insert("name".into(), name.into());
    }
    let description = form.description.trim();
    if !description.is_empty() {
        request.insert("description".into(), description.into());
    }
    match form.permission.as_str() {
        "read-only" => {
            request.insert("readonly".into(), true.into());
        }
        "read-write" => {}
        "granular"
            if split_list(&form.packages).is_empty() && split_list(&form.scopes).is_empty() =>
        {
            errors.insert(
                "packages",
                "name at least one package or scope, or choose a permission on every package"
                    .into(),
            );
        }
        "granular" => {
            request.insert("packages".into(), split_list(&form.packages).into());
            request.insert("scopes".into(), split_list(&form.scopes).into());
            let permission = match form.granular_permission.as_str() {
                "" => "read-only",
                other => other,
            };
            request.insert("packages_and_scopes_permission".into(), permission.into());
        }
        _ => {
            errors.insert(
                "permission",
                "choose read-only, read and write, or granular".into(),
            );
        }
    }
    let cidr = split_list(&form.cidr);
    if !cidr.is_empty() {
        request.insert("cidr_whitelist".into(), cidr.into());
    }
    let expires = form.expires.trim();
    if !expires.is_empty() {
        match expires.parse::<i64>() {
            Ok(days) => {
                request.insert("expires".into(), days.into());
            }
            Err(_) => {
                errors.insert(
                    "expires",
                    "expires is a number of days from 1 to 3650".into(),
                );
            }
        }
    }
    if form.bypass_2fa.is_some() {
        request.insert("bypass_2fa".into(), true.into());
    }
    serde_json::Value::Object(request)
}

/// `GET /-/web/tokens/new`.
async fn new_page(State(state): State<AppState>, who: Authenticated) -> Response {
    let owner = who.owner().to_owned();
    if let Err(error) = manager(who, Permission::ReadWrite) {
        return api_error_page(Some(&owner), error);
    }
    let ask_code = match has_2fa(&state, &owner).await {
        Ok(ask) => ask,
        Err(error) => return api_error_page(Some(&owner), error),
    };
    let page = NewTokenPage::of(&state, ask_code);
    create_form(&owner, &CreateForm::default(), &Errors::new(), &page)
}

/// What the new-token form says besides the form's own values.
struct NewTokenPage {
    /// The account has 2FA: the form asks for a code.
    ask_code: bool,
    /// What an empty expiry means for a token that can write.
    write_lifetime: Option<std::time::Duration>,
}

impl NewTokenPage {
    fn of(state: &AppState, ask_code: bool) -> Self {
        Self {
            ask_code,
            write_lifetime: state.tokens().write_token_lifetime(),
        }
    }

    /// The expiry field's hint: what leaving it empty gives.
    fn expiry_hint(&self) -> String {
        let writers = match self
            .write_lifetime
            .map(|lifetime| lifetime.as_secs() / 86_400)
        {
            Some(1) => "1 day".to_owned(),
            Some(days) => format!("{days} days"),
            None => "no expiry".to_owned(),
        };
        format!(
            "From 1 to 3650. Empty: {writers} for a token that can publish (this registry's \
             default), no expiry for a read-only one."
        )
    }
}

async fn has_2fa(state: &AppState, owner: &str) -> Result<bool, ApiError> {
    Ok(users::load(state, owner)
        .await?
        .and_then(|user| user.tfa)
        .is_some_and(|tfa| tfa.active()))
}

fn create_form(owner: &str, form: &CreateForm, errors: &Errors, page: &NewTokenPage) -> Response {
    let error = |field: &'static str| field_error(field, &errors.get(field).cloned());
    let described = |field: &str| format!("{field}-hint {field}-error");
    // The least access is the default: more is a choice the person makes.
    let permission = match form.permission.as_str() {
        "" => "read-only",
        other => other,
    };
    let granular = match form.granular_permission.as_str() {
        "" => "read-only",
        other => other,
    };
    let body = html! {
        @if let Some(general) = errors.get("general") { p.error #general-error role="alert" { (general) } }
        @if !errors.is_empty() {
            div.error role="alert" {
                p { "The token was not created:" }
                ul {
                    @for (field, message) in errors.iter().filter(|(field, _)| **field != "general") {
                        li { a href=(format!("#{field}")) { (message) } }
                    }
                }
            }
        }
        form method="post" action="/-/web/tokens/new" novalidate {
            label for="name" { "Name" }
            p.hint #name-hint { "So you can tell this token from others, such as \"CI deploy\"." }
            input #name type="text" name="name" value=(form.name) maxlength="200" aria-describedby=(described("name"));
            (error("name"))

            label for="description" { "Description (optional)" }
            p.hint #description-hint { "What the token is for." }
            textarea #description name="description" rows="2" aria-describedby=(described("description")) { (form.description) }
            (error("description"))

            fieldset #permission aria-describedby="permission-error" {
                legend { "Permission" }
                div { input #perm-ro type="radio" name="permission" value="read-only" checked[permission == "read-only"]; " " label for="perm-ro" { "Read-only: install and view every package" } }
                div { input #perm-rw type="radio" name="permission" value="read-write" checked[permission == "read-write"]; " " label for="perm-rw" { "Read and write: also publish and change every package" } }
                div { input #perm-granular type="radio" name="permission" value="granular" checked[permission == "granular"]; " " label for="perm-granular" { "Granular: only the packages and scopes you name" } }
                (error("permission"))
            // Shown only once Granular is chosen (CSS, no script: `.granular` below).
            div.granular {
            label for="packages" { "Packages" }
            p.hint #packages-hint { "Package names, separated by commas or spaces, such as lodash, @alice/tool." }
            input #packages type="text" name="packages" value=(form.packages) autocapitalize="none" spellcheck="false" aria-describedby=(described("packages"));
            (error("packages"))

            label for="scopes" { "Scopes" }
            p.hint #scopes-hint { "Scopes, such as @alice: every package in them." }
            input #scopes type="text" name="scopes" value=(form.scopes) autocapitalize="none" spellcheck="false" aria-describedby=(described("scopes"));
            (error("scopes"))

            label for="granular_permission" { "Permission on those packages and scopes" }
            select #granular_permission name="granular_permission" {
                option value="read-only" selected[granular == "read-only"] { "read-only" }
                option value="read-write" selected[granular == "read-write"] { "read-write" }
            }
            }
            }

            label for="cidr" { "Allowed IP ranges (CIDR, optional)" }
            p.hint #cidr-hint { "The token works only from these addresses, such as 192.0.2.0/24, 2001:db8::/32. Empty: from anywhere." }
            input #cidr type="text" name="cidr" value=(form.cidr) autocapitalize="none" spellcheck="false" aria-describedby=(described("cidr"));
            (error("cidr"))

            label for="expires" { "Expires after (days, optional)" }
            p.hint #expires-hint { (page.expiry_hint()) }
            input #expires type="number" name="expires" min="1" max="3650" value=(form.expires) aria-describedby=(described("expires"));
            (error("expires"))

            div style="margin-top:1rem" {
                input #bypass_2fa type="checkbox" name="bypass_2fa" value="on" checked[form.bypass_2fa.is_some()];
                " " label for="bypass_2fa" style="display:inline" { "Bypass two-factor authentication (for automation)" }
            }

            label for="password" { "Your password" }
            p.hint #password-hint { "Creating a token needs your password, as npm token create does." }
            input #password type="password" name="password" autocomplete="current-password" aria-describedby=(described("password"));
            (error("password"))

            @if page.ask_code {
                label for="otp" { "One-time password" }
                p.hint #otp-hint { "The code from your authenticator app." }
                input #otp type="text" name="otp" inputmode="numeric" autocomplete="one-time-code" aria-describedby=(described("otp"));
                (error("otp"))
            }
            div { button type="submit" { "Generate token" } }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page_response(status, layout("Generate new token", Some(owner), body))
}

/// `POST /-/web/tokens/new`: the same checks and messages as `npm token create`.
async fn create(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<WebState>>,
    ClientAddress(client): ClientAddress,
    who: Authenticated,
    Form(form): Form<CreateForm>,
) -> Response {
    let owner = who.owner().to_owned();
    let who = match manager(who, Permission::ReadWrite) {
        Ok(who) => who,
        Err(error) => return api_error_page(Some(&owner), error),
    };
    let ask_code = match has_2fa(&state, &owner).await {
        Ok(ask) => ask,
        Err(error) => return api_error_page(Some(&owner), error),
    };
    let page = NewTokenPage::of(&state, ask_code);
    let mut errors = Errors::new();
    let request = create_request(&form, &mut errors);
    let options = match serde_json::from_value::<tokens::CreateRequest>(request) {
        Ok(request) => tokens::options(&request).map_err(|e| e.message().to_owned()),
        Err(error) => Err(format!("invalid request: {error}")),
    };
    let options = match options {
        Ok(options) => Some(options),
        Err(message) => {
            errors.entry(field_of(&message)).or_insert(message);
            None
        }
    };
    // The allow-list is checked before the password and the code are spent.
    let cidr = split_list(&form.cidr);
    if let Err(error) = CidrList::parse(&cidr) {
        errors.entry("cidr").or_insert(error.to_string());
    }
    if form.password.is_empty() {
        errors.insert("password", "password is required to create a token".into());
    }
    let Some(options) = options.filter(|_| errors.is_empty()) else {
        return create_form(&owner, &form, &errors, &page);
    };
    let created = {
        let result = async {
            let password = &form.password;
            let mut verified = users::check_password_and_lock(
                &state,
                who.owner(),
                password,
                client,
                Standing::HoldsToken,
            )
            .await?
            .ok_or_else(ApiError::incorrect_password)?;
            let code = Some(form.otp.trim()).filter(|code| !code.is_empty());
            let sender = crate::security::wrong_codes::Sender::new(Some(who.token_id()), client);
            tfa::verify(&state, &mut verified.user, code, sender).await?;
            Ok::<_, ApiError>(state.tokens().create(who.owner(), options).await?)
        }
        .await;
        match result {
            Ok(created) => created,
            Err(error) if error.status().is_client_error() => {
                let message = error.message().to_owned();
                errors.insert(field_of(&message), message);
                return create_form(&owner, &form, &errors, &page);
            }
            Err(error) => return api_error_page(Some(&owner), error),
        }
    };
    tracing::info!(user = %owner, token_id = %created.listing.id, "token created on the web");
    let key = match random_key() {
        Ok(key) => key,
        Err(error) => return api_error_page(Some(&owner), error),
    };
    let shown = ShownToken {
        owner: owner.clone(),
        token: Zeroizing::new(created.token.expose_secret().to_owned()),
        id: created.listing.id.to_string(),
        name: created
            .listing
            .name
            .clone()
            .unwrap_or_else(|| "(unnamed)".into()),
        at: Instant::now(),
    };
    match web.shown.lock() {
        Ok(mut waiting) => {
            if let Err(error) = prune(&mut waiting, |shown| shown.at) {
                return api_error_page(Some(&owner), error);
            }
            waiting.insert(key.clone(), shown);
        }
        Err(_) => {
            return api_error_page(
                Some(&owner),
                ApiError::internal("the token table", "poisoned"),
            );
        }
    }
    // After the POST, a page of its own that shows the token once: a reload finds it gone.
    redirect(&format!("/-/web/tokens/created/{key}"))
}

/// `GET /-/web/tokens/created/<key>`: the new token, the one time it is shown.
async fn created_page(
    Extension(web): Extension<Arc<WebState>>,
    who: Authenticated,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    let owner = who.owner();
    let shown = web.shown.lock().ok().and_then(|mut waiting| {
        match waiting.get(&key) {
            Some(shown) if shown.owner == owner && shown.at.elapsed() < ONE_SHOT_TTL => {}
            _ => return None,
        }
        waiting.remove(&key)
    });
    let Some(shown) = shown else {
        return message_page(
            StatusCode::GONE,
            "Token already shown",
            Some(owner),
            "A new token is shown once, and this one has been (or the page is too old). If you \
             did not copy it, revoke it on the Tokens page and generate another.",
        );
    };
    let body = html! {
        p.warning role="alert" {
            strong { "Copy your token now." } " It will not be shown again: the registry keeps only a digest of it."
        }
        p { "Token " strong { (shown.name) } " (ID " code { (shown.id) } "):" }
        p #new-token-label { strong { "Your new token" } }
        code #new-token tabindex="0" aria-labelledby="new-token-label" { (shown.token.as_str()) }
        button #copy type="button" { "Copy to clipboard" }
        span #copied role="status" aria-live="polite" {}
        p { "Use it with npm: in a project's " code { ".npmrc" } ", with the token in the " code { "NPM_TOKEN" } " environment variable," }
        pre { code #npmrc { (npmrc_line(&headers)) } }
        p { a href="/-/web/tokens" { "Back to your tokens" } }
        script { (PreEscaped(COPY_SCRIPT)) }
    };
    page_response(StatusCode::OK, layout("Your new token", Some(owner), body))
}

/// The `.npmrc` line that hands npm a token from `NPM_TOKEN` for this registry, at the
/// address the browser reached it by.
fn npmrc_line(headers: &HeaderMap) -> String {
    let registry = own_origin(headers).map_or_else(
        || "//<this registry's host>".to_owned(),
        |origin| {
            origin
                .split_once(':')
                .map_or(origin.clone(), |(_, rest)| rest.to_owned())
        },
    );
    format!("{registry}/:_authToken=${{NPM_TOKEN}}")
}

/// Run on every page: times in the reader's own zone and format (the exact UTC time stays
/// on hover), and password fields emptied when the browser brings a page back from its
/// cache (Back), which `autocomplete` does not stop in Chromium.
const PAGE_SCRIPT: &str = "document.querySelectorAll('time[datetime]').forEach(function(t){\
var d=new Date(t.getAttribute('datetime'));if(!isNaN(d)){t.textContent=d.toLocaleString(undefined,\
{dateStyle:'medium',timeStyle:'short'});}});\
addEventListener('pageshow',function(){document.querySelectorAll('input[type=password]')\
.forEach(function(i){i.value='';});});";

const COPY_SCRIPT: &str = "document.getElementById('copy').addEventListener('click',function(){\
var t=document.getElementById('new-token').textContent,s=document.getElementById('copied');\
function done(){s.textContent='Copied.';}\
if(navigator.clipboard){navigator.clipboard.writeText(t).then(done,function(){s.textContent='Select the token and copy it.';});}\
else{var r=document.createRange();r.selectNodeContents(document.getElementById('new-token'));var w=getSelection();w.removeAllRanges();w.addRange(r);s.textContent='Selected: press Ctrl+C.';}});";

// ---------------------------------------------------------------------------------------
// Revoking a token

/// The owner's live token with this id, if any.
async fn find(state: &AppState, owner: &str, id: &str) -> Result<Option<TokenListing>, ApiError> {
    let mut offset = 0;
    loop {
        let page = state
            .tokens()
            .list(
                owner,
                Page {
                    offset,
                    limit: Page::MAX_LIMIT,
                },
            )
            .await?;
        if let Some(found) = page.tokens.iter().find(|t| t.id.to_string() == id) {
            return Ok(Some(found.clone()));
        }
        offset += page.tokens.len() as u64;
        if page.tokens.is_empty() || offset >= page.total {
            return Ok(None);
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
async fn revoke_page(
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
async fn revoke(
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
