//! The Authorization header reader: never panics, and whatever it accepts is a
//! syntactically valid bearer token taken from the single header.
#![no_main]

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tokengate::{Credentials, MAX_AUTHORIZATION_LEN};

fuzz_target!(|values: Vec<Vec<u8>>| {
    let mut headers = HeaderMap::new();
    for value in &values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(AUTHORIZATION, value);
        }
    }
    if let Ok(Credentials::Bearer(token)) = Credentials::from_headers(&headers) {
        assert_eq!(headers.get_all(AUTHORIZATION).iter().count(), 1);
        let value = headers.get(AUTHORIZATION).unwrap().as_bytes();
        assert!(value.len() <= MAX_AUTHORIZATION_LEN);
        assert!(value[..6].eq_ignore_ascii_case(b"bearer"));
        assert!(value.ends_with(token.as_bytes()));
        assert!(!token.is_empty() && !token.contains(' '));
    }
});
