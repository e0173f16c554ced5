//! The [`TokenStore`] contract as tests (feature `test-util`): run it on your own store
//! and it checks every clause the trait's documentation promises.
//!
//! One test per clause, with [`store_contract_tests!`](crate::store_contract_tests) in a
//! test file of yours, given an expression (evaluated in an async context) that makes a
//! fresh, empty store:
//!
//! ```
//! // tests/contract.rs of your store's crate; here with the crate's own MemoryStore.
//! tokengate::store_contract_tests!(tokengate::store::MemoryStore::new());
//! ```
//!
//! or every clause in one test with [`run_all`]:
//!
//! ```
//! use tokengate::store::{MemoryStore, contract};
//!
//! contract::block_on(contract::run_all(|| async { MemoryStore::new() }));
//! ```
//!
//! Each clause panics, naming what failed, when the store breaks it.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::access::{Action, Grant, Grants, MAX_GRANTS, Permission, ResourcePattern};
use crate::cidr::{CidrList, MAX_CIDR_ENTRIES};
use crate::new_token::NewToken;
use crate::reason::Reason;
use crate::record::{SecondFactor, TokenKind, TokenRecord};
use crate::store::{Cursor, Order, Page, StoreError, TokenStore};
use crate::token::{SecretToken, TokenId, TokenPrefix};
use crate::tokens::Tokens;

/// A point in time with whole milliseconds, as stores keep them.
pub fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + seconds * 1_000 + 123)
}

/// A new live record of `owner`'s, made at `created`, with a fresh id.
pub fn record(owner: &str, created: SystemTime) -> TokenRecord {
    let token = SecretToken::generate(&TokenPrefix::default()).unwrap();
    TokenRecord::new(token.id(), owner, token.digest(), created)
}

/// Every field set, with the awkward text, the largest allow-list and the most grants.
fn full_record() -> TokenRecord {
    let mut cidr: Vec<String> = (0..MAX_CIDR_ENTRIES / 2)
        .map(|i| format!("10.{i}.0.0/16"))
        .collect();
    cidr.extend((0..MAX_CIDR_ENTRIES / 2).map(|i| format!("2001:db8:{i:x}::/48")));
    let mut grants: Vec<Grant> = (0..MAX_GRANTS - 2)
        .map(|i| {
            let pattern = ResourcePattern::parse(&format!("@scope-{i}/*")).unwrap();
            // Every permission that can be granted, stage-only among them.
            let permission = if i % 2 == 0 {
                Permission::ReadWrite
            } else {
                Permission::ReadStage
            };
            Grant::new(pattern, permission)
        })
        .collect();
    grants.push(Grant::new(
        ResourcePattern::Exact("@scope-0/sealed".into()),
        Permission::NoAccess,
    ));
    grants.push(Grant::new(ResourcePattern::All, Permission::ReadOnly));
    TokenRecord {
        grants: Grants::new(grants).unwrap(),
        second_factor: SecondFactor::Bypassed,
        cidr: CidrList::parse(&cidr).unwrap(),
        expires_at: Some(at(86_400)),
        name: Some("Robert'); DROP TABLE tokens;-- \"名前\"".into()),
        description: Some("línea 1\nline \"2\" \\ 'three' 🦀".into()),
        last_used_at: Some(at(5)),
        ..record("zoë \"o'brien\" 山田", at(0))
    }
}

/// Every field comes back as it was stored, awkward text and the largest allow-list included.
pub async fn insert_then_get_round_trips<S: TokenStore>(store: S) {
    let full = full_record();
    store.insert(full.clone()).await.unwrap();
    assert_eq!(store.get(full.id).await.unwrap(), Some(full.clone()));
    let plain = record("alice", at(1));
    store.insert(plain.clone()).await.unwrap();
    assert_eq!(store.get(plain.id).await.unwrap(), Some(plain));
}

/// A token that may only stage, on everything, comes back as exactly that: neither
/// read-only nor read-write.
pub async fn stage_only_tokens_keep_their_grant<S: TokenStore>(store: S) {
    let mut stage_only = record("ci", at(0));
    stage_only.grants = Grants::everything(Permission::ReadStage);
    store.insert(stage_only.clone()).await.unwrap();
    let back = store.get(stage_only.id).await.unwrap().unwrap();
    assert_eq!(back.grants.on_everything(), Some(Permission::ReadStage));
    assert_eq!(back, stage_only);
}

/// An id never stored is `Ok(None)`, not an error.
pub async fn get_of_an_unknown_id_is_none<S: TokenStore>(store: S) {
    let stranger = record("alice", at(0));
    assert_eq!(store.get(stranger.id).await.unwrap(), None);
}

/// A second insert of an id fails with [`StoreError::Duplicate`] and changes nothing.
pub async fn insert_never_overwrites<S: TokenStore>(store: S) {
    let original = record("alice", at(0));
    store.insert(original.clone()).await.unwrap();
    let impostor = TokenRecord {
        owner: "mallory".into(),
        ..original.clone()
    };
    assert!(matches!(
        store.insert(impostor).await,
        Err(StoreError::Duplicate(id)) if id == original.id
    ));
    assert_eq!(store.get(original.id).await.unwrap(), Some(original));
}

/// Listings are ordered by creation time, then id, and page without gaps or repeats.
pub async fn list_pages_in_a_stable_order<S: TokenStore>(store: S) {
    let mut mine = Vec::new();
    // Several share a creation time: the id breaks the tie.
    for i in 0..7u64 {
        let record = record("alice", at(i / 3));
        store.insert(record.clone()).await.unwrap();
        mine.push(record);
    }
    store.insert(record("bob", at(0))).await.unwrap();
    mine.sort_by_key(|r| (r.created_at, r.id));

    let mut seen = Vec::new();
    for number in 0..4 {
        let page = store.list("alice", Page::number(number, 3)).await.unwrap();
        assert_eq!(page.total, 7);
        seen.extend(page.records);
    }
    assert_eq!(seen, mine);

    let everything = store.list("alice", Page::first(100)).await.unwrap();
    assert_eq!(everything.records, mine);
    let huge = store.list("alice", Page::first(u32::MAX)).await.unwrap();
    assert_eq!(huge.records.len(), 7, "limits are capped, not refused");
}

/// Numbered pages newest first are the same pages in reverse, and say whether another
/// follows.
pub async fn list_pages_newest_first<S: TokenStore>(store: S) {
    let mut mine = Vec::new();
    for i in 0..7u64 {
        let record = record("alice", at(i / 3));
        store.insert(record.clone()).await.unwrap();
        mine.push(record);
    }
    store.insert(record("bob", at(9))).await.unwrap();
    mine.sort_by_key(|r| Cursor::from(r));
    mine.reverse();

    let mut seen = Vec::new();
    for number in 0..3 {
        let page = Page::number(number, 3).newest_first();
        let page = store.list("alice", page).await.unwrap();
        assert_eq!(page.total, 7);
        let more = number < 2;
        let last = page.records.last().map(Cursor::from);
        assert_eq!(page.next, last.filter(|_| more), "page {number}'s next");
        seen.extend(page.records);
    }
    assert_eq!(seen, mine, "newest first is the exact reverse");
    let newest = store.list("alice", Page::first(2).newest_first()).await;
    assert_eq!(newest.unwrap().records, mine[..2]);
}

/// Paging from cursors, oldest first and newest first, while records are created and
/// revoked between pages: each page holds exactly the live records that follow its
/// cursor, so that a record live all along is seen exactly once, one revoked before its
/// page is read is not seen, and one created meanwhile is seen if it sorts after the
/// cursor; the cursor's own record may be gone. `total` counts the live records at each
/// page, and `next` is set exactly when another record follows.
pub async fn list_pages_from_a_cursor_across_changes<S: TokenStore>(store: S) {
    for (owner, order) in [("alice", Order::OldestFirst), ("carol", Order::NewestFirst)] {
        page_through_changes(&store, owner, order).await;
    }
}

async fn page_through_changes<S: TokenStore>(store: &S, owner: &str, order: Order) {
    use std::collections::BTreeMap;

    // What the store should list, by listing key.
    let mut live: BTreeMap<Cursor, TokenRecord> = BTreeMap::new();
    let insert = async |live: &mut BTreeMap<Cursor, TokenRecord>, record: TokenRecord| {
        store.insert(record.clone()).await.unwrap();
        live.insert(Cursor::from(&record), record);
    };
    let revoke = async |live: &mut BTreeMap<Cursor, TokenRecord>, key: Cursor| {
        assert!(store.revoke(key.id(), at(500)).await.unwrap());
        live.remove(&key);
    };
    // Several share a creation time: the id breaks the tie.
    for i in 0..14u64 {
        insert(&mut live, record(owner, at(10 + i / 3))).await;
    }
    // Never listed: another owner's, a session, and a record stored revoked.
    store.insert(record("bob", at(12))).await.unwrap();
    let session = TokenRecord {
        kind: TokenKind::Session,
        ..record(owner, at(12))
    };
    store.insert(session).await.unwrap();
    let stored_revoked = TokenRecord {
        revoked_at: Some(at(13)),
        ..record(owner, at(13))
    };
    store.insert(stored_revoked).await.unwrap();
    let initial: Vec<Cursor> = live.keys().copied().collect();

    // The listing order, from a place (exclusive) on.
    let expected = |live: &BTreeMap<Cursor, TokenRecord>, after: Option<Cursor>| {
        let mut records: Vec<TokenRecord> = live
            .iter()
            .filter(|(key, _)| match (after, order) {
                (None, _) => true,
                (Some(cursor), Order::OldestFirst) => **key > cursor,
                (Some(cursor), Order::NewestFirst) => **key < cursor,
            })
            .map(|(_, record)| record.clone())
            .collect();
        if order == Order::NewestFirst {
            records.reverse();
        }
        records
    };
    // Creation times that sort after every record, and before, in this order.
    let (later, earlier) = match order {
        Order::OldestFirst => (at(90), at(1)),
        Order::NewestFirst => (at(1), at(90)),
    };

    let mut seen: Vec<Cursor> = Vec::new();
    let mut revoked_unseen: Vec<Cursor> = Vec::new();
    let mut cursor = None;
    for round in 0.. {
        assert!(round < 10, "{order:?}: paging does not end");
        let page = match cursor {
            None => Page::first(4),
            Some(cursor) => Page::after(cursor, 4),
        }
        .in_order(order);
        let got = store.list(owner, page).await.unwrap();
        let want = expected(&live, cursor);
        assert_eq!(
            got.records,
            want[..want.len().min(4)],
            "{order:?}, page {round}: the live records that follow the cursor"
        );
        assert_eq!(
            got.total,
            live.len() as u64,
            "{order:?}, page {round}: total"
        );
        let last = got.records.last().map(Cursor::from);
        assert_eq!(
            got.next,
            last.filter(|_| want.len() > 4),
            "{order:?}, page {round}: next is set when, and only when, a record follows"
        );
        seen.extend(got.records.iter().map(Cursor::from));
        let Some(next) = got.next else { break };
        cursor = Some(next);

        // Between pages: one already seen goes and one not yet seen, and every other time
        // the cursor's own record; one is made that sorts after everything and one before
        // the cursor.
        if round % 2 == 1 {
            revoke(&mut live, next).await;
        }
        if let Some(&old) = seen.iter().find(|key| live.contains_key(key)) {
            revoke(&mut live, old).await;
        }
        if let Some(unseen) = expected(&live, Some(next)).get(1).map(Cursor::from) {
            revoke(&mut live, unseen).await;
            revoked_unseen.push(unseen);
        }
        if round < 2 {
            insert(&mut live, record(owner, later)).await;
            insert(&mut live, record(owner, earlier)).await;
        }
    }

    let unique: HashSet<Cursor> = seen.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "{order:?}: a record was listed twice"
    );
    for key in &initial {
        if live.contains_key(key) {
            assert!(
                unique.contains(key),
                "{order:?}: a record live all along was skipped"
            );
        }
    }
    for key in &revoked_unseen {
        assert!(
            !unique.contains(key),
            "{order:?}: a revoked record was listed"
        );
    }
    // A page that holds exactly what is left says it is the last.
    let rest = u32::try_from(live.len()).unwrap();
    let everything = store.list(owner, Page::first(rest).in_order(order)).await;
    let everything = everything.unwrap();
    assert_eq!(everything.records, expected(&live, None));
    assert_eq!(
        everything.next, None,
        "{order:?}: a page holding the rest exactly"
    );
}

/// An owner with nothing is an empty page; owners are compared exactly.
pub async fn list_for_an_unknown_owner_is_empty<S: TokenStore>(store: S) {
    store.insert(record("alice", at(0))).await.unwrap();
    let page = store.list("nobody", Page::default()).await.unwrap();
    assert_eq!((page.records.len(), page.total), (0, 0));
    let page = store.list("ALICE", Page::default()).await.unwrap();
    assert_eq!(page.total, 0, "owners are compared exactly");
}

/// The first revocation time is kept, revoked records leave listings, and their ids are
/// never issued again.
pub async fn revoke_is_idempotent_and_final<S: TokenStore>(store: S) {
    let record = record("alice", at(0));
    store.insert(record.clone()).await.unwrap();
    assert!(store.revoke(record.id, at(10)).await.unwrap());
    assert!(!store.revoke(record.id, at(20)).await.unwrap());

    let revoked = store.get(record.id).await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(at(10)),
        "the first revocation time is kept"
    );
    assert_eq!(store.list("alice", Page::default()).await.unwrap().total, 0);

    // The id can never be issued again.
    let again = TokenRecord {
        revoked_at: None,
        ..record.clone()
    };
    assert!(matches!(
        store.insert(again).await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(
        store
            .get(record.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );

    let stranger = self::record("alice", at(0));
    assert!(!store.revoke(stranger.id, at(10)).await.unwrap());
}

/// Expired records are kept and listed, so that their owner sees and can remove them.
pub async fn expired_records_are_kept_and_listed<S: TokenStore>(store: S) {
    let expired = TokenRecord {
        expires_at: Some(at(1)),
        ..record("alice", at(0))
    };
    store.insert(expired.clone()).await.unwrap();
    assert_eq!(store.get(expired.id).await.unwrap(), Some(expired.clone()));
    let page = store.list("alice", Page::default()).await.unwrap();
    assert_eq!(page.records, [expired]);
}

/// Sessions are stored, read back and revoked like any token, but never listed.
pub async fn sessions_are_never_listed<S: TokenStore>(store: S) {
    let listed = record("alice", at(0));
    let session = TokenRecord {
        kind: TokenKind::Session,
        ..record("alice", at(1))
    };
    store.insert(listed.clone()).await.unwrap();
    store.insert(session.clone()).await.unwrap();
    assert_eq!(store.get(session.id).await.unwrap(), Some(session.clone()));
    let page = store.list("alice", Page::default()).await.unwrap();
    assert_eq!(page.records, [listed], "a session was listed");
    assert_eq!(page.total, 1, "a session was counted");
    assert!(store.revoke(session.id, at(2)).await.unwrap());
}

/// Exchanged tokens (trusted publishing's) are stored, read back and revoked like any
/// token, one at a time or all of an owner's, but never listed.
pub async fn exchanged_tokens_are_never_listed<S: TokenStore>(store: S) {
    let listed = record("alice", at(0));
    let exchanged = |created| TokenRecord {
        kind: TokenKind::Exchanged,
        grants: Grants::new([Grant::new(
            ResourcePattern::Exact("@acme/tool".into()),
            Permission::ReadWrite,
        )])
        .unwrap(),
        second_factor: SecondFactor::Bypassed,
        expires_at: Some(at(900)),
        ..record("alice", created)
    };
    let (one, two) = (exchanged(at(1)), exchanged(at(2)));
    for record in [&listed, &one, &two] {
        store.insert(record.clone()).await.unwrap();
    }
    assert_eq!(store.get(one.id).await.unwrap(), Some(one.clone()));
    let page = store.list("alice", Page::default()).await.unwrap();
    assert_eq!(page.records, [listed], "an exchanged token was listed");
    assert_eq!(page.total, 1, "an exchanged token was counted");
    assert!(store.revoke(one.id, at(3)).await.unwrap());
    let revoked = store
        .revoke_all("alice", TokenKind::Exchanged, None, at(4))
        .await
        .unwrap();
    assert_eq!(revoked, [two.id], "revoke_all of exchanged tokens");
    assert_eq!(store.list("alice", Page::default()).await.unwrap().total, 1);
}

/// `revoke_all` revokes every live record of one owner and kind, more than a page of them,
/// but the one it is told to keep, and says which; records already revoked keep their
/// time, and other owners and kinds are untouched.
pub async fn revoke_all_takes_every_live_token_of_one_owner_and_kind<S: TokenStore>(store: S) {
    let insert = async |record: TokenRecord| {
        store.insert(record.clone()).await.unwrap();
        record
    };
    let session = |owner: &str, created| TokenRecord {
        kind: TokenKind::Session,
        ..record(owner, created)
    };
    let mut sessions = Vec::new();
    for i in 0..150 {
        sessions.push(insert(session("alice", at(i % 5))).await);
    }
    let earlier = insert(session("alice", at(0))).await;
    assert!(store.revoke(earlier.id, at(3)).await.unwrap());
    let mut untouched = Vec::new();
    for _ in 0..3 {
        untouched.push(insert(record("alice", at(1))).await);
        untouched.push(insert(session("bob", at(1))).await);
    }
    untouched.push(insert(session("ALICE", at(1))).await);
    let kept = insert(session("alice", at(2))).await;

    let revoked = store
        .revoke_all("alice", TokenKind::Session, Some(kept.id), at(50))
        .await
        .unwrap();
    let revoked_ids: HashSet<TokenId> = revoked.iter().copied().collect();
    assert_eq!(revoked.len(), revoked_ids.len(), "an id was returned twice");
    let expected: HashSet<TokenId> = sessions.iter().map(|r| r.id).collect();
    assert_eq!(
        revoked_ids, expected,
        "every live session of alice's and nothing else"
    );
    let revoked_at = async |id| store.get(id).await.unwrap().unwrap().revoked_at;
    for record in &sessions {
        assert_eq!(revoked_at(record.id).await, Some(at(50)));
    }
    assert_eq!(
        revoked_at(earlier.id).await,
        Some(at(3)),
        "the first revocation time is kept"
    );
    for record in &untouched {
        assert_eq!(
            revoked_at(record.id).await,
            None,
            "{}'s {:?} token was revoked",
            record.owner,
            record.kind
        );
    }
    assert_eq!(store.list("alice", Page::default()).await.unwrap().total, 3);
    assert_eq!(
        revoked_at(kept.id).await,
        None,
        "the one to keep was revoked"
    );

    let again = store.revoke_all("alice", TokenKind::Session, None, at(60));
    assert_eq!(
        again.await.unwrap(),
        [kept.id],
        "the one kept, when not kept again"
    );
    let again = store.revoke_all("alice", TokenKind::Session, None, at(60));
    assert_eq!(again.await.unwrap(), [], "nothing left to revoke");
    let nobody = store.revoke_all("nobody", TokenKind::Session, None, at(60));
    assert_eq!(nobody.await.unwrap(), []);
    let standard = store
        .revoke_all("alice", TokenKind::Standard, None, at(70))
        .await
        .unwrap();
    assert_eq!(standard.len(), 3, "any kind, not only sessions");
    assert_eq!(store.list("alice", Page::default()).await.unwrap().total, 0);
}

/// Through [`Tokens::revoke_all`], every token revoked is refused at once, those already
/// cached included, and the others are still accepted.
pub async fn revoke_all_refuses_cached_tokens_at_once<S: TokenStore>(store: S) {
    let tokens = Tokens::builder(store)
        .cache_ttl(Duration::from_secs(3600))
        .build();
    let create = async |owner: &str, options: NewToken| {
        let created = tokens.create(owner, options).await.unwrap();
        created.token.expose_secret().to_owned()
    };
    let mut sessions = Vec::new();
    for _ in 0..120 {
        sessions.push(create("alice", NewToken::session()).await);
    }
    let kept = [
        create("alice", NewToken::read_write()).await,
        create("bob", NewToken::session()).await,
    ];
    let accepted = async |token: &str| tokens.authenticate(token, None, Action::Read).await;
    // Every one is cached now, for an hour.
    for token in sessions.iter().chain(&kept) {
        accepted(token).await.unwrap();
    }

    let count = tokens.revoke_all("alice", TokenKind::Session).await;
    assert_eq!(count.unwrap(), 120);
    for token in &sessions {
        let refused = accepted(token).await.err().map(|r| r.reason());
        assert_eq!(
            refused,
            Some(Reason::Revoked),
            "a cached session was served"
        );
    }
    for token in &kept {
        assert!(
            accepted(token).await.is_ok(),
            "a token of another kind or owner"
        );
    }
}

/// Last-used times only move forward, and unknown ids are ignored. A store that keeps the
/// trait's default `record_use` records nothing, and passes.
pub async fn uses_only_move_forward<S: TokenStore>(store: S) {
    let record = record("alice", at(0));
    store.insert(record.clone()).await.unwrap();
    let stranger = self::record("alice", at(0));
    store
        .record_use(vec![(record.id, at(60)), (stranger.id, at(60))])
        .await
        .unwrap();
    let last_used = async |store: &S| store.get(record.id).await.unwrap().unwrap().last_used_at;
    match last_used(&store).await {
        // The trait's default: uses are not recorded.
        None => return,
        Some(first) => assert_eq!(first, at(60), "the use recorded is the one reported"),
    }
    store.record_use(vec![(record.id, at(30))]).await.unwrap();
    assert_eq!(last_used(&store).await, Some(at(60)));
    store.record_use(vec![(record.id, at(120))]).await.unwrap();
    assert_eq!(last_used(&store).await, Some(at(120)));
    assert_eq!(store.get(stranger.id).await.unwrap(), None);
}

/// Concurrent inserts all land, and of two concurrent revocations exactly one reports it.
pub async fn concurrent_inserts_and_revokes<S: TokenStore + Clone>(store: S) {
    let records: Vec<TokenRecord> = (0..200).map(|i| record("crowd", at(i % 10))).collect();
    let inserts: Vec<_> = records
        .iter()
        .cloned()
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move { store.insert(r).await })
        })
        .collect();
    for insert in inserts {
        insert.await.unwrap().unwrap();
    }
    // Revoke every other one, each twice at once, with reads in between.
    let tasks: Vec<_> = records
        .iter()
        .step_by(2)
        .flat_map(|r| [r.id, r.id])
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                let revoked = store.revoke(id, at(100)).await.unwrap();
                assert!(store.get(id).await.unwrap().unwrap().revoked_at.is_some());
                revoked
            })
        })
        .collect();
    let mut revoked = 0;
    for task in tasks {
        revoked += usize::from(task.await.unwrap());
    }
    assert_eq!(
        revoked, 100,
        "each token revoked by exactly one of its two calls"
    );
    let page = store.list("crowd", Page::first(1_000)).await.unwrap();
    assert_eq!(page.total, 100);
    let live: HashSet<_> = page.records.iter().map(|r| r.id).collect();
    let expected: HashSet<_> = records.iter().skip(1).step_by(2).map(|r| r.id).collect();
    assert_eq!(live, expected);
}

/// An ID token's use is recorded once (feature `oidc`, [`TokenStore::id_token_first_use`]):
/// the first use is `true`, a replay `false` for as long as it is remembered, and keys are
/// the issuer and the `jti` together, compared exactly. Without the feature there is
/// nothing to check, and it passes.
pub async fn id_token_uses_are_single<S: TokenStore>(store: S) {
    #[cfg(feature = "oidc")]
    {
        use crate::oidc::ReplayKey;
        let first = async |issuer: &str, jti: &str, now| {
            let key = ReplayKey::new(issuer, jti);
            store.id_token_first_use(&key, at(300), now).await.unwrap()
        };
        let issuer = "https://token.actions.githubusercontent.com";
        assert!(first(issuer, "jti-1", at(0)).await, "a first use");
        assert!(
            !first(issuer, "jti-1", at(0)).await,
            "a replay was accepted"
        );
        assert!(
            !first(issuer, "jti-1", at(299)).await,
            "a replay before `until` was accepted"
        );
        assert!(
            first("https://gitlab.com", "jti-1", at(1)).await,
            "the same jti from another issuer is another token"
        );
        assert!(
            first(&format!("{issuer}/"), "jti-1", at(1)).await,
            "issuers are compared exactly"
        );
        assert!(
            first(issuer, "JTI-1", at(1)).await,
            "jtis are compared exactly"
        );
        assert!(first(issuer, "jti-2", at(1)).await, "another jti");
        assert!(
            !first(issuer, "jti-2", at(2)).await,
            "a replay was accepted"
        );
    }
    #[cfg(not(feature = "oidc"))]
    drop(store);
}

/// Once `now` reaches a use's `until` the store may forget it, and may not: a later call
/// answers either way, but without an error. Uses still remembered stay remembered
/// whatever the store drops of the expired ones. Without the feature `oidc`, it passes.
pub async fn id_token_uses_expire<S: TokenStore>(store: S) {
    #[cfg(feature = "oidc")]
    {
        use crate::oidc::ReplayKey;
        let issuer = "https://gitlab.com";
        let short = ReplayKey::new(issuer, "short");
        let long = ReplayKey::new(issuer, "long");
        assert!(
            store
                .id_token_first_use(&short, at(10), at(0))
                .await
                .unwrap()
        );
        assert!(
            store
                .id_token_first_use(&long, at(100), at(0))
                .await
                .unwrap()
        );
        // Past `short`'s time: either answer, never an error.
        let again = store.id_token_first_use(&short, at(70), at(11)).await;
        assert!(again.is_ok(), "a use past its time: {again:?}");
        // Whatever was dropped, `long` is still remembered.
        for n in 0..5 {
            let other = ReplayKey::new(issuer, format!("other-{n}"));
            assert!(
                store
                    .id_token_first_use(&other, at(90), at(50))
                    .await
                    .unwrap()
            );
        }
        assert!(
            !store
                .id_token_first_use(&long, at(200), at(60))
                .await
                .unwrap(),
            "a use still remembered was forgotten"
        );
    }
    #[cfg(not(feature = "oidc"))]
    drop(store);
}

/// Of many concurrent first uses of one ID token, exactly one is `true`. Without the
/// feature `oidc`, it passes.
pub async fn concurrent_first_uses_of_one_id_token<S: TokenStore + Clone>(store: S) {
    #[cfg(feature = "oidc")]
    {
        use crate::oidc::ReplayKey;
        let key = ReplayKey::new("https://oidc.circleci.com/org/acme", "jti-race");
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.id_token_first_use(&key, at(300), at(0)).await })
            })
            .collect();
        let mut firsts = 0;
        for task in tasks {
            firsts += usize::from(task.await.unwrap().unwrap());
        }
        assert_eq!(
            firsts, 1,
            "concurrent uses of one ID token: {firsts} accepted"
        );
    }
    #[cfg(not(feature = "oidc"))]
    drop(store);
}

/// Runs `future` to completion on a runtime of its own, as each test of
/// [`store_contract_tests!`](crate::store_contract_tests) does.
///
/// # Panics
///
/// When the runtime cannot be built, or when `future` panics.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the store contract")
        .block_on(future)
}

/// Every clause in turn, each on a fresh store from `fresh`.
///
/// # Panics
///
/// Naming the clause's failed check, when the store breaks one.
pub async fn run_all<S, F, Fut>(mut fresh: F)
where
    S: TokenStore + Clone,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    insert_then_get_round_trips(fresh().await).await;
    stage_only_tokens_keep_their_grant(fresh().await).await;
    get_of_an_unknown_id_is_none(fresh().await).await;
    insert_never_overwrites(fresh().await).await;
    list_pages_in_a_stable_order(fresh().await).await;
    list_pages_newest_first(fresh().await).await;
    list_pages_from_a_cursor_across_changes(fresh().await).await;
    list_for_an_unknown_owner_is_empty(fresh().await).await;
    revoke_is_idempotent_and_final(fresh().await).await;
    expired_records_are_kept_and_listed(fresh().await).await;
    sessions_are_never_listed(fresh().await).await;
    exchanged_tokens_are_never_listed(fresh().await).await;
    revoke_all_takes_every_live_token_of_one_owner_and_kind(fresh().await).await;
    revoke_all_refuses_cached_tokens_at_once(fresh().await).await;
    uses_only_move_forward(fresh().await).await;
    concurrent_inserts_and_revokes(fresh().await).await;
    id_token_uses_are_single(fresh().await).await;
    id_token_uses_expire(fresh().await).await;
    concurrent_first_uses_of_one_id_token(fresh().await).await;
}

/// One `#[test]` per clause of the [`TokenStore`](crate::store::TokenStore) contract
/// (feature `test-util`), each on a fresh store made by the expression given, which is
/// evaluated in an async context and may `.await`.
///
/// ```
/// tokengate::store_contract_tests!(tokengate::store::MemoryStore::new());
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($fresh:expr) => {
        $crate::store_contract_tests!(@tests $fresh;
            insert_then_get_round_trips,
            stage_only_tokens_keep_their_grant,
            get_of_an_unknown_id_is_none,
            insert_never_overwrites,
            list_pages_in_a_stable_order,
            list_pages_newest_first,
            list_pages_from_a_cursor_across_changes,
            list_for_an_unknown_owner_is_empty,
            revoke_is_idempotent_and_final,
            expired_records_are_kept_and_listed,
            sessions_are_never_listed,
            exchanged_tokens_are_never_listed,
            revoke_all_takes_every_live_token_of_one_owner_and_kind,
            revoke_all_refuses_cached_tokens_at_once,
            uses_only_move_forward,
            concurrent_inserts_and_revokes,
            id_token_uses_are_single,
            id_token_uses_expire,
            concurrent_first_uses_of_one_id_token,
        );
    };
    (@tests $fresh:expr; $($clause:ident,)*) => {
        $(
            #[test]
            fn $clause() {
                $crate::store::contract::block_on(async {
                    $crate::store::contract::$clause($fresh).await;
                });
            }
        )*
    };
}
