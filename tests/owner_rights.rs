//! The owner's current rights through the layer: the application's check runs after the
//! token's grants, its answers are cached no longer than records, dropped when the owner's
//! rights change, and an error refuses.

mod support;

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use support::TestStore;
use support::rights::Writers;
use tokengate::store::Page;
use tokengate::{
    Action, Authenticated, ManualClock, NewToken, Reason, Resource, TokenAuthLayer, Tokens,
};
use tower::{ServiceBuilder, ServiceExt};

type Body = Full<Bytes>;

const TTL: Duration = Duration::from_secs(60);

/// A manager whose owners' rights are `writers`, on a clock the test moves, and its gate
/// (the first path segment is the resource).
struct Setup {
    writers: Writers,
    clock: ManualClock,
    tokens: Tokens<TestStore>,
    layer: TokenAuthLayer<TestStore>,
}

impl Setup {
    /// The owners in `writers` (owner, resource) may write those resources.
    fn new(writers: &[(&str, &str)]) -> Self {
        let (rights, clock) = (Writers::default(), ManualClock::new(SystemTime::now()));
        for (owner, resource) in writers {
            rights.allow(owner, resource);
        }
        let tokens = Tokens::builder(TestStore::new())
            .prefix("npm")
            .unwrap()
            .clock(clock.clone())
            .cache_ttl(TTL)
            .owner_rights(rights.clone())
            .build();
        let layer = TokenAuthLayer::new(tokens.clone()).resources(support::first_segment);
        Self {
            writers: rights,
            clock,
            tokens,
            layer,
        }
    }

    /// A new token of `owner`'s.
    async fn token(&self, owner: &str, options: NewToken) -> String {
        let created = self.tokens.create(owner, options).await.unwrap();
        created.token.expose_secret().to_owned()
    }

    async fn send(&self, method: Method, path: &str, token: &str) -> Reply {
        let service = ServiceBuilder::new()
            .layer(self.layer.clone())
            .service_fn(who);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::default())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|value| value.to_str().unwrap().to_owned());
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            challenge,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn status(&self, method: Method, path: &str, token: &str) -> StatusCode {
        self.send(method, path, token).await.status
    }
}

async fn who(request: Request<Body>) -> Result<Response<Body>, Infallible> {
    let owner = request
        .extensions()
        .get::<Authenticated>()
        .map_or("anonymous", Authenticated::owner)
        .to_owned();
    Ok(Response::new(Full::new(Bytes::from(owner))))
}

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    body: String,
}

#[tokio::test]
async fn a_withdrawn_right_is_refused_on_the_very_next_request_and_the_token_lives_on() {
    let setup = Setup::new(&[("alice", "tool")]);
    let token = setup.token("alice", NewToken::read_write()).await;
    assert_eq!(
        setup.status(Method::PUT, "/tool", &token).await,
        StatusCode::OK
    );
    assert_eq!(
        setup.status(Method::PUT, "/tool", &token).await,
        StatusCode::OK
    );
    assert_eq!(
        setup.writers.checks(),
        1,
        "the second write was answered from the cache"
    );

    setup.writers.deny("alice", "tool");
    setup.tokens.owner_rights_changed("alice").await.unwrap();
    let refused = setup.send(Method::PUT, "/tool", &token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.challenge.as_deref(),
        Some(r#"Bearer realm="tokengate", error="insufficient_scope""#)
    );
    assert!(
        refused
            .body
            .contains("this token's owner may not do this to tool (any longer)"),
        "{}",
        refused.body
    );
    // Only what the owner lost is refused: reads still go through, and the token is live.
    assert_eq!(
        setup.status(Method::GET, "/tool", &token).await,
        StatusCode::OK
    );
    let listed = setup.tokens.list("alice", Page::first(10)).await.unwrap();
    assert_eq!(listed.total, 1, "the token was not revoked");
}

#[tokio::test]
async fn a_right_given_back_is_seen_on_the_next_request() {
    let setup = Setup::new(&[]);
    let token = setup.token("bob", NewToken::read_write()).await;
    assert_eq!(
        setup.status(Method::PUT, "/tool", &token).await,
        StatusCode::FORBIDDEN
    );
    setup.writers.allow("bob", "tool");
    setup.tokens.owner_rights_changed("bob").await.unwrap();
    assert_eq!(
        setup.status(Method::PUT, "/tool", &token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_tokens_own_grants_decide_first_and_the_owner_is_not_asked() {
    let setup = Setup::new(&[("alice", "tool")]);
    let token = setup.token("alice", NewToken::read_only()).await;
    let refused = setup.send(Method::PUT, "/tool", &token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("read-only"), "{}", refused.body);
    assert_eq!(setup.writers.checks(), 0);
}

#[tokio::test]
async fn a_check_that_fails_refuses_with_503_and_caches_nothing() {
    let setup = Setup::new(&[("alice", "tool")]);
    let token = setup.token("alice", NewToken::read_write()).await;
    setup.writers.set_failing(true);
    for _ in 0..2 {
        let refused = setup.send(Method::GET, "/tool", &token).await;
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            refused.body.contains("rights cannot be checked"),
            "{}",
            refused.body
        );
    }
    assert_eq!(setup.writers.checks(), 2, "a failure is never cached");
    setup.writers.set_failing(false);
    assert_eq!(
        setup.status(Method::GET, "/tool", &token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn answers_live_no_longer_than_records() {
    let setup = Setup::new(&[("alice", "tool")]);
    let token = setup.token("alice", NewToken::read_write()).await;
    assert_eq!(
        setup.status(Method::PUT, "/tool", &token).await,
        StatusCode::OK
    );
    // Changed without telling the manager: the cached answer stands until the TTL.
    setup.writers.deny("alice", "tool");
    setup.clock.advance(TTL - Duration::from_secs(1));
    assert_eq!(
        setup.status(Method::PUT, "/tool", &token).await,
        StatusCode::OK
    );
    setup.clock.advance(Duration::from_secs(1));
    assert_eq!(
        setup.status(Method::PUT, "/tool", &token).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn one_owners_change_leaves_the_others_answers_cached() {
    let setup = Setup::new(&[("alice", "tool"), ("bob", "tool")]);
    let alice = setup.token("alice", NewToken::read_write()).await;
    let bob = setup.token("bob", NewToken::read_write()).await;
    for token in [&alice, &bob] {
        setup.status(Method::PUT, "/tool", token).await;
    }
    setup.tokens.owner_rights_changed("alice").await.unwrap();
    setup.status(Method::PUT, "/tool", &bob).await;
    assert_eq!(setup.writers.checks(), 2, "bob's answer was still cached");
    setup.status(Method::PUT, "/tool", &alice).await;
    assert_eq!(setup.writers.checks(), 3, "alice's was asked again");
}

#[tokio::test]
async fn handlers_ask_about_resources_the_gate_could_not_see() {
    let setup = Setup::new(&[("alice", "tool")]);
    let token = setup.token("alice", NewToken::read_write()).await;
    let who = setup
        .tokens
        .authenticate(&token, None, Action::Read)
        .await
        .unwrap();
    let (tool, other) = (Resource::new("tool"), Resource::new("other"));
    assert!(
        setup
            .tokens
            .owner_may(&who, Action::Write, &tool)
            .await
            .is_ok()
    );
    let refused = setup
        .tokens
        .owner_may(&who, Action::Write, &other)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::OwnerNotPermitted);
    assert_eq!(refused.resource(), Some(&other));
}

#[tokio::test]
async fn without_a_check_the_grants_decide_alone() {
    let tokens = Tokens::builder(TestStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let who = tokens
        .authenticate_on(
            created.token.expose_secret(),
            None,
            Action::Write,
            &Resource::new("tool"),
        )
        .await;
    assert_eq!(who.unwrap().owner(), "alice");
    // Nothing to drop, nothing to tell: not an error.
    tokens.owner_rights_changed("alice").await.unwrap();
}

#[tokio::test]
async fn telling_other_nodes_is_retried_before_it_is_an_error() {
    struct Case {
        name: &'static str,
        failures: usize,
        told: bool,
    }
    let attempts = tokengate::OWNER_RIGHTS_BROADCAST_ATTEMPTS as usize;
    let cases = [
        Case {
            name: "a store that answers at once",
            failures: 0,
            told: true,
        },
        Case {
            name: "a store that fails all but the last try",
            failures: attempts - 1,
            told: true,
        },
        Case {
            name: "a store that fails every try",
            failures: attempts,
            told: false,
        },
    ];
    for case in cases {
        let store = TestStore::new();
        store
            .failing_broadcasts
            .store(case.failures, std::sync::atomic::Ordering::SeqCst);
        let tokens = Tokens::builder(store.clone())
            .prefix("npm")
            .unwrap()
            .build();
        let told = tokens.owner_rights_changed("alice").await;
        assert_eq!(told.is_ok(), case.told, "{}: {told:?}", case.name);
        assert_eq!(
            store.broadcasts.load(std::sync::atomic::Ordering::SeqCst),
            (case.failures + 1).min(attempts),
            "{}",
            case.name
        );
    }
}
