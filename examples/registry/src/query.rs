//! Query parameters. A route reads the ones its handler names and refuses the rest with a
//! 400 that names the parameter, so that a misspelt or unsupported option is never
//! silently ignored: [`KnownQuery`] for the routes that read a query (their types refuse
//! unknown fields), and [`refuse_unread`] in front of every route, which refuses any query
//! on a route that reads none. A route is one that reads none unless it is listed here,
//! so a new route refuses queries until its handler reads them.

use axum::extract::{FromRequestParts, MatchedPath, Query, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The routes whose handlers read their query through a [`KnownQuery`].
const READ_BY_HANDLER: &[&str] = &[
    "/-/v1/search",
    "/-/_view/starredByUser",
    "/-/npm/v1/tokens",
    "/-/stage",
    "/-/org/{org}/team",
    "/-/team/{org}/{team}/user",
    "/-/v1/done",
    "/-/web/login",
    "/-/web/tokens",
    "/-/web/packages/{name}",
    "/-/web/stages",
];

/// The reads npm makes before a write (`npm owner`, `deprecate`, `unpublish`, `star`, and
/// the profile update after a conflict) carry `?write=true`, asking for a fresh copy.
/// Every read here is fresh, so `write=true` (or `false`) asks for nothing more.
const WRITE_READS: &[&str] = &["/{name}", "/{scope}/{name}", "/-/user/{couch_id}"];

/// Refuses a query on a route that reads none (see the module's documentation).
pub async fn refuse_unread(request: Request, next: Next) -> Response {
    let Some(query) = request.uri().query().filter(|query| !query.is_empty()) else {
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let accepted = match route {
        Some(route) if READ_BY_HANDLER.contains(&route) => true,
        Some(route) if WRITE_READS.contains(&route) => only_write_flags(query),
        // Not a route: the fallback answers.
        None => true,
        Some(_) => false,
    };
    if accepted {
        return next.run(request).await;
    }
    let name = query
        .split('&')
        .map(|pair| pair.split('=').next().unwrap_or_default())
        .find(|name| *name != "write")
        .unwrap_or("write");
    ApiError::bad_request(format!(
        "unknown query parameter {:?}: {} takes none{}",
        name.chars().take(32).collect::<String>(),
        request.uri().path().chars().take(128).collect::<String>(),
        if WRITE_READS.contains(&route.unwrap_or_default()) {
            " but write=true"
        } else {
            ""
        }
    ))
    .into_response()
}

/// Whether every parameter is `write=true` or `write=false`.
fn only_write_flags(query: &str) -> bool {
    query
        .split('&')
        .all(|pair| matches!(pair, "write=true" | "write=false"))
}

/// A query its type reads whole: an unknown parameter, or a value of the wrong kind, is a
/// 400 that names it, in the registry's JSON error shape. Its types say
/// `#[serde(deny_unknown_fields)]`.
pub struct KnownQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for KnownQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(query)) => Ok(Self(query)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "invalid query: {}",
                rejection
                    .body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::only_write_flags;

    #[test]
    fn a_read_before_a_write_says_write_and_nothing_else() {
        struct Case {
            name: &'static str,
            query: &'static str,
            accepted: bool,
        }
        let cases = [
            Case {
                name: "npm's",
                query: "write=true",
                accepted: true,
            },
            Case {
                name: "false",
                query: "write=false",
                accepted: true,
            },
            Case {
                name: "another value",
                query: "write=yes",
                accepted: false,
            },
            Case {
                name: "beside another",
                query: "write=true&full=1",
                accepted: false,
            },
            Case {
                name: "another alone",
                query: "full=1",
                accepted: false,
            },
        ];
        for case in cases {
            assert_eq!(only_write_flags(case.query), case.accepted, "{}", case.name);
        }
    }
}
