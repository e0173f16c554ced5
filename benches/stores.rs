//! Miss-path throughput of the persistent stores: every request's lookup reaches the store
//! (cache TTL zero), from 64 concurrent tasks on a runtime with one and with two workers.
//! Two loads: real tokens drawn from 10,000, and made-up ids (a flood of well-formed tokens
//! the store does not know). SQLite with one read connection (what one connection behind a
//! mutex allowed) and with the default pool; PostgreSQL with its default pool, when
//! `TOKENGATE_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! answers. Prints one `stores` line per run for `benches/report.py`.
//!
//! Then the scale table: for 10^3, 10^5 and 10^6 live tokens in one SQLite file, each size
//! in a fresh child process, the resident memory with the cache warmed to its bound
//! (100,000 records, the default), the bytes each cached token adds, and the mean time of
//! one lookup of a token drawn at random from all of them, through the cache and from the
//! store alone. Prints one `scale` line per size.
//!
//! Then the token list pages: for 10,000 and 100,000 listed tokens of one owner, in SQLite
//! and (when it answers) PostgreSQL, the median time of one page of 100, newest first, as
//! `GET /-/npm/v1/tokens` reads them: the first page, a page from a cursor halfway down (as
//! `urls.next` gives it), and a numbered page halfway down (an offset, for contrast).
//! Prints one `pages` line per store and size.
//!
//! `cargo bench --bench stores --features sqlite,postgres`; `TOKENGATE_STORE_SECONDS` sets
//! each run's length (default 2), `TOKENGATE_SCALE_SIZES` the sizes (default
//! `1000,100000,1000000`), `TOKENGATE_PAGE_SIZES` the listing sizes (default
//! `10000,100000`), and `TOKENGATE_STORE_PARTS` which parts run (default
//! `lookups,pages,scale`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokengate::store::{Cursor, Page, PostgresStore, SqliteStore, TokenStore};
use tokengate::{Action, NewToken, SecretToken, TokenKind, TokenPrefix, TokenRecord, Tokens};

const TOKENS: usize = 10_000;
const TASKS: usize = 64;

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Lookups per second through `tokens` for `seconds`, each task drawing from `presented`.
async fn throughput<S: TokenStore>(
    tokens: &Tokens<S>,
    presented: &Arc<Vec<String>>,
    seconds: f64,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (tokens, presented, stop, done) = (
                tokens.clone(),
                presented.clone(),
                stop.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                let mut i = task.wrapping_mul(7919);
                while !stop.load(Ordering::Relaxed) {
                    let token = &presented[i % presented.len()];
                    // Accepted or refused as unknown: either way the store answered.
                    let _ = tokens.authenticate(token, None, Action::Read).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i = i.wrapping_add(104_729);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Creates the population through `tokens` and returns the real and the made-up tokens.
async fn populate<S: TokenStore>(tokens: &Tokens<S>) -> (Arc<Vec<String>>, Arc<Vec<String>>) {
    let mut real = Vec::with_capacity(TOKENS);
    let mut fake = Vec::with_capacity(TOKENS);
    for _ in 0..TOKENS {
        let created = tokens
            .create("bench", NewToken::read_write())
            .await
            .unwrap();
        real.push(created.token.expose_secret().to_owned());
        let unknown = SecretToken::generate(tokens.prefix()).unwrap();
        fake.push(unknown.expose_secret().to_owned());
    }
    (Arc::new(real), Arc::new(fake))
}

fn manager<S: TokenStore>(store: S) -> Tokens<S> {
    Tokens::builder(store)
        .prefix("npm")
        .unwrap()
        .cache_ttl(Duration::ZERO)
        // Made-up ids must reach the store every time, as a flood of fresh ones would.
        .unknown_ttl(Duration::ZERO)
        .build()
}

/// Runs both loads on one and two workers, printing a line for each.
fn measure<S: TokenStore>(name: &str, open: impl Fn(&tokio::runtime::Runtime) -> S, seconds: f64) {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let tokens = manager(open(&rt));
        let (real, fake) = rt.block_on(populate(&tokens));
        for (load, presented) in [("real", &real), ("made_up", &fake)] {
            let per_second = rt.block_on(throughput(&tokens, presented, seconds));
            println!("stores {name} {load} {workers} {per_second:.0}");
        }
    }
}

/// Resident memory of this process, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// A cheap, deterministic walk over `len` items.
fn pick(i: usize, len: usize) -> usize {
    i.wrapping_mul(0x9E37_79B9).wrapping_mul(2_654_435_761) % len
}

/// One size of the scale table, in this (child) process.
fn scale(size: usize) {
    const CACHE: usize = 100_000;
    const LOOKUPS: usize = 20_000;
    let rt = runtime(1);
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(dir.path().join("tokens.db"))
            .await
            .unwrap();
        let tokens = Tokens::builder(store.clone())
            .prefix("npm")
            .unwrap()
            .cache_capacity(CACHE as u64)
            .cache_ttl(Duration::from_secs(3600))
            .build();
        let mut live = Vec::with_capacity(size);
        for _ in 0..size {
            let created = tokens
                .create("bench", NewToken::read_write())
                .await
                .unwrap();
            live.push((created.token.id(), created.token.expose_secret().to_owned()));
        }
        let before = resident_bytes();
        let warmed = size.min(CACHE);
        for (_, token) in &live[..warmed] {
            tokens
                .authenticate(token, None, Action::Read)
                .await
                .unwrap();
        }
        let after = resident_bytes();
        let per_cached = after.saturating_sub(before) as f64 / warmed as f64;

        let start = Instant::now();
        for i in 0..LOOKUPS {
            let (_, token) = &live[pick(i, size)];
            tokens
                .authenticate(token, None, Action::Read)
                .await
                .unwrap();
        }
        let through_cache = start.elapsed().as_secs_f64() * 1e6 / LOOKUPS as f64;
        let start = Instant::now();
        for i in 0..LOOKUPS {
            let (id, _) = &live[pick(i + LOOKUPS, size)];
            store.get(*id).await.unwrap().unwrap();
        }
        let from_store = start.elapsed().as_secs_f64() * 1e6 / LOOKUPS as f64;
        println!(
            "scale {size} {:.1} {per_cached:.0} {through_cache:.2} {from_store:.2}",
            after as f64 / (1024.0 * 1024.0)
        );
    });
}

/// Stores `listed` tokens of one owner's, a millisecond apart, and a tenth as many of their
/// sessions and of another owner's tokens, from `writers` tasks; returns the listed
/// tokens' cursors, oldest first.
async fn populate_listing<S: TokenStore + Clone>(
    store: &S,
    listed: usize,
    writers: usize,
) -> Vec<Cursor> {
    let prefix = TokenPrefix::new("npm").unwrap();
    let start = std::time::SystemTime::now() - Duration::from_secs(86_400 * 365);
    let mut records = Vec::with_capacity(listed + listed / 5);
    let mut cursors = Vec::with_capacity(listed);
    for i in 0..listed {
        let token = SecretToken::generate(&prefix).unwrap();
        let created = start + Duration::from_millis(i as u64);
        let record = TokenRecord::new(token.id(), "lister", token.digest(), created);
        cursors.push(Cursor::from(&record));
        records.push(record);
        if i % 10 == 0 {
            let token = SecretToken::generate(&prefix).unwrap();
            let mut session = TokenRecord::new(token.id(), "lister", token.digest(), created);
            session.kind = TokenKind::Session;
            records.push(session);
            let token = SecretToken::generate(&prefix).unwrap();
            records.push(TokenRecord::new(
                token.id(),
                "other",
                token.digest(),
                created,
            ));
        }
    }
    let chunk = records.len().div_ceil(writers);
    let mut tasks = Vec::new();
    for part in records.chunks(chunk) {
        let (store, part) = (store.clone(), part.to_vec());
        tasks.push(tokio::spawn(async move {
            for record in part {
                store.insert(record).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    cursors
}

/// Median µs of `page` for the listing's owner, over about a second (at least 20 calls).
async fn page_time<S: TokenStore>(store: &S, page: Page) -> f64 {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 20 || (start.elapsed() < Duration::from_secs(1) && times.len() < 5_000) {
        let call = Instant::now();
        let listed = store.list("lister", page).await.unwrap();
        times.push(call.elapsed().as_secs_f64() * 1e6);
        assert_eq!(listed.records.len(), 100, "a full page");
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// One `pages` line: the first page, a cursor page and a numbered page halfway down, each
/// of 100 newest first.
async fn page_times<S: TokenStore + Clone>(name: &str, store: S, listed: usize, writers: usize) {
    let cursors = populate_listing(&store, listed, writers).await;
    let halfway = listed / 2;
    let first = page_time(&store, Page::first(100).newest_first()).await;
    let from_cursor = page_time(&store, Page::after(cursors[halfway], 100).newest_first()).await;
    let number = u32::try_from(halfway / 100).unwrap();
    let numbered = page_time(&store, Page::number(number, 100).newest_first()).await;
    println!("pages {name} {listed} {first:.1} {from_cursor:.1} {numbered:.1}");
}

/// The token list pages, for each size, in SQLite and (when it answers) PostgreSQL.
fn pages() {
    let sizes = std::env::var("TOKENGATE_PAGE_SIZES").unwrap_or_else(|_| "10000,100000".into());
    println!(
        "pages: one owner's listed tokens, and a tenth as many sessions of theirs and tokens \
         of another owner; pages of 100 newest first; columns: store, listed tokens, median \
         µs of the first page, of a page from a cursor halfway down, of a numbered page \
         halfway down"
    );
    let postgres = postgres_url();
    let rt = runtime(2);
    for size in sizes.split(',') {
        let listed: usize = size.trim().parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        rt.block_on(async {
            let store = SqliteStore::open(dir.path().join("pages.db"))
                .await
                .unwrap();
            page_times("sqlite", store, listed, 1).await;
            if let Some(url) = &postgres {
                let schema = format!("bench_pages_{}_{listed}", std::process::id());
                let store = PostgresStore::builder(url).schema(&schema).connect();
                page_times("postgres", store.await.unwrap(), listed, 16).await;
                drop_schema(url, &schema).await;
            }
        });
    }
}

fn main() {
    if let Some(size) = std::env::var("TOKENGATE_SCALE_CHILD")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        scale(size);
        return;
    }
    // Criterion-style arguments (`--bench`) are ignored.
    let seconds: f64 = std::env::var("TOKENGATE_STORE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let parts =
        std::env::var("TOKENGATE_STORE_PARTS").unwrap_or_else(|_| "lookups,pages,scale".to_owned());
    let part = |name: &str| parts.split(',').any(|part| part.trim() == name);
    if part("lookups") {
        lookups(seconds);
    }
    if part("pages") {
        pages();
    }
    if part("scale") {
        scale_table();
    }
}

/// The miss-path runs, SQLite and PostgreSQL.
fn lookups(seconds: f64) {
    println!(
        "stores: {TASKS} tasks, {TOKENS} tokens, cache TTL zero, {seconds} s per run; \
         columns: store, load, workers, lookups/s"
    );
    let dir = tempfile::tempdir().unwrap();
    for readers in [1, 4] {
        let name = format!("sqlite_{readers}_readers");
        let dir = dir.path().to_owned();
        measure(
            &name,
            |rt| {
                let path = dir.join(format!("{name}_{}.db", rt.metrics().num_workers()));
                rt.block_on(SqliteStore::builder(path).read_connections(readers).open())
                    .unwrap()
            },
            seconds,
        );
    }

    postgres(seconds);
}

/// The scale table, one child process per size.
fn scale_table() {
    let sizes =
        std::env::var("TOKENGATE_SCALE_SIZES").unwrap_or_else(|_| "1000,100000,1000000".to_owned());
    println!(
        "scale: SQLite, cache bounded at 100,000 and warmed to its bound; columns: live \
         tokens, resident MiB, bytes per cached token, µs per lookup of a random live token \
         (through the cache, store alone)"
    );
    for size in sizes.split(',') {
        // A fresh process per size, so that one size's memory does not count in the next.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .env("TOKENGATE_SCALE_CHILD", size.trim())
            .status()
            .unwrap();
        assert!(status.success(), "scale run for {size} tokens failed");
    }
}

/// The URL of the machine's PostgreSQL, when it answers.
fn postgres_url() -> Option<String> {
    let url = std::env::var("TOKENGATE_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let probe = runtime(1).block_on(async {
        tokio::time::timeout(
            Duration::from_secs(3),
            tokio_postgres::connect(&url, tokio_postgres::NoTls),
        )
        .await
    });
    matches!(probe, Ok(Ok(_))).then_some(url)
}

async fn drop_schema(url: &str, schema: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

/// The miss-path runs on PostgreSQL, when it answers.
fn postgres(seconds: f64) {
    let schema = format!("bench_stores_{}", std::process::id());
    let Some(url) = postgres_url() else {
        println!("stores: PostgreSQL not reachable; skipped");
        return;
    };
    measure(
        "postgres",
        |rt| {
            rt.block_on(PostgresStore::builder(&url).schema(&schema).connect())
                .unwrap()
        },
        seconds,
    );
    runtime(1).block_on(drop_schema(&url, &schema));
}
