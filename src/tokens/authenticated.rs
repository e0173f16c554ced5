//! [`Authenticated`]: who made a request, as the inner service learns it.

use std::fmt;
use std::time::SystemTime;

use crate::access::{Action, Grants, Resource};
use crate::cache::CachedRef;
use crate::cidr::CidrList;
use crate::reason::Rejection;
use crate::record::{SecondFactor, TokenKind};
use crate::token::TokenId;

/// Who a request was made by: what the inner service learns from an accepted token.
///
/// Shows no digest and no secret (its `Debug` included). Cheap to clone.
#[derive(Clone)]
pub struct Authenticated {
    pub(crate) cached: CachedRef,
}

impl Authenticated {
    /// An `Authenticated` for `record`, as the gate would hand it to a handler: for tests
    /// of handlers that take one (feature `test-util`).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tokengate::{Authenticated, Grants, Permission, TokenDigest, TokenRecord};
    ///
    /// let mut record = TokenRecord::new(
    ///     "AbCdEfGhIj0".parse().unwrap(),
    ///     "alice",
    ///     TokenDigest::of("unused"),
    ///     SystemTime::now(),
    /// );
    /// record.grants = Grants::everything(Permission::ReadOnly);
    /// let who = Authenticated::for_record(record);
    /// assert_eq!(who.owner(), "alice");
    /// ```
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn for_record(record: crate::record::TokenRecord) -> Self {
        let loaded_at = record.created_at;
        Self {
            cached: CachedRef::new(crate::cache::Cached::new(record, loaded_at)),
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

    /// What the token may do, resource by resource.
    pub fn grants(&self) -> &Grants {
        &self.cached.record.grants
    }

    /// An ordinary token, a login session, or a token minted by an exchange
    /// ([`TokenKind::Exchanged`], trusted publishing's).
    ///
    /// An application refuses an exchanged token for everything but writing the one
    /// package its grant names: managing tokens, the profile, owners, access and trust
    /// policies. Its grant already keeps it off every other package; those routes are
    /// the application's to guard, by this kind.
    pub fn kind(&self) -> TokenKind {
        self.cached.record.kind
    }

    /// Whether writes with this token skip the second factor.
    pub fn second_factor(&self) -> SecondFactor {
        self.cached.record.second_factor
    }

    /// Whether the token may perform `action` on `resource` (with none, at all): for
    /// checks a handler can only make once it knows more than the gate did, such as the
    /// package named in a body.
    pub fn may(&self, action: Action, resource: Option<&Resource>) -> bool {
        self.cached.record.grants.allows(action, resource)
    }

    /// As [`Authenticated::may`], with the refusal the gate would have given: a 403 naming
    /// the resource and the token's grant on it.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] when the token's grants do not allow `action` on `resource`.
    pub fn check(&self, action: Action, resource: &Resource) -> Result<(), Rejection> {
        super::check::grants_allow(&self.cached.record.grants, action, Some(resource))
            .map_err(|reason| Rejection::new(reason, Some(self.token_id())).on(resource.clone()))
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
            .field("grants", &record.grants)
            .field("kind", &record.kind)
            .field("second_factor", &record.second_factor)
            .field("token_name", &record.name)
            .field("created_at", &record.created_at)
            .field("expires_at", &record.expires_at)
            .field("allowed_addresses", &record.cidr)
            .finish()
    }
}
