//! What every page shares: the page around it (header, style, and the script every page
//! runs), the headers it is sent with, redirects, message and refusal pages, a form field's
//! error, and how times are shown.

use std::time::SystemTime;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use tokengate::Reason;

use super::session::clear_cookie;
use crate::error::ApiError;

/// Headers every page gets: not cached, not framed, no referrer, scripts only inline.
pub(super) fn page_response(status: StatusCode, markup: Markup) -> Response {
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

pub(super) fn redirect(to: &str) -> Response {
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
header nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center}
header strong{overflow-wrap:anywhere}
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
pre{white-space:pre-wrap}
.actions .button{margin-top:0}
#new-token{display:block;font-size:1.05rem;background:#fff;border:2px solid #233;padding:.6rem;margin:.5rem 0}
nav.pages{display:flex;justify-content:space-between;margin-top:1rem}
.table-wrap{overflow-x:auto;position:relative}
table.tokens,table.members{border-collapse:collapse;width:100%;background:#fff;font-size:.95rem}
table.tokens th,table.tokens td,table.members th,table.members td{border-bottom:1px solid #ddd;padding:.4rem .5rem;text-align:left;vertical-align:middle}
table.tokens thead th,table.members thead th{border-bottom:2px solid #233}
table.tokens tbody th,table.members tbody th{font-weight:600}
form.inline{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;margin:.5rem 0}
form.inline label,form.inline button{margin-top:0}
form.inline input[type=text],form.inline select{width:auto;max-width:100%}
section.team{border:1px solid #ccc;background:#fff;border-radius:4px;padding:.5rem 1rem;margin:1rem 0}
section.team h3{margin:.2rem 0}
.token-id{font-size:.8rem;font-weight:normal;white-space:nowrap}
form:has(#provider-github:checked) .for-provider:not(.for-github),form:has(#provider-gitlab:checked) .for-provider:not(.for-gitlab),form:has(#provider-circleci:checked) .for-provider:not(.for-circleci){display:none}
.publisher h3{font-size:1.1rem;margin:.2rem 0}.publisher form button{margin-top:.5rem}
ul.packages{padding-left:1.2rem}ul.packages li{margin:.3rem 0;overflow-wrap:anywhere}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
@media (max-width:32rem){header{gap:.25rem .6rem;font-size:.9rem}header nav{order:1;flex-basis:100%;gap:.25rem .6rem}header .signed-in-as{display:none}main{padding:.5rem}}
";

/// One page: the header (with the user's links when signed in) and `body`.
pub(super) fn layout(title: &str, user: Option<&str>, body: Markup) -> Markup {
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
                        // At phone width, a row of its own under the brand and Log out.
                        nav aria-label="Your account" {
                            a href="/-/web/tokens" { "Tokens" }
                            a href="/-/web/packages" { "Packages" }
                            // Generating a token is the Tokens page's first button.
                            a href="/-/web/stages" { "Staged releases" }
                            // At phone width only the name, so that the links keep one row.
                            span { span.signed-in-as { "Signed in as " } strong { (user) } }
                        }
                        form method="post" action="/-/web/logout" {
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

pub(super) fn message_page(
    status: StatusCode,
    title: &str,
    user: Option<&str>,
    text: &str,
) -> Response {
    let body = html! {
        p { (text) }
        p { a href="/-/web/tokens" { "Back to your tokens" } }
    };
    page_response(status, layout(title, user, body))
}

pub(super) fn api_error_page(user: Option<&str>, error: ApiError) -> Response {
    message_page(
        error.status(),
        "Something went wrong",
        user,
        error.message(),
    )
}

/// The gate's refusals, for browsers: a cross-site write is a page that says so; an
/// unusable session sends the browser to log in again; the rest are pages too.
pub(super) fn refused_page(
    reason: Reason,
    under_web: bool,
) -> axum::http::Response<axum::body::Bytes> {
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

pub(super) fn field_error(id: &str, error: &Option<String>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.error id=(format!("{id}-error")) role="alert" { (error) }
        }
    }
}

/// A one-line text field with its label, hint and error; `id` is its name too.
pub(super) fn text_field(
    id: &str,
    label: &str,
    hint: &str,
    value: &str,
    error: &Option<String>,
) -> Markup {
    html! {
        label for=(id) { (label) }
        p.hint id=(format!("{id}-hint")) { (hint) }
        input id=(id) type="text" name=(id) value=(value) autocapitalize="none" spellcheck="false" aria-describedby=(format!("{id}-hint {id}-error"));
        (field_error(id, error))
    }
}

/// The one-time-password field of a form that changes something on an account with 2FA:
/// its id is `id`, its name `otp`.
pub(super) fn otp_field(id: &str, error: &Option<String>) -> Markup {
    html! {
        label for=(id) { "One-time password" }
        p.hint id=(format!("{id}-hint")) { "The code from your authenticator app." }
        input id=(id) type="text" name="otp" inputmode="numeric" autocomplete="one-time-code" aria-describedby=(format!("{id}-hint {id}-error"));
        (field_error(id, error))
    }
}

pub(super) fn iso(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A time as people read it ("2026-12-01 21:44 UTC", which the page's script turns into
/// the reader's own time zone and format), the exact time on hover; `none` when there is
/// no time.
pub(super) fn when(at: Option<SystemTime>, none: &str) -> Markup {
    let Some(at) = at else {
        return html! { (none) };
    };
    let exact = iso(at);
    let (day, time) = exact.split_once('T').unwrap_or((&exact, ""));
    let minutes = time.get(..5).unwrap_or(time);
    html! { time datetime=(exact) title=(exact) { (day) " " (minutes) " UTC" } }
}

/// Run on every page: times in the reader's own zone and format (the exact UTC time stays
/// on hover), and password fields emptied when the browser brings a page back from its
/// cache (Back), which `autocomplete` does not stop in Chromium.
const PAGE_SCRIPT: &str = "document.querySelectorAll('time[datetime]').forEach(function(t){\
var d=new Date(t.getAttribute('datetime'));if(!isNaN(d)){t.textContent=d.toLocaleString(undefined,\
{dateStyle:'medium',timeStyle:'short'});}});\
addEventListener('pageshow',function(){document.querySelectorAll('input[type=password]')\
.forEach(function(i){i.value='';});});";
