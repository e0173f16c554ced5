//! [`TokenEvent`]: what a hook set with [`TokensBuilder::on_event`](crate::TokensBuilder::on_event)
//! hears about, for audit logs and metrics.

use std::net::IpAddr;
use std::sync::Arc;

use http::Method;

use crate::access::{Action, Resource};
use crate::reason::Rejection;
use crate::record::TokenListing;
use crate::token::TokenId;
use crate::tokens::Authenticated;

/// Something that happened to a token. Borrowed, so that building one costs nothing; a
/// hook that keeps it copies what it needs. Never holds a token or a secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenEvent<'a> {
    /// A token was created.
    Created {
        /// What listings show of it.
        listing: &'a TokenListing,
    },
    /// A token was minted by [`Tokens::exchange`](crate::Tokens::exchange) for a CI job's
    /// verified ID token (feature `oidc`), instead of [`TokenEvent::Created`]: what an
    /// audit log of trusted publishing records.
    #[cfg(feature = "oidc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
    Exchanged {
        /// What listings would show of it (it is never listed): its id, owner, grant on
        /// the one package and expiry.
        listing: &'a TokenListing,
        /// Who asked, from the ID token's claims: issuer, repository or project, workflow,
        /// run id, commit and `jti`. Never the ID token itself.
        provenance: &'a crate::oidc::Provenance,
    },
    /// A token was revoked.
    Revoked {
        /// Its id.
        id: TokenId,
        /// Its owner, when the revocation named one.
        owner: Option<&'a str>,
    },
    /// A token was accepted for a request.
    Used {
        /// The token and its owner.
        by: &'a Authenticated,
        /// What the request does.
        action: Action,
        /// What it does it to, when the application said.
        resource: Option<&'a Resource>,
    },
    /// A request was refused by the gate, or [`Tokens::authenticate`](crate::Tokens::authenticate)
    /// refused a token.
    Refused {
        /// Why, and the token's id when it parsed.
        rejection: &'a Rejection,
        /// The client address, when known.
        client: Option<IpAddr>,
        /// The request's method, when the gate refused it.
        method: Option<&'a Method>,
        /// The request's path, when the gate refused it.
        path: Option<&'a str>,
    },
}

/// A hook for [`TokenEvent`]s. Runs on the request path: keep it short, and hand slow work
/// (writing a file, a network call) to a task through a bounded channel.
pub(crate) type EventHook = Arc<dyn Fn(&TokenEvent<'_>) + Send + Sync>;
