//! The page that shows a new token, once.

use std::sync::Arc;

use axum::Extension;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{PreEscaped, html};
use tokengate::Authenticated;

use crate::web::layout::{layout, message_page, page_response};
use crate::web::session::own_origin;
use crate::web::{ONE_SHOT_TTL, WebState};

/// `GET /-/web/tokens/created/<key>`: the new token, the one time it is shown.
pub(crate) async fn created_page(
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
    let npmrc = npmrc_line(&headers);
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
        // On a narrow screen the line wraps (`pre-wrap`), best after the address.
        pre {
            code #npmrc {
                @match npmrc.split_once("/:") {
                    Some((address, setting)) => { (address) "/:" wbr; (setting) }
                    None => (npmrc),
                }
            }
        }
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

const COPY_SCRIPT: &str = "document.getElementById('copy').addEventListener('click',function(){\
var t=document.getElementById('new-token').textContent,s=document.getElementById('copied');\
function done(){s.textContent='Copied.';}\
if(navigator.clipboard){navigator.clipboard.writeText(t).then(done,function(){s.textContent='Select the token and copy it.';});}\
else{var r=document.createRange();r.selectNodeContents(document.getElementById('new-token'));var w=getSelection();w.removeAllRanges();w.addRange(r);s.textContent='Selected: press Ctrl+C.';}});";
