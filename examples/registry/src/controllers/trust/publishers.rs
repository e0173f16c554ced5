//! What adding and removing a package's trusted publishers checks and does, whoever asks:
//! `npm trust`'s routes ([`super::policies`]) and the package's settings page on the web
//! (`web::packages`) both call these, and each words the refusals for its own readers.

use tokengate::Authenticated;
use tokengate::oidc::{Provider, TrustPolicy};

use super::{MAX_PUBLISHERS, issuer_for};
use crate::config::TrustedPublishingOff;
use crate::controllers::packages::PackageName;
use crate::controllers::packages::access::{self, Outsiders, Package};
use crate::db::{PublishersAdded, StoredPublisher};
use crate::error::ApiError;
use crate::state::{AppState, IdTokens};

/// Why a new trusted publisher is refused before anything is stored. The caller says it
/// in its own words (the CLI's flags, or the web form's fields).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Refused {
    /// Trusted publishing is off on this registry, for this reason.
    Off(TrustedPublishingOff),
    /// The registry does not trust this provider's ID tokens.
    Untrusted(Provider),
}

/// A trusted publisher that passed [`admit`]: npm's shape, normalised, and the issuer it is
/// made for.
#[derive(Debug)]
pub struct Admitted {
    policy: serde_json::Value,
    issuer: String,
}

/// The registry's trusted issuers, or [`Refused::Off`].
pub fn enabled(state: &AppState) -> Result<&IdTokens, Refused> {
    state.id_tokens().map_err(Refused::Off)
}

/// Whether this registry trusts `provider`'s ID tokens.
pub fn trusts(state: &AppState, provider: Provider) -> bool {
    state
        .id_tokens()
        .is_ok_and(|id_tokens| issuer_for(id_tokens, provider).is_some())
}

/// `policy`, if this registry can keep it: from a provider it trusts.
pub fn admit(id_tokens: &IdTokens, policy: &TrustPolicy) -> Result<Admitted, Refused> {
    let issuer =
        issuer_for(id_tokens, policy.provider()).ok_or(Refused::Untrusted(policy.provider()))?;
    Ok(Admitted {
        // Stored as read back: npm's shape, normalised, without an id of the client's.
        policy: policy.to_npm(),
        issuer,
    })
}

/// The package, for managing its trusted publishers: `who` maintains it (others get what
/// `outsiders` says), through a token that may write it and that trusted publishing did
/// not mint, and with `code` when their account has two-factor authentication (the code
/// is used up). Call it under the registry's write lock.
pub async fn managed(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    code: Option<&str>,
    outsiders: Outsiders,
) -> Result<Package, ApiError> {
    // Trust decides who may publish without any token: account governance, which a token
    // made to skip the second factor (for automation) is never used for, as on npm.
    if who.second_factor() == tokengate::SecondFactor::Bypassed {
        return Err(ApiError::forbidden(
            "this token bypasses two-factor authentication, so it cannot change trusted \
             publishers: use your login (npm login) or a token without bypass",
        ));
    }
    let package = access::changeable_as(state, who, name, outsiders).await?;
    crate::tfa::verify_owners_code(state, who, code, None).await?;
    Ok(package)
}

/// What [`add`] did.
#[derive(Debug)]
pub enum Added {
    /// All of them were added, as stored.
    Added(Vec<StoredPublisher>),
    /// None: the package has `existing` already, and all of them would be more than
    /// [`MAX_PUBLISHERS`].
    TooMany { existing: usize },
}

/// Adds `admitted` to `name`, all or none, set up by `who`. Call it after [`managed`],
/// under the same write lock.
pub async fn add(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    admitted: Vec<Admitted>,
) -> Result<Added, ApiError> {
    let created = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let publishers = admitted
        .into_iter()
        .map(|Admitted { policy, issuer }| {
            Ok(StoredPublisher {
                id: new_id()?,
                issuer,
                policy,
                pin: None,
                created_by: who.owner().to_owned(),
                created: created.clone(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    match state
        .db()
        .add_trusted_publishers(name, &publishers, MAX_PUBLISHERS)
        .await?
    {
        PublishersAdded::Added => Ok(Added::Added(publishers)),
        PublishersAdded::TooMany { existing } => Ok(Added::TooMany { existing }),
        PublishersAdded::NoPackage => Err(access::not_found(name)),
    }
}

/// A new policy id: a random UUID (version 4), as npm's are.
fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("cannot make an id", e))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}
