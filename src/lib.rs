//! npm-style bearer tokens for tower and axum.
//!
//! A token carries [`Grants`]: a [`Permission`] (no access, read-only, read-stage,
//! read-write) on every resource, on one resource by name, or on every resource under a
//! prefix, the most specific grant deciding. It can be tied to CIDR ranges, can expire, is shown once at
//! creation, is listed only in truncated form, and is revoked by its id — the operations of
//! `npm token create | list | revoke`, except that a revocation takes effect on the very
//! next request. Login sessions ([`NewToken::session`]) are short-lived and never listed.
//!
//! - [`Tokens`] creates, lists, revokes and checks tokens, through a bounded cache in front
//!   of a [`TokenStore`](store::TokenStore).
//! - [`TokenAuthLayer`] puts the checks in front of any tower service; the inner service
//!   finds [`Authenticated`] in the request extensions (or, with axum, as an extractor).
//! - [`store`] holds the trait and the backends: [`MemoryStore`](store::MemoryStore),
//!   `SqliteStore` (feature `sqlite`), `PostgresStore` (feature `postgres`), and
//!   [`DynStore`](store::DynStore) to name one concrete type for any of them.
//!
//! ```
//! use tokengate::{Action, Grant, Grants, NewToken, Permission, Reason, Resource, ResourcePattern, Tokens};
//! use tokengate::store::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tokens = Tokens::builder(MemoryStore::new()).prefix("npm")?.build();
//!
//! // `npm token create --packages=@acme/tool --packages-and-scopes-permission=read-write`
//! let grants = Grants::new([Grant::new(ResourcePattern::parse("@acme/tool")?, Permission::ReadWrite)])?;
//! let release = tokens.create("alice", NewToken::with_grants(grants)).await?;
//! let token = release.token.expose_secret();
//! tokens.authenticate_on(token, None, Action::Write, &Resource::new("@acme/tool")).await?;
//! let refused = tokens
//!     .authenticate_on(token, None, Action::Write, &Resource::new("@acme/other"))
//!     .await
//!     .unwrap_err();
//! assert_eq!(refused.reason(), Reason::NotPermitted(Permission::NoAccess));
//!
//! // `npm token create --read-only --cidr=10.0.0.0/8`
//! let created = tokens
//!     .create("alice", NewToken::read_only().allow_cidrs(["10.0.0.0/8"]))
//!     .await?;
//! let token = created.token.expose_secret(); // shown once; only its digest is stored
//!
//! let client = "10.1.2.3".parse()?;
//! let who = tokens.authenticate(token, Some(client), Action::Read).await?;
//! assert_eq!(who.owner(), "alice");
//!
//! let refused = tokens.authenticate(token, Some(client), Action::Write).await.unwrap_err();
//! assert_eq!(refused.reason(), Reason::ReadOnly);
//!
//! // `npm token revoke <id>`: refused from the very next request.
//! tokens.revoke(created.listing.id.as_str()).await?;
//! let refused = tokens.authenticate(token, Some(client), Action::Read).await.unwrap_err();
//! assert_eq!(refused.reason(), Reason::Revoked);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | *(none)* | the core, [`TokenAuthLayer`] and [`MemoryStore`](store::MemoryStore) |
//! | `axum` | [`Authenticated`] as an extractor, `IntoResponse` for [`TokensError`], client addresses from `ConnectInfo` |
//! | `sqlite` | `SqliteStore`: one file, SQLite compiled in |
//! | `postgres` | `PostgresStore`: pooled, revocations broadcast to every node |
//! | `test-util` | `store::contract`, the conformance suite for your own store; `Authenticated::for_record` |
//! | `totp` | `TotpSecret` (RFC 6238 codes, single use) and `RecoveryCodes`, for a second-factor check |
//! | `oidc` | `oidc`: CI providers' ID tokens verified (discovery, cached keys, single-use `jti`) and trust policies for GitHub, GitLab and CircleCI |
//!
//! # Tracing
//!
//! An accepted request records `token_id` and `owner` on the current span, for spans that
//! declare those fields, such as tower-http's `TraceLayer` made with
//! `tracing::info_span!("request", method = %req.method(), uri = %req.uri(), token_id = tracing::field::Empty, owner = tracing::field::Empty)`.
//! Refusals are logged at DEBUG (WARN when the store is unavailable) with the client
//! address, method and path, never the token. For audit logs and metrics, see
//! [`TokensBuilder::on_event`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod access;
mod bearer;
mod cache;
mod cidr;
mod client_bucket;
mod client_ip;
mod clock;
mod digest;
#[cfg(feature = "axum")]
mod extract;
mod gate;
mod json;
mod new_token;
#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub mod oidc;
mod owner_rights;
mod reason;
mod record;
mod second_factor;
pub mod store;
mod text;
mod token;
mod tokens;
#[cfg(feature = "totp")]
mod totp;

pub use access::{
    Action, Grant, Grants, InvalidGrant, MAX_GRANTS, MAX_PATTERN_LEN, Permission, Resource,
    ResourcePattern,
};
pub use bearer::{Credentials, HeaderProblem, MAX_AUTHORIZATION_LEN};
pub use cidr::{CidrError, CidrList, MAX_CIDR_ENTRIES};
pub use client_bucket::ClientBucket;
pub use client_ip::{TrustedProxies, peer_addr};
pub use clock::{Clock, ManualClock, SystemClock};
pub use digest::{InvalidDigest, TokenDigest};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::AuthenticatedRejection;
pub use gate::future;
pub use gate::{
    FailureLimit, RequestHead, ResponseBody, ResponseStyle, TokenAuth, TokenAuthLayer, same_origin,
};
pub use new_token::{
    ExpiryProblem, InvalidNewToken, MAX_DESCRIPTION_LEN, MAX_NAME_LEN, MAX_OWNER_LEN, NewToken,
    TextProblem,
};
pub use owner_rights::{OwnerRights, OwnerVerdict, RightsError, RightsQuery};
pub use reason::{Reason, Rejection};
pub use record::{
    LISTED_ID_CHARS, SecondFactor, Status, TokenKind, TokenListing, TokenRecord, UnknownName,
};
pub use second_factor::{OTP_HEADER, OneTimeCode, SecondFactorRequest, SecondFactorVerdict};
pub use token::{
    CHECKSUM_LEN, ID_LEN, InvalidPrefix, InvalidTokenId, MAX_PREFIX_LEN, MAX_TOKEN_LEN,
    ParsedToken, PresentedToken, RandomError, SECRET_LEN, SecretToken, TokenFormatError, TokenId,
    TokenPrefix,
};
pub use tokens::{
    Authenticated, CreatedToken, OWNER_RIGHTS_BROADCAST_ATTEMPTS, TokenEvent, TokenList, Tokens,
    TokensBuilder, TokensError,
};
#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub use tokens::{DEFAULT_EXCHANGED_TOKEN_LIFETIME, ExchangeRefusal, MAX_EXCHANGED_TOKEN_LIFETIME};
#[cfg(feature = "totp")]
#[cfg_attr(docsrs, doc(cfg(feature = "totp")))]
pub use totp::{
    InvalidTotpSecret, OtpError, RECOVERY_CODES, RecoveryCodes, TOTP_SECRET_LEN, TotpSecret,
};

/// The README's examples, compiled and run as doctests so that what it shows works. They
/// use the features the README tells the reader to add (`axum`, `sqlite`): built without
/// them (`cargo test -p tokengate`), they are not compiled, rather than failing.
#[cfg(all(doctest, feature = "axum", feature = "sqlite"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
