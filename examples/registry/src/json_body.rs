//! Large JSON bodies (publishes, up to `--max-publish-mb`) read without letting their
//! shape decide the server's memory: the bytes are scanned once for how many values they
//! hold and how deep they nest before anything is parsed, then parsed into typed structs
//! that borrow their long strings (a tarball's base64) from the body itself.
//!
//! Why: a 64 MiB body of `[0,0,0,…]` is 32 million values, which `serde_json::Value`
//! spends about 32 bytes each on: a gigabyte from one request.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::Deserialize;

use crate::error::ApiError;

/// Most values (objects, arrays, strings, numbers, literals) one body may hold. A publish
/// of one version of a large package holds a few thousand; a deprecation of every version
/// of a package with a thousand versions, a few hundred thousand.
pub const MAX_VALUES: usize = 250_000;

/// Deepest a body may nest objects and arrays.
pub const MAX_DEPTH: usize = 64;

/// A JSON request body within [`MAX_VALUES`] and [`MAX_DEPTH`], not parsed yet, read into
/// one buffer of at most the route's [`BodyLimit`].
pub struct JsonBytes(pub Bytes);

/// The largest body a route reads into a [`JsonBytes`], put in the request by the route's
/// middleware. A route without one refuses every body: no limit, no entry.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || mime.to_ascii_lowercase().ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::bad_request(
                "invalid request body: expected `Content-Type: application/json`",
            ));
        }
        let _ = state;
        let Some(&BodyLimit(limit)) = request.extensions().get::<BodyLimit>() else {
            return Err(ApiError::internal(
                "cannot read the request body",
                "this route sets no body limit",
            ));
        };
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large: it is over the registry's limit",
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        if declared.is_some_and(|declared| declared > limit) {
            return Err(too_large());
        }
        // One buffer, no chunk list copied into a second one. It grows to four times what
        // has arrived, up to the declared length: a slow client that declares 64 MiB and
        // sends little gets little memory, and the last growth copies a quarter at most.
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(64 * 1024));
        let mut body = request.into_body();
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            let frame = frame
                .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                let needed = bytes.len() + data.len();
                if needed > limit {
                    return Err(too_large());
                }
                if needed > bytes.capacity() {
                    let declared = declared.unwrap_or(limit).max(needed);
                    let grown = needed.saturating_mul(4).min(declared).min(limit);
                    bytes.reserve_exact(grown - bytes.len());
                }
                bytes.extend_from_slice(&data);
            }
        }
        check_shape(&bytes, MAX_VALUES, MAX_DEPTH)?;
        Ok(Self(Bytes::from(bytes)))
    }
}

impl JsonBytes {
    /// The body as `T`, which may borrow from it.
    ///
    /// # Errors
    ///
    /// 400 naming what is wrong: not JSON, or a field of the wrong type, missing or unknown.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.0).map_err(|error| {
            if error.is_data() {
                ApiError::bad_request(format!("invalid request body: {error}"))
            } else {
                ApiError::bad_request("invalid request body: not valid JSON")
            }
        })
    }
}

/// Counts the values in `bytes` (an upper bound: every `,` `:` `[` `{` outside strings
/// starts one, and so does the first) and their nesting, without parsing or allocating.
/// It does not check that the bytes are JSON; the parser does that afterwards.
fn check_shape(bytes: &[u8], max_values: usize, max_depth: usize) -> Result<(), ApiError> {
    let mut values = 1usize;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                values += 1;
                if depth > max_depth {
                    return Err(ApiError::bad_request(format!(
                        "invalid request body: it nests deeper than {max_depth} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' | b':' => values += 1,
            _ => {}
        }
        if values > max_values {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "invalid request body: it holds more than {max_values} JSON values, more \
                     than any publish needs"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(limit: Option<usize>, body: &'static str) -> Result<JsonBytes, ApiError> {
        // No Content-Length: the limit holds for a body that does not declare its size.
        let mut request = Request::builder()
            .method("PUT")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        if let Some(limit) = limit {
            request.extensions_mut().insert(BodyLimit(limit));
        }
        JsonBytes::from_request(request, &()).await
    }

    fn status_of(read: Result<JsonBytes, ApiError>) -> StatusCode {
        read.map_or_else(|error| error.status(), |_| StatusCode::OK)
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_its_routes_limit_and_no_further() {
        let at = status_of(read(Some(10), "[1,2,3,45]").await);
        assert_eq!(at, StatusCode::OK, "ten bytes at a limit of ten");
        let past = status_of(read(Some(10), "[1,2,3,456]").await);
        assert_eq!(past, StatusCode::PAYLOAD_TOO_LARGE, "eleven");
        let unlimited = status_of(read(None, "[1]").await);
        assert_eq!(
            unlimited,
            StatusCode::INTERNAL_SERVER_ERROR,
            "no limit, no entry"
        );
    }

    struct Case {
        name: &'static str,
        body: String,
        refused: bool,
    }

    #[test]
    fn bodies_are_refused_past_the_value_and_depth_limits() {
        // Limits of 10 values and 3 levels, so that the cases stay readable.
        let cases = [
            Case {
                name: "an object of a few fields",
                body: r#"{"a":1,"b":[1,2]}"#.into(),
                refused: false,
            },
            Case {
                name: "commas and brackets inside strings do not count",
                body: r#"{"a":"[[[[,,,,,,,,,,,,::::{{{{","b":"\"[,"}"#.into(),
                refused: false,
            },
            Case {
                name: "exactly ten values",
                body: "[1,2,3,4,5,6,7,8,9]".into(),
                refused: false,
            },
            Case {
                name: "one value past the limit",
                body: "[1,2,3,4,5,6,7,8,9,10]".into(),
                refused: true,
            },
            Case {
                name: "three levels deep",
                body: "[[[1]]]".into(),
                refused: false,
            },
            Case {
                name: "four levels deep",
                body: "[[[[1]]]]".into(),
                refused: true,
            },
            Case {
                name: "an escaped backslash ends before the quote",
                body: r#"["\\",[[[1]]]]"#.into(),
                refused: true,
            },
        ];
        for case in cases {
            let refused = check_shape(case.body.as_bytes(), 10, 3).is_err();
            assert_eq!(refused, case.refused, "{}", case.name);
        }
    }
}
