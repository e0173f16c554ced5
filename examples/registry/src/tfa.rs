//! Two-factor authentication: what is kept per user (the TOTP secret sealed under the
//! registry's key, the step of the last code accepted, recovery codes as digests), and the
//! one check that login, token management and package writes share.

use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use tokengate::{
    OTP_HEADER, OtpError, RecoveryCodes, SecondFactorRequest, SecondFactorVerdict, TokenDigest,
    TotpSecret,
};
use zeroize::Zeroizing;

use crate::controllers::packages::PackageName;
use crate::controllers::packages::access::{self, PackageMfa};
use crate::controllers::users::{self, User};
use crate::error::ApiError;
use crate::security::wrong_codes::Sender;
use crate::state::AppState;

/// When a user's second factor is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TfaMode {
    /// Logging in and managing tokens.
    AuthOnly,
    /// Also every write to a package, unless the token bypasses it.
    AuthAndWrites,
}

impl TfaMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TfaMode::AuthOnly => "auth-only",
            TfaMode::AuthAndWrites => "auth-and-writes",
        }
    }
}

/// A user's second factor as stored: nothing here is usable without the registry's key.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tfa {
    pub mode: TfaMode,
    /// Enrolment begun (the secret shown) but not confirmed with a first code.
    pub pending: bool,
    /// The TOTP secret, encrypted: nonce and ciphertext, base64.
    sealed_secret: String,
    /// The step of the last code accepted: a code is good once.
    last_step: Option<u64>,
    /// SHA-256 of each recovery code not yet used, in hex.
    recovery: Vec<String>,
}

impl Tfa {
    /// Whether a code is asked for (an enrolment in progress asks for nothing yet).
    pub fn active(&self) -> bool {
        !self.pending
    }
}

/// Starts enrolment: a new secret, sealed into the user's record as pending; returns the
/// `otpauth://` URL to show once.
pub fn begin(
    state: &AppState,
    user: &mut User,
    mode: TfaMode,
) -> Result<Zeroizing<String>, ApiError> {
    let secret =
        TotpSecret::generate().map_err(|e| ApiError::internal("cannot make a secret", e))?;
    let url = secret.otpauth_url("tokengate registry", &user.name);
    user.tfa = Some(Tfa {
        mode,
        pending: true,
        sealed_secret: state.sealer().seal(&secret)?,
        last_step: None,
        recovery: Vec::new(),
    });
    Ok(url)
}

/// Finishes enrolment with the first code; returns the recovery codes to show once.
pub fn confirm(
    state: &AppState,
    user: &mut User,
    code: &str,
) -> Result<Vec<Zeroizing<String>>, ApiError> {
    let tfa =
        user.tfa.as_mut().filter(|tfa| tfa.pending).ok_or_else(|| {
            ApiError::bad_request("two-factor authentication is not being set up")
        })?;
    let secret = state.sealer().open(&tfa.sealed_secret)?;
    let step = secret
        .verify(code, SystemTime::now(), tfa.last_step)
        .map_err(|error| otp_refusal(&error.to_string()))?;
    let (shown, kept) = RecoveryCodes::generate()
        .map_err(|e| ApiError::internal("cannot make recovery codes", e))?;
    tfa.pending = false;
    tfa.last_step = Some(step);
    tfa.recovery = kept.digests().iter().map(TokenDigest::to_hex).collect();
    Ok(shown)
}

/// What a code check decided.
pub enum Checked {
    /// The user has no second factor (or has not finished enrolling): nothing asked.
    NotEnrolled,
    /// A right code: the user's record was updated so that it is never accepted again.
    Accepted,
}

/// Checks the one-time password in `headers` (a TOTP code, or a recovery code in its
/// place) for `user`, and uses it up: the step is remembered, a recovery code is struck
/// out, and the user's record is saved. Call it under the registry's write lock, so that
/// one code cannot pass twice at once.
///
/// # Errors
///
/// A 401 that npm answers with its one-time-password prompt when a code is needed and
/// missing or wrong.
pub async fn check_code(
    state: &AppState,
    user: &mut User,
    headers: &HeaderMap,
    sender: Sender,
) -> Result<Checked, ApiError> {
    verify(state, user, code_in(headers), sender).await
}

/// [`verify`] for the owner of the token `who` (from `client`), with `code` from npm's
/// header ([`code_in`]) or a web form: for decisions that are always a person's, whatever
/// their account's mode (trust policies, organisations, staging rules, approving a staged
/// release). Call it under the registry's write lock.
pub async fn verify_owners_code(
    state: &AppState,
    who: &tokengate::Authenticated,
    code: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Result<Checked, ApiError> {
    let mut user = users::load(state, who.owner())
        .await?
        .ok_or_else(ApiError::needs_login)?;
    verify(
        state,
        &mut user,
        code,
        Sender::new(Some(who.token_id()), client),
    )
    .await
}

/// The one-time password in npm's `npm-otp` header, if it holds one.
pub fn code_in(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(OTP_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|code| !code.is_empty())
}

/// [`check_code`] with the code already read.
pub async fn verify(
    state: &AppState,
    user: &mut User,
    code: Option<&str>,
    sender: Sender,
) -> Result<Checked, ApiError> {
    let Some(tfa) = user.tfa.as_mut().filter(|tfa| tfa.active()) else {
        return Ok(Checked::NotEnrolled);
    };
    let code = code.ok_or_else(|| otp_refusal("none was sent"))?;
    let wrong_codes = state.wrong_codes();
    if wrong_codes.exhausted(&user.name, &sender) {
        return Err(crate::security::passwords::too_many_wrong(
            "one-time passwords",
        ));
    }
    let secret = state.sealer().open(&tfa.sealed_secret)?;
    let wrong = match secret.verify(code, SystemTime::now(), tfa.last_step) {
        Ok(step) => {
            tfa.last_step = Some(step);
            None
        }
        Err(OtpError::Malformed) if code.len() == 64 => {
            let digests = tfa
                .recovery
                .iter()
                .filter_map(|hex| TokenDigest::from_hex(hex).ok())
                .collect();
            let mut codes = RecoveryCodes::from_digests(digests);
            if codes.redeem(code) {
                tfa.recovery = codes.digests().iter().map(TokenDigest::to_hex).collect();
                None
            } else {
                Some("the recovery code is wrong or already used".to_owned())
            }
        }
        Err(error) => Some(error.to_string()),
    };
    if let Some(why) = wrong {
        wrong_codes.count(&user.name, &sender);
        return Err(otp_refusal(&why));
    }
    users::save(state, user).await?;
    Ok(Checked::Accepted)
}

/// A 401 that npm recognises as a request for a one-time password.
pub fn otp_refusal(why: &str) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::UNAUTHORIZED,
        format!("this operation requires a one-time password: {why}"),
    );
    error.challenge(HeaderValue::from_static("OTP"));
    error
}

/// Which rules decide whether a write asks for a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteRules {
    /// A write to the package: the writer's own mode and the package's rule.
    PackageAndAccount,
    /// A write that is the user's own record, such as a star: their own mode only. No
    /// package 2FA rule applies to it.
    AccountOnly,
}

/// The gate's second-factor check for writes to packages. It fails closed: a write whose
/// package the resolver could not name is refused ([`SecondFactorVerdict::Unresolved`]),
/// never passed. Writes that touch no package (token management, profile) and `PUT
/// /<name>` (a publish or a star, which only its body tells) sit behind a gate without
/// this check and check codes in their handlers ([`check_package_write`]).
pub async fn package_writes(state: AppState, request: SecondFactorRequest) -> SecondFactorVerdict {
    let Some(name) = request
        .resource
        .as_ref()
        .and_then(|resource| PackageName::parse(resource.as_str()).ok())
    else {
        return SecondFactorVerdict::Unresolved;
    };
    let code = request.code.as_ref().map(|code| code.expose());
    write_verdict(
        &state,
        &request.who,
        &name,
        code,
        WriteRules::PackageAndAccount,
    )
    .await
}

/// [`package_writes`] in a handler, answered as the gate answers it.
///
/// # Errors
///
/// npm's one-time-password 401 when a code is needed and missing or wrong; 503 when the
/// check cannot be made.
pub async fn check_package_write(
    state: &AppState,
    who: &tokengate::Authenticated,
    name: &PackageName,
    headers: &HeaderMap,
    rules: WriteRules,
) -> Result<(), ApiError> {
    match write_verdict(state, who, name, code_in(headers), rules).await {
        SecondFactorVerdict::Pass => Ok(()),
        SecondFactorVerdict::CodeRequired => Err(otp_refusal(
            "send the code from your authenticator app (npm: --otp=<code>)",
        )),
        SecondFactorVerdict::CodeRejected => Err(otp_refusal(
            "the code sent is wrong, expired or already used",
        )),
        SecondFactorVerdict::Unresolved => Err(ApiError::bad_request(format!(
            "cannot tell what this write to {name} changes"
        ))),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the second factor cannot be checked right now; try again shortly",
        )),
    }
}

/// Whether `who`'s write to `name` may go on: the writer's own mode (`auth-and-writes`
/// asks unless the token bypasses it) and, under [`WriteRules::PackageAndAccount`], the
/// package's rule (`mfa=publish` asks even a bypass token, `mfa=automation` all but
/// bypass tokens).
async fn write_verdict(
    state: &AppState,
    who: &tokengate::Authenticated,
    name: &PackageName,
    code: Option<&str>,
    rules: WriteRules,
) -> SecondFactorVerdict {
    // A token from trusted publishing has no person to type a code: the package's
    // maintainers gave their say-so when they added the trusted publisher (with a code,
    // if they have 2FA). As on npm, even `mfa=publish` ("disallow tokens") lets it publish.
    if who.kind() == tokengate::TokenKind::Exchanged {
        return SecondFactorVerdict::Pass;
    }
    // One code, one write: checking and using it up happen under the write lock.
    let _writing = state.write_lock().await;
    let mut user = match users::load(state, who.owner()).await {
        Ok(Some(user)) => user,
        // The handler refuses a writer with no account.
        Ok(None) => return SecondFactorVerdict::Pass,
        Err(_) => return SecondFactorVerdict::Unavailable,
    };
    let rule = match rules {
        WriteRules::AccountOnly => PackageMfa::None,
        WriteRules::PackageAndAccount => match access::load(state, name, Some(who.owner())).await {
            // A package the writer cannot see says nothing, not even that it asks for a
            // code.
            Ok(Some(package)) if package.readable_by(Some(who), name) => package.mfa,
            Ok(_) => PackageMfa::None,
            Err(_) => return SecondFactorVerdict::Unavailable,
        },
    };
    let bypass = who.second_factor() == tokengate::SecondFactor::Bypassed;
    let own_mode = user
        .tfa
        .as_ref()
        .filter(|tfa| tfa.active())
        .map(|tfa| tfa.mode);
    let needed = match rule {
        PackageMfa::Publish => true,
        PackageMfa::Automation => !bypass,
        PackageMfa::None => own_mode == Some(TfaMode::AuthAndWrites) && !bypass,
    };
    if !needed {
        return SecondFactorVerdict::Pass;
    }
    match verify(
        state,
        &mut user,
        code,
        Sender::new(Some(who.token_id()), None),
    )
    .await
    {
        Ok(Checked::Accepted) => SecondFactorVerdict::Pass,
        // The package asks for a code its writer has no way to give.
        Ok(Checked::NotEnrolled) => SecondFactorVerdict::CodeRequired,
        Err(_) if code.is_none() => SecondFactorVerdict::CodeRequired,
        // Too many wrong codes lately: refused like a wrong one, whatever it was.
        Err(error)
            if error.status() == StatusCode::UNAUTHORIZED
                || error.status() == StatusCode::TOO_MANY_REQUESTS =>
        {
            SecondFactorVerdict::CodeRejected
        }
        Err(_) => SecondFactorVerdict::Unavailable,
    }
}
