#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

pub mod bearer;
mod cache;
pub mod cidr;
pub mod client_ip;
pub mod clock;
pub mod digest;
#[cfg(feature = "axum")]
pub mod extract;
mod future;
mod layer;
pub mod record;
pub mod reject;
mod service;
pub mod store;
pub mod token;
mod tokens;

pub use cidr::{CidrError, CidrList};
pub use clock::{Clock, ManualClock, SystemClock};
pub use digest::TokenDigest;
pub use future::ResponseFuture;
pub use layer::{TokenAuthLayer, is_write_method};
pub use record::{Access, NewToken, TokenListing, TokenRecord};
pub use reject::{Reason, Rejection, ResponseStyle};
pub use service::TokenAuth;
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{MemoryStore, Page, StoreChange, StoreError, TokenStore};
pub use token::{PresentedToken, SecretToken, TokenFormatError, TokenId, TokenPrefix};
pub use tokens::{
    Authenticated, CreatedToken, MAX_DESCRIPTION_LEN, MAX_NAME_LEN, MAX_OWNER_LEN, TokenList,
    Tokens, TokensBuilder, TokensError,
};
