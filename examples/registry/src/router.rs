//! Every route of the registry, and the gates in front of them.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use tokengate::TokenAuthLayer;

use crate::controllers::packages::{self, access, lifecycle, owners};
use crate::controllers::stage::{self, decide};
use crate::controllers::trust::{exchange, policies};
use crate::controllers::{orgs, profile, search, stars, tokens, users};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web;

/// Largest body of any other request.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Refuses a write to a package before its body is read: anonymous ones with 401, and
/// ones that declare a body over `max_bytes` with 413, so that nobody makes the server
/// parse megabytes only to be told to log in. (The token gate, in front, has already
/// refused read-only tokens and tokens without a grant on the package.)
async fn bounded_package_write(
    max_bytes: usize,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if tokengate::Action::of_method(request.method()) == tokengate::Action::Read {
        return next.run(request).await;
    }
    if request
        .extensions()
        .get::<tokengate::Authenticated>()
        .is_none()
    {
        return ApiError::needs_login().into_response();
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes as u64) {
        return too_large(max_bytes).into_response();
    }
    let mut request = request;
    request
        .extensions_mut()
        .insert(crate::json_body::BodyLimit(max_bytes));
    next.run(request).await
}

fn too_large(max_bytes: usize) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the publish is larger than this registry accepts ({} MiB; see --max-publish-mb)",
            max_bytes / (1024 * 1024)
        ),
    )
}

pub fn router(state: AppState, max_publish_bytes: usize) -> Router {
    let bounded = axum::middleware::from_fn(move |request, next| {
        bounded_package_write(max_publish_bytes, request, next)
    });
    // Logging in is authenticated by the password, so it sits outside the token gate: a
    // stale token in the user's npm config must not stop them logging in again.
    // Logging out proves itself with the whole token in the path; it too sits outside.
    // Trusted publishing's exchange is authenticated by the CI provider's ID token, not
    // one of ours: outside too, with the gates' failure limit in its handler.
    let login = Router::new()
        .route("/-/user/{couch_id}", put(users::login))
        .route("/-/user/token/{token}", delete(users::logout))
        .route(
            "/-/npm/v1/oidc/token/exchange/package/{name}",
            post(exchange::exchange),
        );

    // Everything else: reads are anonymous, anything with a token is held to its rules.
    // Two gates with one failure count: package writes get the second-factor check in
    // the gate, where it fails closed; the rest check codes in their handlers (account
    // changes, and `PUT /<name>`, whose body says whether it is a publish or a star).
    let gate = || {
        TokenAuthLayer::new(state.tokens().clone())
            .optional()
            .trusted_proxies(state.trusted_proxies().clone())
            .limit_failures(state.token_failures().clone())
            .resources(packages::resource_of)
            .request_actions(stage::action_of)
            .npm_responses("registry")
    };
    let package_gate = gate().second_factor({
        let state = state.clone();
        move |request| crate::tfa::package_writes(state.clone(), request)
    });
    let package_routes = Router::new()
        .route("/-/package/{name}/visibility", get(access::get_visibility))
        .route("/-/package/{name}/access", post(access::set_access))
        .route(
            "/-/package/{name}/collaborators",
            get(access::collaborators),
        )
        .route(
            "/{name}/-rev/{rev}",
            put(owners::change).delete(lifecycle::unpublish_all),
        )
        .route(
            "/{name}/-/{file}/-rev/{rev}",
            delete(lifecycle::remove_tarball),
        )
        .route(
            "/{scope}/{name}/-/{file}/-rev/{rev}",
            delete(lifecycle::remove_tarball_scoped),
        )
        .route("/-/package/{name}/dist-tags", get(lifecycle::tags))
        .route(
            "/-/package/{name}/dist-tags/{tag}",
            put(lifecycle::add_tag).delete(lifecycle::remove_tag),
        )
        .route("/{name}/-/{file}", get(packages::tarball))
        .route("/{scope}/{name}/-/{file}", get(packages::tarball_scoped))
        .layer(package_gate);
    let other_routes = Router::new()
        .route("/-/whoami", get(users::whoami))
        .route(
            "/-/ping",
            get(|| async { axum::Json(serde_json::json!({})) }),
        )
        .route("/-/v1/search", get(search::search))
        .route("/-/_view/starredByUser", get(stars::starred_by))
        .route("/-/npm/v1/user", get(profile::get).post(profile::set))
        .route("/-/user/{couch_id}", get(owners::user_profile))
        .route("/-/user/{user}/package", get(access::user_packages))
        .route(
            "/-/org/{org}",
            put(orgs::members::create)
                .get(orgs::organisation::show)
                .patch(orgs::organisation::update)
                .delete(orgs::organisation::remove),
        )
        .route(
            "/-/org/{org}/user",
            put(orgs::members::set)
                .delete(orgs::members::remove)
                .get(orgs::members::list),
        )
        .route(
            "/-/org/{org}/team",
            put(orgs::teams::create).get(orgs::teams::list),
        )
        .route("/-/org/{org}/package", get(orgs::teams::org_packages))
        .route("/-/team/{org}/{team}", delete(orgs::teams::destroy))
        .route(
            "/-/team/{org}/{team}/user",
            put(orgs::teams::add_member)
                .delete(orgs::teams::remove_member)
                .get(orgs::teams::members),
        )
        .route(
            "/-/team/{org}/{team}/package",
            put(orgs::teams::grant)
                .delete(orgs::teams::revoke)
                .get(orgs::teams::packages),
        )
        // Their second factor is asked for in the handlers, whatever the account's mode.
        .route(
            "/-/package/{name}/trust",
            get(policies::list).post(policies::create),
        )
        .route("/-/package/{name}/trust/{id}", delete(policies::revoke))
        // Staging never asks for a code; approving and rejecting do, in their handlers.
        .route(
            "/-/stage/package/{name}",
            post(stage::upload)
                .layer(DefaultBodyLimit::max(max_publish_bytes))
                .route_layer(bounded.clone()),
        )
        .route(
            "/-/package/{name}/staging",
            get(stage::rule::get).put(stage::rule::set),
        )
        .route("/-/stage", get(stage::list))
        .route("/-/stage/{id}", get(stage::view).delete(decide::reject))
        .route("/-/stage/{id}/tarball", get(stage::tarball))
        .route("/-/stage/{id}/approve", post(decide::approve))
        .route("/-/npm/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/-/npm/v1/tokens/token/{key}", delete(tokens::revoke))
        .route(
            "/{name}",
            get(packages::packument)
                .put(packages::put)
                .layer(DefaultBodyLimit::max(max_publish_bytes))
                .route_layer(bounded.clone()),
        )
        .route(
            "/{scope}/{name}",
            get(packages::packument_scoped)
                .put(packages::put_scoped)
                .layer(DefaultBodyLimit::max(max_publish_bytes))
                .route_layer(bounded),
        )
        .layer(gate());
    let gated = package_routes.merge(other_routes);

    Router::new()
        .merge(login)
        .merge(gated)
        // The web pages and npm's browser login, with a gate of their own (web.rs).
        .merge(web::router(&state))
        // Before the gates: an unknown option is refused whoever asks.
        .layer(axum::middleware::from_fn(crate::query::refuse_unread))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
