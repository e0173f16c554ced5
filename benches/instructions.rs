//! Instructions per request, counted rather than timed, so that the ratio between the
//! layer, the bare service and the floor does not move with the machine's load. Meant to
//! run under valgrind (`benches/instructions.sh` does that and prints the table); alone,
//! `cargo bench --bench instructions` just runs every variant once as a smoke test.
//!
//! `TOKENGATE_VARIANT` picks one of `bare`, `bare_refusal` (a bare service answering with
//! the shape of the layer's refusal), `layer_hot`, `floor`, `malformed`, `missing`;
//! `TOKENGATE_ITERATIONS` says how many requests (0 measures the set-up alone).

mod common;

use std::hint::black_box;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use tokengate::Credentials;
use tokengate::ParsedToken;
use tokengate::store::MemoryStore;
use tokengate::{NewToken, TokenAuthLayer, Tokens};
use tower::{ServiceBuilder, ServiceExt};

use common::{bare, bare_refusal, request};

fn main() {
    let variant = std::env::var("TOKENGATE_VARIANT").ok();
    let iterations: usize = std::env::var("TOKENGATE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let tokens = Tokens::builder(MemoryStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let created = rt
        .block_on(tokens.create("bench", NewToken::read_write()))
        .unwrap();
    let token = created.token.expose_secret().to_owned();
    rt.block_on(tokens.authenticate(&token, None, tokengate::Action::Read))
        .unwrap();
    let hot = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let mut typo = format!("Bearer {token}").into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
    let typo = HeaderValue::from_bytes(&typo).unwrap();
    let gated = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens.clone()))
        .service(bare());
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, hot.clone());
    let floor_map = std::collections::HashMap::from([(created.token.id(), created.token.digest())]);
    let prefix = tokens.prefix().clone();

    let variants = [
        "bare",
        "bare_refusal",
        "layer_hot",
        "floor",
        "malformed",
        "missing",
    ];
    let chosen: Vec<&str> = match variant.as_deref() {
        Some(v) => vec![v],
        None => variants.to_vec(),
    };
    for name in chosen {
        for _ in 0..iterations {
            match name {
                "bare" => {
                    rt.block_on(bare().oneshot(request(Some(&hot)))).unwrap();
                }
                "bare_refusal" => {
                    rt.block_on(bare_refusal().oneshot(request(Some(&typo))))
                        .unwrap();
                }
                "layer_hot" => {
                    let response = rt.block_on(gated.clone().oneshot(request(Some(&hot))));
                    assert!(response.unwrap().status().is_success());
                }
                "malformed" => {
                    rt.block_on(gated.clone().oneshot(request(Some(&typo))))
                        .unwrap();
                }
                "missing" => {
                    rt.block_on(gated.clone().oneshot(request(None))).unwrap();
                }
                "floor" => {
                    let Ok(Credentials::Bearer(token)) =
                        Credentials::from_headers(black_box(&headers))
                    else {
                        unreachable!()
                    };
                    let presented = ParsedToken::parse(&prefix, token).unwrap().presented();
                    let stored = floor_map.get(&presented.id).unwrap();
                    black_box(stored.verify(&presented.digest));
                }
                other => panic!("unknown variant {other}"),
            }
        }
    }
}
