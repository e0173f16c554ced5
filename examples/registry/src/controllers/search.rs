//! `npm search`: `GET /-/v1/search?text=&size=&from=`, in npm's result format, ranked
//! exact name first, then name prefix, then name, then description and keywords (by name
//! within each), from the database's indexes. Private packages are found for their
//! maintainers through tokens that may read every package of theirs, and each hit is held
//! to the read rule as well.
//!
//! A search reads only what its page needs, so that it costs about the same however many
//! packages match: `total` is the number of matching packages the asker may see, exact up
//! to `COUNTED` and `COUNTED` itself ("at least that many") past it. Pages start at
//! most at `MAX_FROM`, and past the count they still hold the next matches in rank
//! order.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tokengate::Authenticated;

use crate::controllers::packages::PackageName;
use crate::controllers::packages::access;
use crate::error::ApiError;
use crate::query::KnownQuery;
use crate::state::AppState;

/// npm's default page, and the most one page may hold.
const DEFAULT_SIZE: usize = 20;
const MAX_SIZE: usize = 250;

/// Most search terms, and most bytes of search text: each term is looked for in every
/// package, so the work grows with both.
pub const MAX_TERMS: usize = 8;
pub const MAX_TEXT_BYTES: usize = 256;

/// The search terms of `text`, lower-cased, or what is wrong with them.
fn terms_of(text: &str) -> Result<Vec<String>, ApiError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::bad_request(format!(
            "search text is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    let terms: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    if terms.len() > MAX_TERMS {
        return Err(ApiError::bad_request(format!(
            "search for at most {MAX_TERMS} words at once"
        )));
    }
    Ok(terms)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    text: Option<String>,
    size: Option<usize>,
    from: Option<usize>,
    /// The weights npm's CLI always sends (`--searchopts`); npm's own registry no longer
    /// ranks by them, and neither does this one (hits go by how well the name matches),
    /// so they are read as numbers and change nothing.
    #[serde(default, rename = "quality")]
    _quality: Option<f64>,
    #[serde(default, rename = "popularity")]
    _popularity: Option<f64>,
    #[serde(default, rename = "maintenance")]
    _maintenance: Option<f64>,
}

/// How well a name matches every search term, as the database orders hits: 0 for the
/// exact name, 1 for a prefix, 2 for a part of the name, 3 for the text only.
fn rank(terms: &[String], name: &str) -> u8 {
    terms
        .iter()
        .map(|term| {
            if name == term {
                0
            } else if name.starts_with(term.as_str()) {
                1
            } else if name.contains(term.as_str()) {
                2
            } else {
                3
            }
        })
        .max()
        .unwrap_or(0)
}

/// Where the deepest page may start: a page is read rank by rank through the indexes,
/// and paging far reads every package before it.
const MAX_FROM: usize = 10_000;

/// The most matches a search counts: up to it `total` is exact, past it `total` is this
/// many, meaning "at least". Counting costs a read of each match, so it stops at the
/// largest page; npm's CLI reads only `objects`, and every page up to [`MAX_FROM`] is
/// there whatever `total` says.
const COUNTED: usize = MAX_SIZE;

pub async fn search(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    KnownQuery(query): KnownQuery<SearchQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let terms = terms_of(query.text.as_deref().unwrap_or_default())?;
    let turn = state
        .search_turns()
        .take(crate::security::search_turns::SEARCH_WAIT)
        .await?;
    let size = query.size.unwrap_or(DEFAULT_SIZE).clamp(1, MAX_SIZE);
    let from = query.from.unwrap_or(0).min(MAX_FROM);
    // Only a token that may read every package of its owner's finds their private ones:
    // hits dropped after the query for a narrower token would still be counted in
    // `total`, which would spell out their names a letter at a time.
    let reader = who
        .as_ref()
        .filter(|who| {
            who.grants()
                .on_everything()
                .is_some_and(|permission| permission.allows(tokengate::Action::Read))
        })
        .map(Authenticated::owner);
    let page = state
        .db()
        .search(
            &crate::db::SearchQuery {
                terms: &terms,
                from,
                size,
                reader,
                counted: COUNTED,
            },
            Some(turn),
        )
        .await?;
    let objects: Vec<Value> = page
        .hits
        .into_iter()
        .filter_map(|hit| {
            let name = PackageName::parse(&hit.name).ok()?;
            // The query found the reader's own private packages; their token decides.
            access::visible(hit.visibility, true, who.as_ref(), &name).then(|| {
                let rank = rank(&terms, &hit.name);
                json!({
                    "package": {
                        "name": hit.name,
                        "version": hit.version,
                        "description": hit.description,
                        "keywords": hit.keywords,
                        "date": hit.summary["date"],
                        "publisher": hit.summary["publisher"],
                        "maintainers": hit.summary["maintainers"],
                        "links": {},
                    },
                    "score": {
                        "final": 1.0,
                        "detail": { "quality": 1.0, "popularity": 1.0, "maintenance": 1.0 }
                    },
                    "searchScore": 1.0 / f64::from(rank + 1),
                })
            })
        })
        .collect();
    let total = page.total;
    let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    Ok(Json(
        json!({ "objects": objects, "total": total, "time": time }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_held_to_its_limits() {
        struct Case {
            name: &'static str,
            text: String,
            refused: bool,
        }
        let cases = [
            Case {
                name: "eight words",
                text: "a b c d e f g h".into(),
                refused: false,
            },
            Case {
                name: "nine words",
                text: "a b c d e f g h i".into(),
                refused: true,
            },
            Case {
                name: "256 bytes",
                text: "x".repeat(MAX_TEXT_BYTES),
                refused: false,
            },
            Case {
                name: "257 bytes",
                text: "x".repeat(MAX_TEXT_BYTES + 1),
                refused: true,
            },
        ];
        for case in cases {
            assert_eq!(terms_of(&case.text).is_err(), case.refused, "{}", case.name);
        }
    }
}
