//! dudect-style timing tests: does comparing digests, or the whole verify step, take
//! longer when more of the digest matches? Prints `max t` per test; |t| under 5 means no
//! leak was detected. Run with `cargo bench --bench constant_time`.

use std::time::Duration;

use dudect_bencher::ctbench::{BenchMetadata, BenchName, BenchOpts, run_benches_console};
use dudect_bencher::rand::RngExt;
use dudect_bencher::{BenchRng, Class, CtRunner};
use tokengate::store::MemoryStore;
use tokengate::{NewToken, PresentedToken, TokenDigest, Tokens};

const SAMPLES: usize = 200_000;

fn random_digest(rng: &mut BenchRng) -> TokenDigest {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes[..]);
    TokenDigest::from_bytes(bytes)
}

/// `digest` with one bit of byte `at` flipped.
fn differing_at(digest: &TokenDigest, at: usize) -> TokenDigest {
    let mut bytes = *digest.as_bytes();
    bytes[at] ^= 0x01;
    TokenDigest::from_bytes(bytes)
}

/// Runs `compare` on pairs whose second digest is built by `left` or `right`.
fn compare_classes(
    runner: &mut CtRunner,
    rng: &mut BenchRng,
    left: fn(&TokenDigest) -> TokenDigest,
    right: fn(&TokenDigest) -> TokenDigest,
) {
    let mut inputs = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let stored = random_digest(rng);
        let (class, presented) = if rng.random::<bool>() {
            (Class::Left, left(&stored))
        } else {
            (Class::Right, right(&stored))
        };
        inputs.push((class, stored, presented));
    }
    for (class, stored, presented) in inputs {
        runner.run_one(class, || stored.verify(&presented));
    }
}

fn compare_equal_vs_first_byte(runner: &mut CtRunner, rng: &mut BenchRng) {
    compare_classes(runner, rng, |d| *d, |d| differing_at(d, 0));
}

fn compare_equal_vs_last_byte(runner: &mut CtRunner, rng: &mut BenchRng) {
    compare_classes(runner, rng, |d| *d, |d| differing_at(d, 31));
}

fn compare_first_vs_last_byte(runner: &mut CtRunner, rng: &mut BenchRng) {
    compare_classes(runner, rng, |d| differing_at(d, 0), |d| differing_at(d, 31));
}

/// The whole verify step through `Tokens` (cache hit, digest compare, refusal) for a
/// presented digest that differs from the stored one in its first byte or its last.
fn verify_step_first_vs_last_byte(runner: &mut CtRunner, rng: &mut BenchRng) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tokens = Tokens::builder(MemoryStore::new())
        .cache_ttl(Duration::from_secs(3600))
        .build();
    let created = rt.block_on(async {
        let created = tokens
            .create("bench", NewToken::read_write())
            .await
            .unwrap();
        tokens
            .authenticate(created.token.expose_secret(), None, tokengate::Action::Read)
            .await
            .unwrap();
        created
    });
    let id = created.token.id();
    let digest = created.token.digest();
    let mut inputs = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let (class, at) = if rng.random::<bool>() {
            (Class::Left, 0)
        } else {
            (Class::Right, 31)
        };
        inputs.push((class, differing_at(&digest, at)));
    }
    for (class, presented) in inputs {
        let presented = PresentedToken {
            id,
            digest: presented,
        };
        runner.run_one(class, || {
            rt.block_on(tokens.authorize(presented, None, tokengate::Action::Read, None))
                .is_err()
        });
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a name given after `--` filters the tests.
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with("--"));
    let tests: [(&'static str, dudect_bencher::ctbench::BenchFn); 4] = [
        ("compare_equal_vs_first_byte", compare_equal_vs_first_byte),
        ("compare_equal_vs_last_byte", compare_equal_vs_last_byte),
        ("compare_first_vs_last_byte", compare_first_vs_last_byte),
        (
            "verify_step_first_vs_last_byte",
            verify_step_first_vs_last_byte,
        ),
    ];
    let benches = tests
        .into_iter()
        .map(|(name, benchfn)| BenchMetadata {
            name: BenchName(name),
            seed: None,
            benchfn,
        })
        .collect();
    let options = BenchOpts {
        filter,
        ..BenchOpts::default()
    };
    run_benches_console(options, benches).expect("the timing tests ran");
}
