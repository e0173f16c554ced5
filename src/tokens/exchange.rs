//! [`Tokens::exchange`]: trusted publishing's way in, beside [`Tokens::create`]: a CI job's
//! verified OIDC ID token and the trust policy it matched become a short-lived token for
//! one package (feature `oidc`).

use std::time::Duration;

use super::{CreatedToken, TokenEvent, Tokens, TokensError};
use crate::access::{Grant, Grants, InvalidGrant, Permission, Resource, ResourcePattern};
use crate::cidr::CidrList;
use crate::clock::whole_millis;
use crate::new_token::{InvalidNewToken, MAX_OWNER_LEN, TextRule, check_text};
use crate::oidc::{PolicyMatch, TrustedAction, TrustedActions, VerifiedIdToken};
use crate::record::{SecondFactor, TokenKind, TokenListing, TokenRecord};
use crate::store::{StoreError, TokenStore};
use crate::token::SecretToken;

/// The longest an exchanged token lives: 30 minutes. A longer
/// [`exchanged_token_lifetime`](crate::TokensBuilder::exchanged_token_lifetime) is cut to it.
pub const MAX_EXCHANGED_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How long an exchanged token lives unless the builder says otherwise: 15 minutes.
pub const DEFAULT_EXCHANGED_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Why [`Tokens::exchange`] minted nothing although the ID token was verified and matched.
/// The messages are for the person reading the CI job's log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeRefusal {
    /// The policy allows nothing at all.
    #[error("this package's trusted publisher allows neither publishing nor staging")]
    NothingAllowed,
    /// The package's name cannot be a grant (white space, `*`, too long, empty).
    #[error("invalid package name: {0}")]
    Package(InvalidGrant),
}

impl<S: TokenStore> Tokens<S> {
    /// Mints a token for a CI job that proved who it is (trusted publishing): `verified`
    /// is its ID token, checked by an [`IdTokenVerifier`](crate::oidc::IdTokenVerifier)
    /// (which recorded its single use), and `matched` what the package's trust policy
    /// allows, from [`match_policies`](crate::oidc::match_policies) on that same token.
    ///
    /// The token is of [`TokenKind::Exchanged`]: one grant on exactly `package`
    /// ([`ResourcePattern::Exact`]) and nothing else, read-write when the policy allows
    /// publishing and [`Permission::ReadStage`] when it allows staging only (so that
    /// its direct publish is refused, saying to stage); writes skip the second
    /// factor ([`SecondFactor::Bypassed`]: a CI job cannot type a one-time password, and
    /// npm lets trusted publishing through a package's 2FA requirement); usable from any
    /// address; living [`exchanged_token_lifetime`](crate::TokensBuilder::exchanged_token_lifetime)
    /// (15 minutes unless set lower or higher, never over 30); never listed. Revoke it
    /// like any token. The event hook hears [`TokenEvent::Exchanged`] with the ID token's
    /// [`Provenance`](crate::oidc::Provenance) (never the ID token itself) instead of
    /// `Created`.
    ///
    /// `owner` is the application's choice and is what
    /// [`Authenticated::owner`](crate::Authenticated::owner) says: a synthetic name such as `trusted-publisher`
    /// keeps the tokens apart from every person's (nobody's sessions or token listing
    /// see them); the maintainer who set the policy up makes publishes look like theirs.
    /// Either way, **the application must refuse a token of this kind** (check
    /// [`Authenticated::kind`](crate::Authenticated::kind)) for everything but writing
    /// that package: managing tokens, the profile, owners, access and trust policies. Its
    /// grant says what it may write; it is not a person's say-so.
    ///
    /// # Errors
    ///
    /// [`TokensError::Exchange`] when the policy allows nothing
    /// ([`ExchangeRefusal::NothingAllowed`]), or the package name cannot be a grant; [`TokensError::InvalidNewToken`] for an empty or over-long owner;
    /// [`TokensError::Store`] and [`TokensError::Random`] as for [`Tokens::create`].
    /// Nothing is stored when it fails.
    pub async fn exchange(
        &self,
        owner: &str,
        package: &Resource,
        verified: &VerifiedIdToken,
        matched: &PolicyMatch,
    ) -> Result<CreatedToken, TokensError> {
        let permission = permission_for(matched.allows)
            .ok_or(TokensError::Exchange(ExchangeRefusal::NothingAllowed))?;
        check_text(owner, MAX_OWNER_LEN, TextRule::Required).map_err(InvalidNewToken::Owner)?;
        let grants = Grants::new([Grant::new(
            ResourcePattern::Exact(package.as_str().to_owned()),
            permission,
        )])
        .map_err(ExchangeRefusal::Package)?;
        let clock_now = self.inner.clock.now();
        let now = whole_millis(clock_now).unwrap_or(clock_now);
        let expires_at = now
            .checked_add(self.inner.lifetimes.exchanged)
            .and_then(whole_millis)
            .ok_or(InvalidNewToken::Expiry(
                crate::new_token::ExpiryProblem::Unrepresentable,
            ))?;
        let provenance = verified.provenance();
        let mut attempts_left = 3;
        loop {
            let token = SecretToken::generate(&self.inner.prefix)?;
            let mut record = TokenRecord::new(token.id(), owner, token.digest(), now);
            record.grants = grants.clone();
            record.kind = TokenKind::Exchanged;
            record.second_factor = SecondFactor::Bypassed;
            record.cidr = CidrList::any();
            record.expires_at = Some(expires_at);
            let listing = TokenListing::from_record(&self.inner.prefix, &record);
            match self.inner.store.insert(record).await {
                Ok(()) => {
                    self.inner.cache.forget_unknown(token.id());
                    self.emit(|| TokenEvent::Exchanged {
                        listing: &listing,
                        provenance: &provenance,
                    });
                    return Ok(CreatedToken { token, listing });
                }
                Err(StoreError::Duplicate(_)) if attempts_left > 1 => attempts_left -= 1,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// The grant a policy's actions come to: publishing is read-write (which stages too, as
/// any read-write grant may: a staged version goes live only when a person approves it);
/// staging alone is [`Permission::ReadStage`]; nothing is no token at all.
fn permission_for(allows: TrustedActions) -> Option<Permission> {
    if allows.contains(TrustedAction::Publish) {
        Some(Permission::ReadWrite)
    } else if allows.contains(TrustedAction::Stage) {
        Some(Permission::ReadStage)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_mints_exactly_what_it_allows() {
        struct Case {
            allows: TrustedActions,
            permission: Option<Permission>,
        }
        let cases = [
            Case {
                allows: TrustedActions::NONE,
                permission: None,
            },
            Case {
                allows: TrustedActions::STAGE,
                permission: Some(Permission::ReadStage),
            },
            Case {
                allows: TrustedActions::PUBLISH,
                permission: Some(Permission::ReadWrite),
            },
            Case {
                allows: TrustedActions::new([TrustedAction::Publish, TrustedAction::Stage]),
                permission: Some(Permission::ReadWrite),
            },
        ];
        for case in cases {
            assert_eq!(
                permission_for(case.allows),
                case.permission,
                "{:?}",
                case.allows
            );
        }
    }
}
