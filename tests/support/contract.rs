//! The `TokenStore` contract, written once. `store_contract!(factory)` expands to one test
//! per clause for a backend; `factory` is an async expression giving a fresh, empty store.
#![allow(dead_code)]

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use tokengate::store::Page;
use tokengate::token::generate;
use tokengate::{
    Access, CidrList, StoreError, TokenPrefix, TokenRecord, TokenStore, cidr::MAX_CIDR_ENTRIES,
};

/// A point in time with whole milliseconds, as stores keep them.
pub fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + seconds * 1_000 + 123)
}

pub fn record(owner: &str, created: SystemTime) -> TokenRecord {
    let token = generate(&TokenPrefix::default()).unwrap();
    TokenRecord {
        id: token.id(),
        owner: owner.to_owned(),
        digest: token.digest(),
        access: Access::ReadWrite,
        cidr: CidrList::any(),
        created_at: created,
        expires_at: None,
        revoked_at: None,
        name: None,
        description: None,
        last_used_at: None,
    }
}

/// Every field set, with the awkward text and the largest allow-list.
fn full_record() -> TokenRecord {
    let mut cidr: Vec<String> = (0..MAX_CIDR_ENTRIES / 2)
        .map(|i| format!("10.{i}.0.0/16"))
        .collect();
    cidr.extend((0..MAX_CIDR_ENTRIES / 2).map(|i| format!("2001:db8:{i:x}::/48")));
    TokenRecord {
        access: Access::ReadOnly,
        cidr: CidrList::parse(&cidr).unwrap(),
        expires_at: Some(at(86_400)),
        name: Some("Robert'); DROP TABLE tokens;-- \"名前\"".into()),
        description: Some("línea 1\nline \"2\" \\ 'three' 🦀".into()),
        last_used_at: Some(at(5)),
        ..record("zoë \"o'brien\" 山田", at(0))
    }
}

pub async fn insert_then_get_round_trips<S: TokenStore>(store: S) {
    let full = full_record();
    store.insert(full.clone()).await.unwrap();
    assert_eq!(store.get(full.id).await.unwrap(), Some(full.clone()));
    let plain = record("alice", at(1));
    store.insert(plain.clone()).await.unwrap();
    assert_eq!(store.get(plain.id).await.unwrap(), Some(plain));
}

pub async fn get_of_an_unknown_id_is_none<S: TokenStore>(store: S) {
    let stranger = record("alice", at(0));
    assert_eq!(store.get(stranger.id).await.unwrap(), None);
}

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

pub async fn list_for_an_unknown_owner_is_empty<S: TokenStore>(store: S) {
    store.insert(record("alice", at(0))).await.unwrap();
    let page = store.list("nobody", Page::default()).await.unwrap();
    assert_eq!((page.records.len(), page.total), (0, 0));
    let page = store.list("ALICE", Page::default()).await.unwrap();
    assert_eq!(page.total, 0, "owners are compared exactly");
}

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

pub async fn uses_only_move_forward<S: TokenStore>(store: S) {
    let record = record("alice", at(0));
    store.insert(record.clone()).await.unwrap();
    let stranger = self::record("alice", at(0));
    store
        .record_use(vec![(record.id, at(60)), (stranger.id, at(60))])
        .await
        .unwrap();
    let last_used = async |store: &S| store.get(record.id).await.unwrap().unwrap().last_used_at;
    assert_eq!(last_used(&store).await, Some(at(60)));
    store.record_use(vec![(record.id, at(30))]).await.unwrap();
    assert_eq!(last_used(&store).await, Some(at(60)));
    store.record_use(vec![(record.id, at(120))]).await.unwrap();
    assert_eq!(last_used(&store).await, Some(at(120)));
    assert_eq!(store.get(stranger.id).await.unwrap(), None);
}

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

#[macro_export]
macro_rules! store_contract {
    ($factory:expr) => {
        $crate::store_contract!(@tests $factory;
            insert_then_get_round_trips,
            get_of_an_unknown_id_is_none,
            insert_never_overwrites,
            list_pages_in_a_stable_order,
            list_for_an_unknown_owner_is_empty,
            revoke_is_idempotent_and_final,
            expired_records_are_kept_and_listed,
            uses_only_move_forward,
            concurrent_inserts_and_revokes,
        );
    };
    (@tests $factory:expr; $($clause:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $clause() {
                $crate::support::contract::$clause($factory).await;
            }
        )*
    };
}
