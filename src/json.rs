//! The one JSON shape this crate writes itself: `{"error":"<message>"}`.

use std::fmt::Write;

/// `{"error":"<message>"}`, with the message escaped as a JSON string.
pub(crate) fn error_body(message: &str) -> String {
    let mut body = String::with_capacity(message.len() + 12);
    body.push_str("{\"error\":\"");
    for c in message.chars() {
        match c {
            '"' => body.push_str("\\\""),
            '\\' => body.push_str("\\\\"),
            '\n' => body.push_str("\\n"),
            '\r' => body.push_str("\\r"),
            '\t' => body.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(body, "\\u{:04x}", u32::from(c));
            }
            c => body.push(c),
        }
    }
    body.push_str("\"}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_a_json_parser() {
        for message in [
            "plain",
            "quote \" and \\ back",
            "line\nbreak\ttab\r\u{1}",
            "名前 🦀",
        ] {
            let parsed: serde_json::Value = serde_json::from_str(&error_body(message)).unwrap();
            assert_eq!(parsed["error"], message);
        }
    }
}
