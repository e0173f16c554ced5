//! Where a token may come from besides `Authorization: Bearer`: a named cookie, and the
//! same-origin check every write made with a cookie-borne token must pass.

use http::HeaderMap;
use http::header::{COOKIE, HOST, ORIGIN};

/// `Sec-Fetch-Site`, the header browsers send to say where a request came from.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// A cookie that carries a token, and the origins whose pages may write with it.
#[derive(Clone, Debug)]
pub(crate) struct CookieSource {
    /// The cookie's name.
    pub(crate) name: String,
    /// Origins (`scheme://host[:port]`) a cookie write may come from; empty: the
    /// request's own `Host`, over http or https.
    pub(crate) origins: Vec<String>,
}

impl CookieSource {
    /// The token in this cookie, when the request carries it (the first non-empty one).
    pub(crate) fn token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        // `allowed_origin` alone names no cookie.
        if self.name.is_empty() {
            return None;
        }
        cookie_value(headers, &self.name)
    }
}

/// The value of the first non-empty cookie called `name` in the `Cookie` headers.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| key.trim() == name && !value.trim().is_empty())
        .map(|(_, value)| value.trim().trim_matches('"'))
}

/// Whether a browser request came from the site's own pages: the check a write made with
/// a cookie-borne token must pass (a defence against cross-site request forgery).
///
/// - `Sec-Fetch-Site` present (every current browser sends it): only `same-origin` passes.
/// - Otherwise `Origin` must be present and equal one of `allowed_origins` exactly, or,
///   when that list is empty, name the request's own `Host` (over `http` or `https`).
/// - Neither header: refused, since nothing shows where the request came from.
///   (`Origin: null`, sent by sandboxed and privacy-sensitive contexts, is refused too.)
///
/// ```
/// use http::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("host", HeaderValue::from_static("127.0.0.1:4873"));
/// assert!(!tokengate::same_origin(&headers, &[]));
/// headers.insert("origin", HeaderValue::from_static("http://127.0.0.1:4873"));
/// assert!(tokengate::same_origin(&headers, &[]));
/// headers.insert("origin", HeaderValue::from_static("https://evil.example"));
/// assert!(!tokengate::same_origin(&headers, &[]));
/// headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
/// assert!(tokengate::same_origin(&headers, &[]));
/// ```
pub fn same_origin(headers: &HeaderMap, allowed_origins: &[String]) -> bool {
    let mut fetch_site = headers.get_all(SEC_FETCH_SITE).iter();
    if let Some(site) = fetch_site.next() {
        return fetch_site.next().is_none() && site.as_bytes() == b"same-origin";
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    let (Some(origin), None) = (origins.next(), origins.next()) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if !allowed_origins.is_empty() {
        return allowed_origins.iter().any(|allowed| allowed == origin);
    }
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(host), None) => {
            !authority.is_empty() && host.as_bytes().eq_ignore_ascii_case(authority.as_bytes())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = headers(&[("cookie", "a=1; tg_session=npm_x; b=2")]);
        assert_eq!(cookie_value(&h, "tg_session"), Some("npm_x"));
        assert_eq!(cookie_value(&h, "tg"), None);
        let h = headers(&[
            ("cookie", "tg_session=; x=y"),
            ("cookie", "tg_session=npm_y"),
        ]);
        assert_eq!(cookie_value(&h, "tg_session"), Some("npm_y"));
        assert_eq!(cookie_value(&headers(&[]), "tg_session"), None);
    }

    #[test]
    fn same_origin_table() {
        type Case = (&'static [(&'static str, &'static str)], bool);
        let cases: &[Case] = &[
            (&[("sec-fetch-site", "same-origin")], true),
            (&[("sec-fetch-site", "same-site")], false),
            (
                &[
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "http://127.0.0.1:4873"),
                ],
                false,
            ),
            (&[("sec-fetch-site", "none")], false),
            (&[("origin", "http://127.0.0.1:4873")], true),
            (&[("origin", "https://127.0.0.1:4873")], true),
            (&[("origin", "http://127.0.0.1:4874")], false),
            (&[("origin", "null")], false),
            (&[("origin", "http://")], false),
            (&[], false),
        ];
        for (extra, expected) in cases {
            let mut h = headers(&[("host", "127.0.0.1:4873")]);
            for (name, value) in *extra {
                h.append(*name, HeaderValue::from_static(value));
            }
            assert_eq!(same_origin(&h, &[]), *expected, "{extra:?}");
        }
        let allowed = vec!["https://registry.example".to_owned()];
        let h = headers(&[
            ("host", "127.0.0.1:4873"),
            ("origin", "https://registry.example"),
        ]);
        assert!(same_origin(&h, &allowed));
        let h = headers(&[
            ("host", "127.0.0.1:4873"),
            ("origin", "http://127.0.0.1:4873"),
        ]);
        assert!(
            !same_origin(&h, &allowed),
            "a configured list replaces the Host rule"
        );
    }
}
