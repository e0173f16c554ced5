//! The token manager through its public interface.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use support::TestStore;
use tokengate::store::{Page, TokenStore};
use tokengate::{
    Action, CidrError, CidrList, ExpiryProblem, Grants, InvalidNewToken, ManualClock, NewToken,
    Permission, Reason, TextProblem, TokenFormatError, TokenKind, TokenRecord, Tokens, TokensError,
};

const INSIDE: &str = "10.1.2.3";
const OUTSIDE: &str = "192.0.2.1";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn manager(store: TestStore, clock: ManualClock) -> Tokens<TestStore> {
    Tokens::builder(store)
        .prefix("npm")
        .unwrap()
        .clock(clock)
        .build()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ReadWrite,
    ReadOnly,
    Revoked,
    Expired,
    WrongSecret,
    UnknownId,
    Malformed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    Inside,
    Outside,
    Unknown,
}

/// What the manager must answer, written out case by case rather than derived from the
/// code under test.
fn expected(kind: Kind, restricted: bool, place: Where, action: Action) -> Result<(), Reason> {
    match kind {
        Kind::Malformed => return Err(Reason::Malformed(TokenFormatError::BadChecksum)),
        Kind::UnknownId => return Err(Reason::UnknownToken),
        Kind::WrongSecret => return Err(Reason::SecretMismatch),
        Kind::Revoked => return Err(Reason::Revoked),
        Kind::Expired => return Err(Reason::Expired),
        Kind::ReadWrite | Kind::ReadOnly => {}
    }
    if restricted {
        match place {
            Where::Inside => {}
            Where::Outside => return Err(Reason::AddressNotAllowed),
            Where::Unknown => return Err(Reason::NoClientAddress),
        }
    }
    if kind == Kind::ReadOnly && action == Action::Write {
        return Err(Reason::ReadOnly);
    }
    Ok(())
}

/// A token string of the given kind, with or without the allow-list.
async fn make(
    tokens: &Tokens<TestStore>,
    clock: &ManualClock,
    kind: Kind,
    restricted: bool,
) -> String {
    let cidr: Vec<&str> = if restricted {
        vec!["10.0.0.0/8"]
    } else {
        vec![]
    };
    let options = match kind {
        Kind::ReadOnly => NewToken::read_only(),
        Kind::Expired => NewToken::read_write().expires_in(Duration::from_secs(60)),
        _ => NewToken::read_write(),
    }
    .allow_cidrs(cidr.clone());
    match kind {
        Kind::UnknownId => {
            // Well formed, checksum right, never stored.
            let other = Tokens::builder(TestStore::new())
                .prefix("npm")
                .unwrap()
                .build();
            let created = other.create("alice", options).await.unwrap();
            created.token.expose_secret().to_owned()
        }
        Kind::WrongSecret => {
            // A stored record with this token's id but another token's digest.
            let decoy = tokens.create("alice", options.clone()).await.unwrap();
            let other = Tokens::builder(TestStore::new())
                .prefix("npm")
                .unwrap()
                .build();
            let presented = other.create("alice", options).await.unwrap();
            let mut record = TokenRecord::new(
                presented.token.id(),
                "alice",
                decoy.token.digest(),
                clock.now(),
            );
            record.cidr = CidrList::parse(&cidr).unwrap();
            tokens.store().insert(record).await.unwrap();
            presented.token.expose_secret().to_owned()
        }
        Kind::Malformed => {
            let created = tokens.create("alice", options).await.unwrap();
            let mut text = created.token.expose_secret().to_owned();
            let last = text.pop().unwrap();
            text.push(if last == 'a' { 'b' } else { 'a' });
            text
        }
        _ => {
            let created = tokens.create("alice", options).await.unwrap();
            let text = created.token.expose_secret().to_owned();
            if kind == Kind::Revoked {
                assert!(tokens.revoke(created.listing.id.as_str()).await.unwrap());
            }
            text
        }
    }
}

use tokengate::Clock;

#[tokio::test]
async fn the_full_matrix() {
    let clock = ManualClock::new(start());
    let tokens = manager(TestStore::new(), clock.clone());
    let kinds = [
        Kind::ReadWrite,
        Kind::ReadOnly,
        Kind::Revoked,
        Kind::Expired,
        Kind::WrongSecret,
        Kind::UnknownId,
        Kind::Malformed,
    ];
    let mut cases = Vec::new();
    for kind in kinds {
        for restricted in [false, true] {
            cases.push((
                kind,
                restricted,
                make(&tokens, &clock, kind, restricted).await,
            ));
        }
    }
    clock.advance(Duration::from_secs(120));
    let mut checked = 0;
    for (kind, restricted, token) in &cases {
        for place in [Where::Inside, Where::Outside, Where::Unknown] {
            let client = match place {
                Where::Inside => Some(ip(INSIDE)),
                Where::Outside => Some(ip(OUTSIDE)),
                Where::Unknown => None,
            };
            for action in [Action::Read, Action::Write] {
                let got = tokens
                    .authenticate(token, client, action)
                    .await
                    .map(|who| {
                        assert_eq!(who.owner(), "alice");
                    })
                    .map_err(|rejection| rejection.reason());
                let want = expected(*kind, *restricted, place, action);
                assert_eq!(
                    got, want,
                    "{kind:?} restricted={restricted} {place:?} {action:?}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 7 * 2 * 3 * 2);
}

#[tokio::test]
async fn authenticated_carries_identity_but_no_secret() {
    let tokens = manager(TestStore::new(), ManualClock::new(start()));
    let created = tokens
        .create("alice", NewToken::read_only().name("CI"))
        .await
        .unwrap();
    let token = created.token.expose_secret();
    let who = tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();
    assert_eq!(who.token_id(), created.token.id());
    assert_eq!(who.owner(), "alice");
    assert_eq!(who.grants(), &Grants::everything(Permission::ReadOnly));
    assert_eq!(who.token_name(), Some("CI"));
    let secret = &token[4 + 11..];
    for shown in [
        format!("{who:?}"),
        format!("{created:?}"),
        format!("{:?}", created.listing),
        format!("{tokens:?}"),
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[tokio::test]
async fn rejections_name_the_token_id_once_it_parsed() {
    let tokens = manager(TestStore::new(), ManualClock::new(start()));
    let created = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let refused = tokens
        .authenticate(created.token.expose_secret(), None, Action::Write)
        .await
        .unwrap_err();
    assert_eq!(refused.token_id(), Some(created.token.id()));
    let refused = tokens
        .authenticate("npm_nope", None, Action::Write)
        .await
        .unwrap_err();
    assert_eq!(refused.token_id(), None);
    assert!(matches!(
        refused.reason(),
        Reason::Malformed(TokenFormatError::WrongLength { .. })
    ));
}

#[tokio::test]
async fn malformed_tokens_never_reach_the_store() {
    let store = TestStore::new();
    let tokens = manager(store.clone(), ManualClock::new(start()));
    let long = "npm_".to_owned() + &"a".repeat(100 * 1024);
    for junk in [
        "",
        "npm_",
        "ghp_abc",
        "Bearer x",
        long.as_str(),
        "npm_ééééé",
    ] {
        let refused = tokens
            .authenticate(junk, None, Action::Read)
            .await
            .unwrap_err();
        assert!(
            matches!(refused.reason(), Reason::Malformed(_)),
            "{junk:.20}"
        );
    }
    assert_eq!(store.gets(), 0);
}

#[tokio::test]
async fn revoke_by_id_and_by_full_token() {
    let tokens = manager(TestStore::new(), ManualClock::new(start()));
    let by_id = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let by_token = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    for created in [&by_id, &by_token] {
        // Warm the cache: the revoke must still be seen at once.
        tokens
            .authenticate(created.token.expose_secret(), None, Action::Read)
            .await
            .unwrap();
    }

    assert!(tokens.revoke(by_id.listing.id.as_str()).await.unwrap());
    assert!(tokens.revoke(by_token.token.expose_secret()).await.unwrap());
    for created in [&by_id, &by_token] {
        let refused = tokens
            .authenticate(created.token.expose_secret(), None, Action::Read)
            .await
            .unwrap_err();
        assert_eq!(refused.reason(), Reason::Revoked);
    }

    // Idempotent, and unknown ids are not an error.
    assert!(!tokens.revoke(by_id.listing.id.as_str()).await.unwrap());
    assert!(!tokens.revoke("AAAAAAAAAAA").await.unwrap());
    assert!(matches!(
        tokens.revoke("not a token").await,
        Err(TokensError::InvalidReference)
    ));
}

#[tokio::test]
async fn revoke_owned_ignores_other_owners_tokens() {
    let tokens = manager(TestStore::new(), ManualClock::new(start()));
    let bobs = tokens.create("bob", NewToken::read_write()).await.unwrap();
    let id = bobs.listing.id.as_str();
    assert!(!tokens.revoke_owned("alice", id).await.unwrap());
    tokens
        .authenticate(bobs.token.expose_secret(), None, Action::Write)
        .await
        .unwrap();
    assert!(tokens.revoke_owned("bob", id).await.unwrap());
    assert!(!tokens.revoke_owned("bob", id).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_lookups_share_one_store_call() {
    let store = TestStore::new();
    let tokens = manager(store.clone(), ManualClock::new(start()));
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let token: Arc<str> = created.token.expose_secret().into();
    let barrier = Arc::new(tokio::sync::Barrier::new(1_000));
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let (tokens, token, barrier) = (tokens.clone(), token.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                tokens
                    .authenticate(&token, None, Action::Read)
                    .await
                    .is_ok()
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
    assert_eq!(store.gets(), 1);
}

#[tokio::test]
async fn store_failures_are_not_cached() {
    let store = TestStore::new();
    let tokens = manager(store.clone(), ManualClock::new(start()));
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let token = created.token.expose_secret();

    store.set_failing(true);
    for _ in 0..2 {
        let refused = tokens
            .authenticate(token, None, Action::Read)
            .await
            .unwrap_err();
        assert_eq!(refused.reason(), Reason::StoreUnavailable);
    }
    assert_eq!(store.gets(), 2, "each failure went back to the store");

    store.set_failing(false);
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();
    assert_eq!(store.gets(), 3, "the recovered lookup is cached");
}

#[tokio::test]
async fn a_lookup_in_flight_during_a_revoke_does_not_bring_the_token_back() {
    let store = TestStore::new();
    let tokens = manager(store.clone(), ManualClock::new(start()));
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let token: Arc<str> = created.token.expose_secret().into();

    // A lookup reads the live record from the store, then stalls before caching it.
    store.hold_next_get();
    let in_flight = tokio::spawn({
        let (tokens, token) = (tokens.clone(), token.clone());
        async move { tokens.authenticate(&token, None, Action::Read).await }
    });
    store.get_is_held().await;

    // The revoke lands while that stale record is on its way into the cache.
    let revoke = tokio::spawn({
        let tokens = tokens.clone();
        let id = created.token.id();
        async move { tokens.revoke(id.as_str()).await }
    });
    tokio::task::yield_now().await;
    store.release();
    assert!(revoke.await.unwrap().unwrap());
    // The stalled lookup began before the revoke; either answer is fine for it.
    let _ = in_flight.await.unwrap();

    let refused = tokens
        .authenticate(&token, None, Action::Read)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::Revoked);
}

#[tokio::test]
async fn unknown_ids_are_remembered_briefly() {
    let store = TestStore::new();
    let tokens = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .unknown_ttl(Duration::from_millis(100))
        .build();
    let stranger = Tokens::builder(TestStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let unknown = stranger
        .create("eve", NewToken::read_write())
        .await
        .unwrap();
    let token = unknown.token.expose_secret();
    for _ in 0..5 {
        let refused = tokens
            .authenticate(token, None, Action::Read)
            .await
            .unwrap_err();
        assert_eq!(refused.reason(), Reason::UnknownToken);
    }
    assert_eq!(store.gets(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap_err();
    assert_eq!(store.gets(), 2, "forgotten after its TTL");
}

#[tokio::test]
async fn revocations_made_elsewhere_wait_for_the_ttl_or_an_invalidation() {
    let store = TestStore::new();
    let tokens = manager(store.clone(), ManualClock::new(start()));
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let token = created.token.expose_secret();
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();

    // Another node revokes straight in the shared store.
    assert!(store.revoke(created.token.id(), start()).await.unwrap());
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();

    tokens.invalidate(created.token.id());
    let refused = tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::Revoked);
}

#[tokio::test]
async fn listing_pages_in_creation_order_without_secrets() {
    let clock = ManualClock::new(start());
    let tokens = manager(TestStore::new(), clock.clone());
    let mut created = Vec::new();
    for i in 0..5 {
        clock.advance(Duration::from_secs(1));
        let options = NewToken::read_write()
            .name(format!("token {i}"))
            .allow_cidrs(["2001:db8::/32"]);
        created.push(tokens.create("alice", options).await.unwrap());
    }
    tokens.create("bob", NewToken::read_only()).await.unwrap();
    tokens
        .revoke(created[1].token.expose_secret())
        .await
        .unwrap();

    let first = tokens.list("alice", Page::first(2)).await.unwrap();
    assert_eq!(first.total, 4);
    let second = tokens.list("alice", Page::number(1, 2)).await.unwrap();
    let names: Vec<_> = first
        .tokens
        .iter()
        .chain(&second.tokens)
        .map(|t| t.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["token 0", "token 2", "token 3", "token 4"]);
    for listing in first.tokens.iter().chain(&second.tokens) {
        let full = created.iter().find(|c| c.listing.id == listing.id).unwrap();
        let full = full.token.expose_secret();
        assert!(full.starts_with(&listing.token_prefix));
        assert!(listing.token_prefix.len() < full.len() / 2);
        assert_eq!(listing.cidr.to_strings(), ["2001:db8::/32"]);
    }

    let empty = tokens.list("nobody", Page::default()).await.unwrap();
    assert_eq!((empty.tokens.len(), empty.total), (0, 0));
    let beyond = tokens.list("alice", Page::number(10, 2)).await.unwrap();
    assert_eq!((beyond.tokens.len(), beyond.total), (0, 4));
}

#[tokio::test]
async fn bad_options_are_refused_with_a_clear_error_and_nothing_stored() {
    let store = TestStore::new();
    let tokens = manager(store.clone(), ManualClock::new(start()));
    struct Case {
        owner: &'static str,
        options: NewToken,
        cause: InvalidNewToken,
        message: &'static str,
    }
    let cases = vec![
        Case {
            owner: "alice",
            options: NewToken::read_write().allow_cidrs(["10.0.0.0/8", "10.0.0.300/8"]),
            cause: InvalidNewToken::Cidr(CidrError::InvalidEntry("10.0.0.300/8".into())),
            message: "CIDR whitelist contains invalid CIDR entry: 10.0.0.300/8",
        },
        Case {
            owner: "",
            options: NewToken::read_write(),
            cause: InvalidNewToken::Owner(TextProblem::Empty),
            message: "invalid owner: must not be empty",
        },
        Case {
            owner: "alice",
            options: NewToken::read_write().name("a\u{1b}[31m"),
            cause: InvalidNewToken::Name(TextProblem::ControlCharacter),
            message: "invalid name: must not contain control characters",
        },
        Case {
            owner: "alice",
            options: NewToken::read_write().name("CI \u{202E}nekot"),
            cause: InvalidNewToken::Name(TextProblem::FormatCharacter),
            message: "invalid name: must not contain invisible formatting characters",
        },
        Case {
            owner: "alice",
            options: NewToken::read_write().name("n".repeat(300)),
            cause: InvalidNewToken::Name(TextProblem::TooLong { max: 256 }),
            message: "invalid name: too long (at most 256)",
        },
        Case {
            owner: "alice",
            options: NewToken::read_write().expires_at(start() - Duration::from_secs(1)),
            cause: InvalidNewToken::Expiry(ExpiryProblem::NotInFuture),
            message: "invalid expiry: the token would expire immediately or in the past",
        },
        Case {
            owner: "alice",
            options: NewToken::read_write().expires_in(Duration::MAX),
            cause: InvalidNewToken::Expiry(ExpiryProblem::Unrepresentable),
            message: "invalid expiry: the token would expire too far in the future",
        },
    ];
    for case in cases {
        let error = tokens.create(case.owner, case.options).await.unwrap_err();
        assert_eq!(error.to_string(), case.message);
        match error {
            TokensError::InvalidNewToken(cause) => assert_eq!(cause, case.cause),
            other => panic!("{}: {other:?}", case.message),
        }
    }
    assert!(store.inner.is_empty());
}

#[tokio::test]
async fn expiry_is_enforced_even_while_cached() {
    let clock = ManualClock::new(start());
    let tokens = manager(TestStore::new(), clock.clone());
    let created = tokens
        .create(
            "alice",
            NewToken::read_write().expires_in(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let token = created.token.expose_secret();
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(30));
    let refused = tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::Expired);
}

#[tokio::test]
async fn tokens_of_another_prefix_are_malformed() {
    let tokens = manager(TestStore::new(), ManualClock::new(start()));
    let other = Tokens::builder(TestStore::new())
        .prefix("tg")
        .unwrap()
        .build();
    let created = other.create("alice", NewToken::read_write()).await.unwrap();
    let refused = tokens
        .authenticate(created.token.expose_secret(), None, Action::Read)
        .await
        .unwrap_err();
    assert_eq!(
        refused.reason(),
        Reason::Malformed(TokenFormatError::WrongPrefix)
    );
}

/// Waits (boundedly) until the store has been told of `count` uses.
async fn uses_reach(store: &TestStore, count: usize) {
    for _ in 0..200 {
        if store.uses.load(std::sync::atomic::Ordering::SeqCst) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the store was told of fewer than {count} uses");
}

#[tokio::test]
async fn uses_are_reported_at_most_once_a_minute_per_token() {
    let store = TestStore::new();
    let clock = ManualClock::new(start());
    let tokens = manager(store.clone(), clock.clone());
    let a = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let b = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    for _ in 0..50 {
        for created in [&a, &b] {
            tokens
                .authenticate(created.token.expose_secret(), None, Action::Read)
                .await
                .unwrap();
        }
        clock.advance(Duration::from_secs(1));
    }
    uses_reach(&store, 2).await;
    clock.advance(Duration::from_secs(10));
    tokens
        .authenticate(a.token.expose_secret(), None, Action::Read)
        .await
        .unwrap();
    uses_reach(&store, 3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.uses.load(std::sync::atomic::Ordering::SeqCst), 3);
    let listed = tokens.list("alice", Page::default()).await.unwrap();
    let listed_a = listed.tokens.iter().find(|t| t.id == a.token.id()).unwrap();
    assert_eq!(listed_a.last_used_at, Some(clock.now()));
}

#[tokio::test]
async fn cached_records_are_reloaded_after_the_ttl() {
    let store = TestStore::new();
    let clock = ManualClock::new(start());
    let tokens = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .clock(clock.clone())
        .cache_ttl(Duration::from_secs(60))
        .build();
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let token = created.token.expose_secret();
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(59));
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();
    assert_eq!(store.gets(), 1, "served from the cache within the TTL");
    clock.advance(Duration::from_secs(1));
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();
    assert_eq!(store.gets(), 2, "asked the store again once the TTL passed");
}

#[tokio::test]
async fn the_lifetime_policy_binds_tokens_that_can_write() {
    let day = Duration::from_secs(86_400);
    let tokens = Tokens::builder(TestStore::new())
        .prefix("npm")
        .unwrap()
        .clock(ManualClock::new(start()))
        .write_token_lifetime(7 * day)
        .max_write_token_lifetime(90 * day)
        .build();
    struct Case {
        label: &'static str,
        options: NewToken,
        /// The lifetime given, or the problem and its message.
        expires: Result<Option<Duration>, (ExpiryProblem, &'static str)>,
    }
    let past_max = Err((
        ExpiryProblem::PastMaximum {
            kind: TokenKind::Standard,
            max: 90 * day,
        },
        "invalid expiry: tokens that can write may live at most 90 days",
    ));
    let cases = [
        Case {
            label: "write, no expiry: the default",
            options: NewToken::read_write(),
            expires: Ok(Some(7 * day)),
        },
        Case {
            label: "write, within the maximum",
            options: NewToken::read_write().expires_in(90 * day),
            expires: Ok(Some(90 * day)),
        },
        Case {
            label: "write, past the maximum",
            options: NewToken::read_write().expires_in(365 * day),
            expires: past_max,
        },
        Case {
            label: "read-only: unbound",
            options: NewToken::read_only(),
            expires: Ok(None),
        },
        Case {
            label: "read-only, a year",
            options: NewToken::read_only().expires_in(365 * day),
            expires: Ok(Some(365 * day)),
        },
        Case {
            label: "session: two hours",
            options: NewToken::session(),
            expires: Ok(Some(Duration::from_secs(2 * 3600))),
        },
        Case {
            label: "session, past its two hours",
            options: NewToken::session().expires_in(Duration::from_secs(3 * 3600)),
            expires: Err((
                ExpiryProblem::PastMaximum {
                    kind: TokenKind::Session,
                    max: Duration::from_secs(2 * 3600),
                },
                "invalid expiry: sessions may live at most 2 hours",
            )),
        },
    ];
    for case in cases {
        let outcome = tokens.create("alice", case.options).await;
        match (outcome, case.expires) {
            (Ok(created), Ok(lifetime)) => assert_eq!(
                created.listing.expires_at,
                lifetime.map(|l| start() + l),
                "{}",
                case.label
            ),
            (Err(TokensError::InvalidNewToken(InvalidNewToken::Expiry(got))), Err(want)) => {
                assert_eq!(got, want.0, "{}", case.label);
                assert_eq!(
                    TokensError::from(InvalidNewToken::Expiry(got)).to_string(),
                    want.1,
                    "{}",
                    case.label
                );
            }
            (outcome, want) => panic!("{}: {outcome:?}, wanted {want:?}", case.label),
        }
    }
}

#[tokio::test]
async fn sessions_work_and_are_never_listed() {
    let clock = ManualClock::new(start());
    let tokens = manager(TestStore::new(), clock.clone());
    let session = tokens.create("alice", NewToken::session()).await.unwrap();
    let listed_token = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let secret = session.token.expose_secret();
    let who = tokens
        .authenticate(secret, None, Action::Write)
        .await
        .unwrap();
    assert_eq!(who.kind(), tokengate::TokenKind::Session);
    let listed = tokens.list("alice", Page::default()).await.unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.tokens[0].id, listed_token.listing.id);

    // Two hours later the session is over; logging out earlier revokes it.
    clock.advance(Duration::from_secs(2 * 3600));
    let refused = tokens
        .authenticate(secret, None, Action::Read)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::Expired);
    let other = tokens.create("alice", NewToken::session()).await.unwrap();
    assert!(
        tokens
            .revoke_owned("alice", other.token.expose_secret())
            .await
            .unwrap()
    );
    let refused = tokens
        .authenticate(other.token.expose_secret(), None, Action::Read)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::Revoked);
}

/// A memory store whose change feed the test writes to.
#[derive(Clone)]
struct FedStore {
    inner: TestStore,
    feed: tokio::sync::broadcast::Sender<tokengate::store::StoreChange>,
    /// When set, the first read is held by the test after it has read the record: a read
    /// that began before a revocation made on another node, and answers late.
    held_first_read: Option<Arc<HeldRead>>,
}

#[derive(Default)]
struct HeldRead {
    done: std::sync::atomic::AtomicBool,
    read: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl FedStore {
    fn new(
        feed: &tokio::sync::broadcast::Sender<tokengate::store::StoreChange>,
        held_first_read: Option<Arc<HeldRead>>,
    ) -> Self {
        Self {
            inner: TestStore::new(),
            feed: feed.clone(),
            held_first_read,
        }
    }
}

impl TokenStore for FedStore {
    async fn get(
        &self,
        id: tokengate::TokenId,
    ) -> Result<Option<TokenRecord>, tokengate::store::StoreError> {
        let record = self.inner.get(id).await;
        if let Some(held) = &self.held_first_read {
            if !held.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                held.read.notify_one();
                held.release.notified().await;
            }
        }
        record
    }
    async fn insert(&self, record: TokenRecord) -> Result<(), tokengate::store::StoreError> {
        self.inner.insert(record).await
    }
    async fn list(
        &self,
        owner: &str,
        page: Page,
    ) -> Result<tokengate::store::RecordPage, tokengate::store::StoreError> {
        self.inner.list(owner, page).await
    }
    async fn revoke(
        &self,
        id: tokengate::TokenId,
        at: SystemTime,
    ) -> Result<bool, tokengate::store::StoreError> {
        self.inner.revoke(id, at).await
    }
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<tokengate::store::StoreChange>> {
        Some(self.feed.subscribe())
    }
}

#[tokio::test]
async fn a_node_follows_revocations_from_before_its_first_accepted_token() {
    use tokengate::store::StoreChange;

    let (feed, _) = tokio::sync::broadcast::channel(16);
    let held = Arc::new(HeldRead::default());
    let store = FedStore::new(&feed, Some(Arc::clone(&held)));
    // Node B: built inside the runtime, it has accepted no token yet.
    let node_b = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .build();
    let created = node_b.create("alice", NewToken::read_only()).await.unwrap();
    // Node A, while B's first read of the token is held: revokes it and says so on the
    // feed, lets B's feed task run (this runtime has one thread: it runs when A yields),
    // then lets B's read answer.
    let node_a = {
        let store = store.clone();
        let id = created.token.id();
        tokio::spawn(async move {
            held.read.notified().await;
            store.inner.revoke(id, SystemTime::now()).await.unwrap();
            feed.send(StoreChange::Revoked(id)).unwrap();
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            held.release.notify_one();
        })
    };
    let token = created.token.expose_secret();
    // The request that overlapped the revocation may go either way; what it read must not
    // be kept for the next one, which comes at once.
    let _ = node_b.authenticate(token, None, Action::Read).await;
    let next = node_b.authenticate(token, None, Action::Read).await;
    node_a.await.unwrap();
    assert_eq!(
        next.map(|who| who.token_id())
            .map_err(|refused| refused.reason()),
        Err(Reason::Revoked),
        "the late read's answer outlived the revocation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_resyncs_drops_the_cache_at_most_once_a_second() {
    use tokengate::store::StoreChange;

    let (feed, _) = tokio::sync::broadcast::channel(16);
    let store = FedStore::new(&feed, None);
    let tokens = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .build();
    let created = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let token = created.token.expose_secret();
    tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap();
    let before = store.inner.gets();
    // A flood: far more than the feed holds, so it lags too.
    for _ in 0..200 {
        let _ = feed.send(StoreChange::Resync);
        tokens
            .authenticate(token, None, Action::Read)
            .await
            .unwrap();
        tokio::task::yield_now().await;
    }
    let lookups = store.inner.gets() - before;
    assert!(
        lookups <= 3,
        "{lookups} store lookups: the cache was dropped on every notice"
    );
    // A revocation during the flood still lands, one way or the other.
    tokens.revoke(created.listing.id.as_str()).await.unwrap();
    let refused = tokens
        .authenticate(token, None, Action::Read)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::Revoked);
}

/// A store written before `revoke_all` existed keeps the trait's default: it fails, saying
/// so, and revokes nothing, rather than answering that there was nothing to revoke.
#[tokio::test]
async fn a_store_without_revoke_all_says_so_rather_than_pretends() {
    use tokengate::store::{RecordPage, StoreError};

    #[derive(Clone, Default)]
    struct OlderStore(tokengate::store::MemoryStore);
    impl TokenStore for OlderStore {
        async fn get(&self, id: tokengate::TokenId) -> Result<Option<TokenRecord>, StoreError> {
            self.0.get(id).await
        }
        async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
            self.0.insert(record).await
        }
        async fn list(&self, owner: &str, page: Page) -> Result<RecordPage, StoreError> {
            self.0.list(owner, page).await
        }
        async fn revoke(&self, id: tokengate::TokenId, at: SystemTime) -> Result<bool, StoreError> {
            self.0.revoke(id, at).await
        }
    }

    let tokens = Tokens::new(OlderStore::default());
    let session = tokens.create("alice", NewToken::session()).await.unwrap();
    let failed = tokens.revoke_all("alice", TokenKind::Session).await;
    assert!(
        matches!(
            failed,
            Err(TokensError::Store(StoreError::Unsupported("revoke_all")))
        ),
        "{failed:?}"
    );
    let stored = tokens.store().get(session.listing.id).await.unwrap();
    assert_eq!(stored.unwrap().revoked_at, None, "nothing was revoked");
}

/// A store that fails during `revoke_all` may have revoked some tokens without saying
/// which: nothing is served from the cache afterwards, every token is looked up again.
#[tokio::test]
async fn a_failed_revoke_all_serves_nothing_from_the_cache() {
    let store = TestStore::new();
    let tokens = manager(store.clone(), ManualClock::new(start()));
    let session = tokens.create("alice", NewToken::session()).await.unwrap();
    let session = session.token.expose_secret();
    tokens
        .authenticate(session, None, Action::Read)
        .await
        .unwrap();
    let lookups = store.gets();

    store.set_failing(true);
    let failed = tokens.revoke_all("alice", TokenKind::Session).await;
    assert!(matches!(failed, Err(TokensError::Store(_))), "{failed:?}");
    store.set_failing(false);
    tokens
        .authenticate(session, None, Action::Read)
        .await
        .unwrap();
    assert_eq!(store.gets(), lookups + 1, "the cached session was served");
}

/// Each token `revoke_all` revokes is told to the event hook, with its owner.
#[tokio::test]
async fn revoke_all_tells_the_event_hook_of_each_token() {
    use std::sync::Mutex;
    use tokengate::TokenEvent;

    let heard = Arc::new(Mutex::new(Vec::new()));
    let hook = Arc::clone(&heard);
    let tokens = Tokens::builder(TestStore::new())
        .on_event(move |event| {
            if let TokenEvent::Revoked { id, owner } = event {
                hook.lock().unwrap().push((*id, owner.map(str::to_owned)));
            }
        })
        .build();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let created = tokens.create("alice", NewToken::session()).await.unwrap();
        ids.push((created.listing.id, Some("alice".to_owned())));
    }
    tokens.create("bob", NewToken::session()).await.unwrap();
    assert_eq!(
        tokens
            .revoke_all("alice", TokenKind::Session)
            .await
            .unwrap(),
        3
    );
    let mut heard = heard.lock().unwrap().clone();
    heard.sort();
    ids.sort();
    assert_eq!(heard, ids);
}
