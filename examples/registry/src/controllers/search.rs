//! `npm search`: `GET /-/v1/search?text=&size=&from=`, in npm's result format, ranked
//! exact name first, then name prefix, then name, then description and keywords; private
//! packages only for those who may read them (the same rule as every other read).

use axum::Json;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tokengate::Authenticated;

use crate::controllers::packages;
use crate::controllers::packages::access;
use crate::error::ApiError;
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
pub struct SearchQuery {
    text: Option<String>,
    size: Option<usize>,
    from: Option<usize>,
}

/// How well a package matches every search term: lower is better; `None` when a term is
/// found nowhere.
fn rank(text: &[String], name: &str, description: &str, keywords: &[String]) -> Option<u8> {
    let mut worst = 0;
    for term in text {
        let here = if name == term {
            0
        } else if name.starts_with(term.as_str()) {
            1
        } else if name.contains(term.as_str()) {
            2
        } else if description.to_lowercase().contains(term.as_str())
            || keywords
                .iter()
                .any(|k| k.to_lowercase().contains(term.as_str()))
        {
            3
        } else {
            return None;
        };
        worst = worst.max(here);
    }
    Some(worst)
}

pub async fn search(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Query(query): Query<SearchQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let terms = terms_of(query.text.as_deref().unwrap_or_default())?;
    let _turn = state
        .search_turns()
        .take(crate::security::search_turns::SEARCH_WAIT)
        .await?;
    let size = query.size.unwrap_or(DEFAULT_SIZE).clamp(1, MAX_SIZE);
    let from = query.from.unwrap_or(0);
    let mut found = Vec::new();
    for name in packages::all_names(&state).await? {
        let Some(package) = access::load(&state, &name).await? else {
            continue;
        };
        if !package.readable_by(who.as_ref(), &name) {
            continue;
        }
        let packument = &package.packument;
        let latest = packument["dist-tags"]["latest"]
            .as_str()
            .unwrap_or_default();
        let manifest = &packument["versions"][latest];
        let description = manifest["description"].as_str().unwrap_or_default();
        let keywords: Vec<String> = manifest["keywords"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let full = name.to_string();
        let Some(rank) = rank(&terms, &full, description, &keywords) else {
            continue;
        };
        let maintainers: Vec<Value> = packument["maintainers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| json!({ "username": m["name"], "email": m["email"] }))
            .collect();
        let publisher = &manifest["_npmUser"];
        let object = json!({
            "package": {
                "name": full,
                "version": latest,
                "description": description,
                "keywords": keywords,
                "date": packument["time"][latest],
                "publisher": { "username": publisher["name"], "email": publisher["email"] },
                "maintainers": maintainers,
                "links": {},
            },
            "score": {
                "final": 1.0,
                "detail": { "quality": 1.0, "popularity": 1.0, "maintenance": 1.0 }
            },
            "searchScore": 1.0 / f64::from(rank + 1),
        });
        found.push((rank, full, object));
    }
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let total = found.len();
    let objects: Vec<Value> = found
        .into_iter()
        .skip(from)
        .take(size)
        .map(|(_, _, object)| object)
        .collect();
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
