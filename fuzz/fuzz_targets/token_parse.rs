//! The token parser: total on any input, and everything it accepts has the exact shape
//! of a token and survives a second parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate::TokenPrefix;
use tokengate::{MAX_TOKEN_LEN, ParsedToken};

fuzz_target!(|text: &str| {
    let prefix = TokenPrefix::new("npm").unwrap();
    if let Ok(parsed) = ParsedToken::parse(&prefix, text) {
        assert!(text.len() <= MAX_TOKEN_LEN);
        assert_eq!(text.len(), prefix.token_len());
        assert!(text.starts_with("npm_"));
        assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(text[4..].starts_with(parsed.id().as_str()));
        assert_eq!(ParsedToken::parse(&prefix, text).unwrap().id(), parsed.id());
    }
});
