//! Trusted publishing's library side (feature `oidc`): verifying a CI provider's OIDC ID
//! token, and matching it against a package's trust policies.
//!
//! - [`IdTokenVerifier`] checks an ID token: issuer discovery and keys cached by `kid`
//!   ([`HttpFetch`], by default [`HyperFetch`]), asymmetric signatures only, exact `iss`
//!   and `aud`, time claims with a leeway, and single use of `jti` ([`ReplayGuard`]).
//!   What it yields, a [`VerifiedIdToken`], carries the provider's claims and the
//!   [`Provenance`] an audit log records.
//! - [`TrustPolicy`] is a package's trusted publisher, as data: a GitHub workflow, a
//!   GitLab pipeline or a CircleCI pipeline definition, and the [`TrustedActions`] it
//!   allows. [`match_policies`] finds the one a token matches, or says what differs.
//!
//! The application supplies the exchange endpoint, where policies are kept, and the
//! token it mints; see [`IdTokenVerifier`] for the whole flow.

mod algorithm;
mod claims;
mod error;
mod fetch;
mod issuer;
mod keys;
mod policy;
mod replay;
mod verifier;

pub use algorithm::SigningAlgorithm;
pub use claims::{
    CircleCiClaims, GitHubClaims, GitLabClaims, Provenance, ProviderClaims, VerifiedIdToken,
};
pub use error::{Refusal, VerifyError};
pub use fetch::{FetchError, HttpFetch, HyperFetch};
pub use issuer::{
    CIRCLECI_ISSUER_BASE, GITHUB_ACTIONS_ISSUER, GITLAB_COM_ISSUER, InvalidIssuer, IssuerUrl,
    MAX_CIRCLECI_ORGS, MAX_ISSUER_LEN, Provider, TrustedIssuer,
};
pub use policy::{
    CircleCiPolicy, GitHubPolicy, GitLabPolicy, InvalidPolicy, Pin, PolicyMatch, PolicyMismatch,
    TrustPolicy, TrustedAction, TrustedActions, UnknownTrustedAction, match_policies,
};
pub use replay::{MemoryReplayGuard, ReplayGuard, ReplayKey};
pub use verifier::{
    Audience, DEFAULT_MAX_DOCUMENT_LEN, IdTokenVerifier, IdTokenVerifierBuilder, InvalidAudience,
    MAX_ID_TOKEN_LEN,
};
