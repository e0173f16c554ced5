//! The layer's hot path against the floor, the bare service and tower-http's bearer check,
//! all in one run so that the ratios between them mean something. See BENCHMARKS.md.

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use tokengate::Credentials;
use tokengate::ParsedToken;
use tokengate::store::{MemoryStore, Page, RecordPage, StoreError, TokenStore};
use tokengate::{
    FailureLimit, NewToken, TokenAuthLayer, TokenDigest, TokenId, TokenRecord, Tokens,
};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::validate_request::ValidateRequestHeaderLayer;

use common::{bare, bare_refusal, bearer, request};

const POPULATION: usize = 100_000;
/// Made-up tokens in the flood of variant 10.
const FLOOD: usize = 10_000;

/// The registry's limit: 50 failures a minute per address.
fn flood_limit() -> FailureLimit {
    FailureLimit::new(50, Duration::from_secs(60))
}

/// Well-formed tokens (right prefix, length and checksum) that no store here holds: made
/// by another manager, as a guesser who knows the format would make them.
async fn made_up_tokens(count: usize) -> Vec<http::HeaderValue> {
    let elsewhere = Tokens::builder(MemoryStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let mut made_up = Vec::with_capacity(count);
    for _ in 0..count {
        let created = elsewhere
            .create("elsewhere", NewToken::read_write())
            .await
            .unwrap();
        made_up.push(bearer(created.token.expose_secret()));
    }
    made_up
}

/// A memory store that counts the records asked for.
#[derive(Clone, Default)]
struct CountingStore {
    inner: MemoryStore,
    gets: Arc<AtomicUsize>,
}

impl CountingStore {
    fn lookups(&self) -> usize {
        self.gets.load(Ordering::Relaxed)
    }
}

impl TokenStore for CountingStore {
    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(id).await
    }

    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }

    async fn list(&self, owner: &str, page: Page) -> Result<RecordPage, StoreError> {
        self.inner.list(owner, page).await
    }

    async fn revoke(&self, id: TokenId, at: SystemTime) -> Result<bool, StoreError> {
        self.inner.revoke(id, at).await
    }
}

/// A cheap, deterministic walk over the population.
struct Picker(AtomicUsize);

impl Picker {
    fn next(&self, len: usize) -> usize {
        let x = self.0.fetch_add(0x9E37_79B9, Ordering::Relaxed);
        (x.wrapping_mul(2_654_435_761)) % len
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // One store, one manager, 100,000 live tokens, every one looked up once (cache warm).
    let store = MemoryStore::new();
    let tokens = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .cache_capacity(2 * POPULATION as u64)
        .cache_ttl(Duration::from_secs(3600))
        .build();
    let mut population = Vec::with_capacity(POPULATION);
    // The floors' map holds the records themselves, as the store returns them: entries of
    // the real size, so that a random key costs the floor the memory traffic it costs us.
    let mut floor_map: HashMap<TokenId, TokenRecord> = HashMap::with_capacity(POPULATION);
    rt.block_on(async {
        for _ in 0..POPULATION {
            let created = tokens
                .create("bench", NewToken::read_write())
                .await
                .unwrap();
            let token = created.token.expose_secret();
            tokens
                .authenticate(token, None, tokengate::Action::Read)
                .await
                .unwrap();
            let record = store.get(created.token.id()).await.unwrap().unwrap();
            floor_map.insert(created.token.id(), record);
            population.push(bearer(token));
        }
    });
    let hot = population[0].clone();
    let hot_text = hot.to_str().unwrap()["Bearer ".len()..].to_owned();
    let population = Arc::new(population);
    let picker = Arc::new(Picker(AtomicUsize::new(0)));
    let gated = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens.clone()))
        .service(bare());

    let mut group = c.benchmark_group("hot_path");

    // 1. The bare inner service.
    group.bench_function("1_bare_service", |b| {
        let service = bare();
        b.to_async(&rt)
            .iter(|| service.clone().oneshot(request(Some(&hot))));
    });

    // 2. The layer, cache hit, one hot token.
    group.bench_function("2_layer_hot_token", |b| {
        b.to_async(&rt)
            .iter(|| gated.clone().oneshot(request(Some(&hot))));
    });

    // 1b. A bare service whose every answer has the shape of the layer's refusal.
    group.bench_function("1b_bare_refusal_shape", |b| {
        let service = bare_refusal();
        b.to_async(&rt)
            .iter(|| service.clone().oneshot(request(Some(&hot))));
    });

    // 3. The layer, cache hit, a token drawn from 100,000.
    let draw = Picker(AtomicUsize::new(0));
    group.bench_function("3_layer_random_of_100k", |b| {
        b.to_async(&rt).iter(|| {
            let value = &population[draw.next(POPULATION)];
            gated.clone().oneshot(request(Some(value)))
        });
    });

    // 4. The floor: header parse + SHA-256 + one HashMap lookup + 32-byte compare.
    let prefix = tokens.prefix().clone();
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, hot.clone());
    group.bench_function("4_floor", |b| {
        b.iter(|| {
            let Ok(Credentials::Bearer(token)) = Credentials::from_headers(black_box(&headers))
            else {
                unreachable!()
            };
            let presented = ParsedToken::parse(&prefix, token).unwrap().presented();
            let stored = floor_map.get(&presented.id).unwrap();
            black_box(stored.digest.verify(&presented.digest))
        });
    });

    // 4b. The same floor with the keys variant 3 draws, in the same order: the header is
    // picked from the population, as variant 3 picks it.
    let draw = Picker(AtomicUsize::new(0));
    group.bench_function("4b_floor_random_of_100k", |b| {
        b.iter(|| {
            let value = &population[draw.next(POPULATION)];
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.clone());
            let Ok(Credentials::Bearer(token)) = Credentials::from_headers(black_box(&headers))
            else {
                unreachable!()
            };
            let presented = ParsedToken::parse(&prefix, token).unwrap().presented();
            let stored = floor_map.get(&presented.id).unwrap();
            black_box(stored.digest.verify(&presented.digest))
        });
    });

    // 5. What a user would pick instead: tower-http's bearer check on the same service.
    #[allow(deprecated)]
    let tower_http = ServiceBuilder::new()
        .layer(ValidateRequestHeaderLayer::bearer(&hot_text))
        .service(bare());
    group.bench_function("5_tower_http_bearer", |b| {
        b.to_async(&rt)
            .iter(|| tower_http.clone().oneshot(request(Some(&hot))));
    });

    // 6a. Cache miss served by the memory store (entries expire at once).
    let uncached = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .cache_ttl(Duration::ZERO)
        .build();
    let missing = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(uncached))
        .service(bare());
    group.bench_function("6a_cache_miss_memory_store", |b| {
        b.to_async(&rt)
            .iter(|| missing.clone().oneshot(request(Some(&hot))));
    });

    // 6b. 1,000 concurrent first requests for one token, on a cold cache each time.
    group.sample_size(20);
    group.bench_function("6b_1000_concurrent_first_requests", |b| {
        b.to_async(&multi).iter(|| {
            let fresh = Tokens::builder(store.clone())
                .prefix("npm")
                .unwrap()
                .build();
            let service = ServiceBuilder::new()
                .layer(TokenAuthLayer::new(fresh))
                .service(bare());
            let hot = hot.clone();
            async move {
                let tasks: Vec<_> = (0..1_000)
                    .map(|_| tokio::spawn(service.clone().oneshot(request(Some(&hot)))))
                    .collect();
                for task in tasks {
                    task.await.unwrap().unwrap();
                }
            }
        });
    });
    group.sample_size(100);

    // 7. Refused before any hashing or store call.
    let mut typo = hot_text.clone().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
    let typo = bearer(std::str::from_utf8(&typo).unwrap());
    group.bench_function("7a_malformed_token", |b| {
        b.to_async(&rt)
            .iter(|| gated.clone().oneshot(request(Some(&typo))));
    });
    group.bench_function("7b_missing_header", |b| {
        b.to_async(&rt)
            .iter(|| gated.clone().oneshot(request(None)));
    });

    // 10. The failure limiter: the hot path with it configured (cached hits never consult
    // it), and a flood of well-formed tokens this manager never issued, from one address,
    // with and without it. Past its budget the flooder gets 429 without a store lookup.
    let limited = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens.clone()).limit_failures(flood_limit()))
        .service(bare());
    group.bench_function("10a_layer_hot_token_failure_limit", |b| {
        b.to_async(&rt)
            .iter(|| limited.clone().oneshot(request(Some(&hot))));
    });
    let made_up = rt.block_on(made_up_tokens(FLOOD));
    let flood_tokens = Tokens::builder(MemoryStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let unlimited_flood = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(flood_tokens.clone()))
        .service(bare());
    let limited_flood = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(flood_tokens).limit_failures(flood_limit()))
        .service(bare());
    let draw = Picker(AtomicUsize::new(0));
    group.bench_function("10b_made_up_tokens_no_limit", |b| {
        b.to_async(&rt).iter(|| {
            let value = &made_up[draw.next(FLOOD)];
            unlimited_flood.clone().oneshot(request(Some(value)))
        });
    });
    group.bench_function("10c_made_up_tokens_failure_limit", |b| {
        b.to_async(&rt).iter(|| {
            let value = &made_up[draw.next(FLOOD)];
            limited_flood.clone().oneshot(request(Some(value)))
        });
    });
    // What the store saw: the same flood on a fresh manager, counted rather than timed.
    for (name, limit) in [("no_limit", None), ("failure_limit", Some(flood_limit()))] {
        let store = CountingStore::default();
        let manager = Tokens::builder(store.clone())
            .prefix("npm")
            .unwrap()
            .build();
        let mut layer = TokenAuthLayer::new(manager);
        if let Some(limit) = limit {
            layer = layer.limit_failures(limit);
        }
        let service = ServiceBuilder::new().layer(layer).service(bare());
        let statuses = rt.block_on(async {
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            for value in made_up.iter() {
                let response = service.clone().oneshot(request(Some(value))).await.unwrap();
                *statuses.entry(response.status().as_u16()).or_default() += 1;
            }
            statuses
        });
        let statuses: Vec<String> = statuses
            .iter()
            .map(|(status, n)| format!("{status}:{n}"))
            .collect();
        println!(
            "flood {name} requests={FLOOD} store_lookups={} statuses={}",
            store.lookups(),
            statuses.join(",")
        );
    }

    // 8. The digest compare alone.
    let digest = TokenDigest::of(&hot_text);
    let mut first = *digest.as_bytes();
    first[0] ^= 1;
    let mut last = *digest.as_bytes();
    last[31] ^= 1;
    for (name, other) in [
        ("8a_compare_equal", digest),
        (
            "8b_compare_first_byte_differs",
            TokenDigest::from_bytes(first),
        ),
        (
            "8c_compare_last_byte_differs",
            TokenDigest::from_bytes(last),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(&digest).verify(black_box(&other)))
        });
    }

    // Throughput on both cores: two tasks share the iterations.
    for (name, random) in [
        ("9a_two_cores_hot_token", false),
        ("9b_two_cores_random_of_100k", true),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&multi).iter_custom(|iters| {
                let (service, population, picker, hot) = (
                    gated.clone(),
                    population.clone(),
                    picker.clone(),
                    hot.clone(),
                );
                async move {
                    let start = Instant::now();
                    let workers: Vec<_> = (0..2)
                        .map(|_| {
                            let (service, population, picker, hot) = (
                                service.clone(),
                                population.clone(),
                                picker.clone(),
                                hot.clone(),
                            );
                            tokio::spawn(async move {
                                for _ in 0..iters.div_ceil(2) {
                                    let value = if random {
                                        &population[picker.next(POPULATION)]
                                    } else {
                                        &hot
                                    };
                                    service.clone().oneshot(request(Some(value))).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for worker in workers {
                        worker.await.unwrap();
                    }
                    start.elapsed()
                }
            });
        });
    }
    group.finish();
}

/// Where the time of a cache hit goes, step by step, and what moka's configurations cost
/// for the same key and value types (so that the cache's share can be read off directly).
fn steps(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tokens = Tokens::builder(MemoryStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let created = rt
        .block_on(tokens.create("bench", NewToken::read_write()))
        .unwrap();
    let header = bearer(created.token.expose_secret());
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, header.clone());
    let prefix = tokens.prefix().clone();
    let mut group = c.benchmark_group("steps");

    group.bench_function("a_header_parse_and_sha256", |b| {
        b.iter(|| {
            let Ok(Credentials::Bearer(token)) = Credentials::from_headers(black_box(&headers))
            else {
                unreachable!()
            };
            black_box(ParsedToken::parse(&prefix, token).unwrap().presented())
        });
    });
    group.bench_function("b_system_clock_now", |b| {
        b.iter(|| black_box(std::time::SystemTime::now()))
    });
    let who = rt
        .block_on(tokens.authenticate(created.token.expose_secret(), None, tokengate::Action::Read))
        .unwrap();
    group.bench_function("c_request_with_authenticated_extension", |b| {
        b.iter(|| {
            let mut request = request(Some(&header));
            request.extensions_mut().insert(who.clone());
            black_box(request)
        });
    });
    group.bench_function("c0_request_alone", |b| {
        b.iter(|| black_box(request(Some(&header))))
    });
    let mut typo = header.as_bytes().to_vec();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    group.bench_function("d_malformed_token_parse_only", |b| {
        b.iter(|| {
            black_box(ParsedToken::parse(
                &prefix,
                black_box(&typo["Bearer ".len()..]),
            ))
            .is_err()
        })
    });
    let style = tokengate::ResponseStyle::default();
    let rejection = tokengate::Rejection::new(
        tokengate::Reason::Malformed(tokengate::TokenFormatError::BadChecksum),
        None,
    );
    group.bench_function("e_refusal_response_alone", |b| {
        b.iter(|| black_box(style.respond(black_box(&rejection))))
    });

    // moka alone, 100,000 entries keyed by TokenId: a hot key and a random one.
    let ids: Vec<TokenId> = (0..POPULATION)
        .map(|_| tokengate::SecretToken::generate(&prefix).unwrap().id())
        .collect();
    let value = Arc::new(0u64);
    let ttl = Duration::from_secs(3600);
    let sync_configs: Vec<(&str, moka::sync::Cache<TokenId, Arc<u64>>)> = vec![
        (
            "sync_tinylfu_bounded (used)",
            moka::sync::Cache::builder()
                .max_capacity(2 * POPULATION as u64)
                .build(),
        ),
        (
            "sync_tinylfu_bounded_ttl",
            moka::sync::Cache::builder()
                .max_capacity(2 * POPULATION as u64)
                .time_to_live(ttl)
                .build(),
        ),
        (
            "sync_lru_bounded",
            moka::sync::Cache::builder()
                .max_capacity(2 * POPULATION as u64)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
        ),
        ("sync_unbounded", moka::sync::Cache::builder().build()),
    ];
    for (name, cache) in &sync_configs {
        moka_hot_and_random(&mut group, name, cache, &ids, &value);
    }
    // A keyed hasher (seeded at random per process) that is cheaper than SipHash.
    let foldhash = moka::sync::Cache::builder()
        .max_capacity(2 * POPULATION as u64)
        .build_with_hasher(foldhash::fast::RandomState::default());
    moka_hot_and_random(
        &mut group,
        "sync_tinylfu_bounded_foldhash",
        &foldhash,
        &ids,
        &value,
    );
    let future: moka::future::Cache<TokenId, Arc<u64>> = moka::future::Cache::builder()
        .max_capacity(2 * POPULATION as u64)
        .build();
    rt.block_on(async {
        for id in &ids {
            future.insert(*id, value.clone()).await;
        }
        future.run_pending_tasks().await;
    });
    let picker = Picker(AtomicUsize::new(0));
    group.bench_function("moka_future_tinylfu_bounded_hot", |b| {
        b.to_async(&rt).iter(|| future.get(&ids[0]));
    });
    group.bench_function("moka_future_tinylfu_bounded_random", |b| {
        b.to_async(&rt)
            .iter(|| future.get(&ids[picker.next(POPULATION)]));
    });
    let map: HashMap<TokenId, Arc<u64>> = ids.iter().map(|id| (*id, value.clone())).collect();
    group.bench_function("std_hashmap_random", |b| {
        b.iter(|| black_box(map.get(&ids[picker.next(POPULATION)]).cloned()))
    });
    // The floor's own lookup: records of the real size, the digest read.
    let now = std::time::SystemTime::now();
    let records: HashMap<TokenId, TokenRecord> = ids
        .iter()
        .map(|id| {
            (
                *id,
                TokenRecord::new(*id, "bench", TokenDigest::of("x"), now),
            )
        })
        .collect();
    group.bench_function("std_hashmap_records_random", |b| {
        b.iter(|| {
            let record = &records[&ids[picker.next(POPULATION)]];
            black_box(record.digest.as_bytes()[0])
        })
    });
    group.finish();
}

/// Fills `cache` with `ids` and measures a hit on one hot key and on keys drawn at random.
fn moka_hot_and_random<H>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    cache: &moka::sync::Cache<TokenId, Arc<u64>, H>,
    ids: &[TokenId],
    value: &Arc<u64>,
) where
    H: std::hash::BuildHasher + Clone + Send + Sync + 'static,
{
    for id in ids {
        cache.insert(*id, value.clone());
    }
    cache.run_pending_tasks();
    let picker = Picker(AtomicUsize::new(0));
    group.bench_function(format!("moka_{name}_hot"), |b| {
        b.iter(|| black_box(cache.get(&ids[0])))
    });
    group.bench_function(format!("moka_{name}_random"), |b| {
        b.iter(|| black_box(cache.get(&ids[picker.next(POPULATION)])))
    });
}

criterion_group!(hot_path, benches, steps);
criterion_main!(hot_path);
