//! [`Authenticated`]: who made a request, as the inner service learns it.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::access::{Access, Action};
use crate::cache::Cached;
use crate::cidr::CidrList;
use crate::token::TokenId;

/// Who a request was made by: what the inner service learns from an accepted token.
///
/// Shows no digest and no secret (its `Debug` included). Cheap to clone.
#[derive(Clone)]
pub struct Authenticated {
    pub(crate) cached: Arc<Cached>,
}

impl Authenticated {
    /// An `Authenticated` for `record`, as the gate would hand it to a handler: for tests
    /// of handlers that take one (feature `test-util`).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tokengate::{Access, Authenticated, TokenDigest, TokenRecord};
    ///
    /// let mut record = TokenRecord::new(
    ///     "AbCdEfGhIj0".parse().unwrap(),
    ///     "alice",
    ///     TokenDigest::of("unused"),
    ///     SystemTime::now(),
    /// );
    /// record.access = Access::ReadOnly;
    /// let who = Authenticated::for_record(record);
    /// assert_eq!(who.owner(), "alice");
    /// ```
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn for_record(record: crate::record::TokenRecord) -> Self {
        let loaded_at = record.created_at;
        Self {
            cached: Arc::new(Cached::new(record, loaded_at)),
        }
    }

    /// The token's public id.
    pub fn token_id(&self) -> TokenId {
        self.cached.record.id
    }

    /// Who the token belongs to.
    pub fn owner(&self) -> &str {
        &self.cached.record.owner
    }

    /// Read-only or read-write.
    pub fn access(&self) -> Access {
        self.cached.record.access
    }

    /// Whether the token may perform `action`: for checks a handler can only make once it
    /// knows more than the gate did.
    pub fn may(&self, action: Action) -> bool {
        self.cached.record.access.allows(action)
    }

    /// The token's name, if it has one.
    pub fn token_name(&self) -> Option<&str> {
        self.cached.record.name.as_deref()
    }

    /// When the token was made.
    pub fn created_at(&self) -> SystemTime {
        self.cached.record.created_at
    }

    /// When the token stops working, if ever.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.cached.record.expires_at
    }

    /// The addresses the token may be used from; empty means any.
    pub fn allowed_addresses(&self) -> &CidrList {
        &self.cached.record.cidr
    }
}

impl fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let record = &self.cached.record;
        f.debug_struct("Authenticated")
            .field("token_id", &record.id)
            .field("owner", &record.owner)
            .field("access", &record.access)
            .field("token_name", &record.name)
            .field("created_at", &record.created_at)
            .field("expires_at", &record.expires_at)
            .field("allowed_addresses", &record.cidr)
            .finish()
    }
}
