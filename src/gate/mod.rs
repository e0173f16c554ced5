//! The tower middleware: [`TokenAuthLayer`] → [`TokenAuth`] → [`future::ResponseFuture`],
//! the body it answers with, and how refusals are written.
//!
//! The layer imports the service, never the reverse; the service owns its configuration.

mod body;
pub mod future;
mod layer;
mod limit;
mod respond;
mod service;
mod source;
mod summary;

pub use body::ResponseBody;
pub use layer::TokenAuthLayer;
pub use limit::FailureLimit;
pub use respond::ResponseStyle;
#[cfg(feature = "axum")]
pub(crate) use service::GateRan;
pub use service::{RequestHead, TokenAuth};
pub use source::same_origin;
