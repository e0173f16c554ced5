//! Model-based test: random sequences of create / revoke / authenticate / time passing,
//! run against `Tokens` (with its cache) and against a plain reference model. Every step
//! must give the same decision. Runs over the memory store, and over SQLite and PostgreSQL
//! when their features are on.

mod support;

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use tokengate::store::{MemoryStore, TokenStore};
use tokengate::{
    Action, Clock, Grant, Grants, ManualClock, NewToken, Permission, Reason, Resource,
    ResourcePattern, TokenFormatError, Tokens,
};

#[derive(Clone, Copy, Debug)]
enum Client {
    Inside,
    InsideMapped,
    Outside,
    Unknown,
}

impl Client {
    fn address(self) -> Option<IpAddr> {
        match self {
            Client::Inside => Some("10.1.2.3".parse().unwrap()),
            Client::InsideMapped => Some("::ffff:10.9.9.9".parse().unwrap()),
            Client::Outside => Some("192.0.2.1".parse().unwrap()),
            Client::Unknown => None,
        }
    }

    fn inside(self) -> Option<bool> {
        match self {
            Client::Inside | Client::InsideMapped => Some(true),
            Client::Outside => Some(false),
            Client::Unknown => None,
        }
    }
}

/// The grants a token is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `*` read-only: a classic read-only token.
    AllReadOnly,
    /// `*` read-write: a classic full token.
    AllReadWrite,
    /// `pkg-a` read-write and nothing else.
    OnlyPkgA,
    /// `@s/*` read-write over `*` read-only.
    ScopeOverReadOnly,
    /// `*` read-stage: a classic stage-only token.
    AllReadStage,
    /// `pkg-a` read-stage over `*` read-only: a CI token that stages one package.
    StagePkgAOverReadOnly,
}

impl Shape {
    fn grants(self) -> Grants {
        let grant = |pattern: &str, permission| {
            Grant::new(ResourcePattern::parse(pattern).unwrap(), permission)
        };
        match self {
            Shape::AllReadOnly => Grants::everything(Permission::ReadOnly),
            Shape::AllReadWrite => Grants::everything(Permission::ReadWrite),
            Shape::OnlyPkgA => Grants::new([grant("pkg-a", Permission::ReadWrite)]).unwrap(),
            Shape::ScopeOverReadOnly => Grants::new([
                grant("@s/*", Permission::ReadWrite),
                grant("*", Permission::ReadOnly),
            ])
            .unwrap(),
            Shape::AllReadStage => Grants::everything(Permission::ReadStage),
            Shape::StagePkgAOverReadOnly => Grants::new([
                grant("pkg-a", Permission::ReadStage),
                grant("*", Permission::ReadOnly),
            ])
            .unwrap(),
        }
    }

    /// The decision on `target`, worked out by hand for each shape.
    fn decide(self, action: Action, target: Option<&str>) -> Result<(), Reason> {
        let read = action == Action::Read;
        let write = action == Action::Write;
        let told_to_stage = Err(Reason::NotPermitted(Permission::ReadStage));
        match (self, target) {
            (Shape::AllReadOnly, _) if !read => Err(Reason::ReadOnly),
            (Shape::AllReadOnly | Shape::AllReadWrite, _) => Ok(()),
            (Shape::OnlyPkgA | Shape::ScopeOverReadOnly, None) => Ok(()),
            (Shape::OnlyPkgA, Some("pkg-a")) => Ok(()),
            (Shape::OnlyPkgA, Some(_)) => Err(Reason::NotPermitted(Permission::NoAccess)),
            (Shape::ScopeOverReadOnly, Some(t)) if t.starts_with("@s/") || read => Ok(()),
            (Shape::ScopeOverReadOnly, Some(_)) => Err(Reason::NotPermitted(Permission::ReadOnly)),
            (Shape::AllReadStage, _) if write => told_to_stage,
            (Shape::AllReadStage, _) => Ok(()),
            (Shape::StagePkgAOverReadOnly, None | Some("pkg-a")) if write => told_to_stage,
            (Shape::StagePkgAOverReadOnly, None | Some("pkg-a")) => Ok(()),
            (Shape::StagePkgAOverReadOnly, Some(_)) if read => Ok(()),
            (Shape::StagePkgAOverReadOnly, Some(_)) => {
                Err(Reason::NotPermitted(Permission::ReadOnly))
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        shape: Shape,
        restricted: bool,
        lifetime: Option<u64>,
    },
    Revoke {
        which: usize,
        by_full_token: bool,
    },
    Authenticate {
        which: Which,
        action: Action,
        target: Option<&'static str>,
        client: Client,
    },
    Advance {
        seconds: u64,
    },
}

#[derive(Clone, Copy, Debug)]
enum Which {
    Issued(usize),
    Unknown,
    Mistyped(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let client = prop_oneof![
        Just(Client::Inside),
        Just(Client::InsideMapped),
        Just(Client::Outside),
        Just(Client::Unknown)
    ];
    let shape = prop_oneof![
        Just(Shape::AllReadOnly),
        Just(Shape::AllReadWrite),
        Just(Shape::OnlyPkgA),
        Just(Shape::ScopeOverReadOnly),
        Just(Shape::AllReadStage),
        Just(Shape::StagePkgAOverReadOnly),
    ];
    let target = prop_oneof![
        Just(None),
        Just(Some("pkg-a")),
        Just(Some("@s/x")),
        Just(Some("other")),
    ];
    let which = prop_oneof![
        6 => any::<usize>().prop_map(Which::Issued),
        1 => Just(Which::Unknown),
        1 => any::<usize>().prop_map(Which::Mistyped),
    ];
    prop_oneof![
        2 => (shape, any::<bool>(), proptest::option::of(1u64..600)).prop_map(
            |(shape, restricted, lifetime)| Op::Create { shape, restricted, lifetime }
        ),
        1 => (any::<usize>(), any::<bool>())
            .prop_map(|(which, by_full_token)| Op::Revoke { which, by_full_token }),
        6 => (which, prop_oneof![Just(Action::Read), Just(Action::Stage), Just(Action::Write)], target, client)
            .prop_map(|(which, action, target, client)| {
                Op::Authenticate { which, action, target, client }
            }),
        1 => (0u64..400).prop_map(|seconds| Op::Advance { seconds }),
    ]
}

/// What the reference model knows of a token.
struct Issued {
    token: String,
    id: String,
    shape: Shape,
    restricted: bool,
    expires_at: Option<SystemTime>,
    revoked: bool,
}

/// The decision, worked out from the model alone.
fn expected(
    issued: &Issued,
    now: SystemTime,
    action: Action,
    target: Option<&str>,
    client: Client,
) -> Result<(), Reason> {
    if issued.revoked {
        return Err(Reason::Revoked);
    }
    if issued.expires_at.is_some_and(|at| now >= at) {
        return Err(Reason::Expired);
    }
    if issued.restricted {
        match client.inside() {
            None => return Err(Reason::NoClientAddress),
            Some(false) => return Err(Reason::AddressNotAllowed),
            Some(true) => {}
        }
    }
    issued.shape.decide(action, target)
}

async fn run_model<S: TokenStore>(store: S, ops: Vec<Op>) {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let clock = ManualClock::new(start);
    let tokens = Tokens::builder(store)
        .prefix("npm")
        .unwrap()
        .clock(clock.clone())
        .build();
    let stranger = Tokens::builder(MemoryStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let mut model: Vec<Issued> = Vec::new();

    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Create {
                shape,
                restricted,
                lifetime,
            } => {
                let mut options = NewToken::with_grants(shape.grants());
                if restricted {
                    options = options.allow_cidrs(["10.0.0.0/8"]);
                }
                if let Some(seconds) = lifetime {
                    options = options.expires_in(Duration::from_secs(seconds));
                }
                let created = tokens.create("owner", options).await.unwrap();
                model.push(Issued {
                    token: created.token.expose_secret().to_owned(),
                    id: created.listing.id.to_string(),
                    shape,
                    restricted,
                    expires_at: lifetime.map(|s| clock.now() + Duration::from_secs(s)),
                    revoked: false,
                });
            }
            Op::Revoke {
                which,
                by_full_token,
            } => {
                if model.is_empty() {
                    continue;
                }
                let count = model.len();
                let issued = &mut model[which % count];
                let reference = if by_full_token {
                    &issued.token
                } else {
                    &issued.id
                };
                let revoked = tokens.revoke(reference).await.unwrap();
                assert_eq!(revoked, !issued.revoked, "step {step}: revoke");
                issued.revoked = true;
            }
            Op::Authenticate {
                which,
                action,
                target,
                client,
            } => {
                let now = clock.now();
                let (token, want) = match which {
                    Which::Issued(i) if !model.is_empty() => {
                        let issued = &model[i % model.len()];
                        (
                            issued.token.clone(),
                            expected(issued, now, action, target, client),
                        )
                    }
                    Which::Mistyped(i) if !model.is_empty() => {
                        let mut token = model[i % model.len()].token.clone().into_bytes();
                        let last = token.len() - 1;
                        token[last] = if token[last] == b'a' { b'b' } else { b'a' };
                        (
                            String::from_utf8(token).unwrap(),
                            Err(Reason::Malformed(TokenFormatError::BadChecksum)),
                        )
                    }
                    _ => {
                        let created = stranger
                            .create("eve", NewToken::read_write())
                            .await
                            .unwrap();
                        (
                            created.token.expose_secret().to_owned(),
                            Err(Reason::UnknownToken),
                        )
                    }
                };
                let resource = target.map(Resource::new);
                let got = match &resource {
                    Some(resource) => {
                        tokens
                            .authenticate_on(&token, client.address(), action, resource)
                            .await
                    }
                    None => tokens.authenticate(&token, client.address(), action).await,
                };
                let got = got.map(|_| ()).map_err(|rejection| rejection.reason());
                assert_eq!(
                    got, want,
                    "step {step}: {which:?} {action:?} {target:?} {client:?}"
                );
            }
            Op::Advance { seconds } => clock.advance(Duration::from_secs(seconds)),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn memory_store_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        runtime().block_on(run_model(MemoryStore::new(), ops));
    }
}

#[cfg(feature = "sqlite")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn sqlite_store_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = tokengate::store::SqliteStore::open(dir.path().join("tokens.db")).await.unwrap();
            run_model(store, ops).await;
        });
    }
}

#[cfg(feature = "postgres")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn postgres_store_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        runtime().block_on(async {
            let url = std::env::var("TOKENGATE_TEST_POSTGRES_URL")
                .expect("TOKENGATE_TEST_POSTGRES_URL must be set for the postgres feature's tests");
            let schema = format!("model_{}_{}", std::process::id(), SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos());
            let store = tokengate::store::PostgresStore::builder(&url).schema(&schema).connect().await.unwrap();
            run_model(store, ops).await;
        });
    }
}
