//! Shared by the registry's tests.
#![allow(dead_code)]

pub mod client;
pub mod issuer;
pub mod npm;
pub mod registry;

/// Says on stderr that something did not run (`SKIPPED: …`), straight past the test
/// harness's capture so that it is seen without `--nocapture`.
pub fn skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

/// Whether another step runs `test`, one of the suites that drive the real npm CLI
/// (`tests/npm_cli.rs`, `tests/browser.rs`): so says `TOKENGATE_NPM_TESTS_RUN_ELSEWHERE=1`,
/// as `.ci/run` sets it for its second `cargo test`, which would otherwise run them again.
/// Says it skipped when it does; fails when `require` (`TOKENGATE_REQUIRE_NPM` or
/// `TOKENGATE_REQUIRE_BROWSER`) also asks for the test.
pub fn runs_elsewhere(test: &str, require: &str) -> bool {
    const ELSEWHERE: &str = "TOKENGATE_NPM_TESTS_RUN_ELSEWHERE";
    if std::env::var(ELSEWHERE).as_deref() != Ok("1") {
        return false;
    }
    assert!(
        std::env::var(require).as_deref() != Ok("1"),
        "{require}=1 asks for {test}, and {ELSEWHERE}=1 says it runs elsewhere: set one"
    );
    skipped(&format!("{ELSEWHERE}=1 says another step runs {test}"));
    true
}

/// The TOTP secret in an `otpauth://` URL, as an authenticator app would read it.
pub fn totp_from_url(url: &str) -> tokengate::TotpSecret {
    let secret = url
        .split(['?', '&'])
        .find_map(|part| part.strip_prefix("secret="))
        .unwrap_or_else(|| panic!("no secret in {url}"));
    tokengate::TotpSecret::from_bytes(&base32(secret)).unwrap()
}

/// RFC 4648 base32, upper case, padding optional.
fn base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u64, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let index = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("not base32: {text}"));
        value = (value << 5) | index as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
        }
    }
    out
}

/// A code from `secret` that the registry has not seen yet (its step later than `last`),
/// valid for a while yet; waits for the next 30-second step when the usable ones are spent.
pub async fn fresh_code(secret: &tokengate::TotpSecret, last: &mut Option<u64>) -> String {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    loop {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (current, into) = (seconds / 30, seconds % 30);
        // Near the end of a step the current code is about to expire: take the next one.
        let candidates = if into < 25 {
            vec![current, current + 1]
        } else {
            vec![current + 1]
        };
        if let Some(step) = candidates
            .into_iter()
            .find(|step| last.is_none_or(|l| *step > l))
        {
            *last = Some(step);
            let at = UNIX_EPOCH + Duration::from_secs(step * 30);
            return secret.code_at(at).to_string();
        }
        tokio::time::sleep(Duration::from_secs(30 - into)).await;
    }
}
