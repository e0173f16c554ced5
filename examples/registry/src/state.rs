//! What every handler shares: the token manager, the data, and the guards. It imports no
//! handler, so that handlers depend on it and never the other way round.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tokengate::{Tokens, TrustedProxies};
use tokio::sync::{Mutex, MutexGuard};

use crate::config::TrustedPublishingOff;
use crate::db::{Data, Metadata, blobs::Blobs};

/// What verifies CI jobs' ID tokens for trusted publishing: keys fetched over HTTPS, each
/// token's single use recorded in the token store (so that every node on one PostgreSQL
/// refuses a replay).
pub type IdTokens =
    tokengate::oidc::IdTokenVerifier<tokengate::oidc::HyperFetch, tokengate::store::DynStore>;
use crate::security::sealer::Sealer;

pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    tokens: Tokens,
    data: Data,
    /// Seals two-factor secrets at rest.
    sealer: Sealer,
    /// Runs password checks a few at a time, and stops guessers.
    passwords: crate::security::passwords::PasswordGuard,
    /// Stops guessers of one-time passwords.
    wrong_codes: crate::security::wrong_codes::WrongCodes,
    /// One writer at a time: user creation and publishes read, check, then write.
    writes: Mutex<()>,
    /// Whose `X-Forwarded-For` names the client.
    trusted_proxies: TrustedProxies,
    /// Failed authentications per client address: the gates' and logout's.
    token_failures: tokengate::FailureLimit,
    /// Searches take turns.
    search_turns: crate::security::search_turns::SearchTurns,
    /// Trusted publishing, when `--oidc-issuer` turned it on.
    id_tokens: Result<IdTokens, TrustedPublishingOff>,
    /// Packuments as last sent, by revision.
    rendered: crate::rendered::RenderedDocuments,
    /// How long a staged release waits for approval (`--stage-expiry-seconds`).
    stage_expiry: std::time::Duration,
}

impl Clone for AppState {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl AppState {
    pub fn new(
        tokens: Tokens,
        data: Data,
        sealer: Sealer,
        trusted_proxies: TrustedProxies,
        id_tokens: Result<IdTokens, TrustedPublishingOff>,
        stage_expiry: std::time::Duration,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                tokens,
                data,
                sealer,
                passwords: Default::default(),
                // A client guessing tokens gets 429 after 50 misses a minute, not 50 store
                // lookups.
                search_turns: Default::default(),
                token_failures: tokengate::FailureLimit::new(
                    50,
                    std::time::Duration::from_secs(60),
                ),
                wrong_codes: Default::default(),
                writes: Mutex::new(()),
                trusted_proxies,
                id_tokens,
                rendered: Default::default(),
                stage_expiry,
            }),
        }
    }

    pub fn tokens(&self) -> &Tokens {
        &self.shared.tokens
    }

    pub fn passwords(&self) -> &crate::security::passwords::PasswordGuard {
        &self.shared.passwords
    }

    pub fn wrong_codes(&self) -> &crate::security::wrong_codes::WrongCodes {
        &self.shared.wrong_codes
    }

    pub fn sealer(&self) -> &Sealer {
        &self.shared.sealer
    }

    /// Users and packages.
    pub fn db(&self) -> &dyn Metadata {
        self.shared.data.metadata.as_ref()
    }

    /// Tarballs.
    pub fn blobs(&self) -> &Blobs {
        &self.shared.data.blobs
    }

    pub async fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.shared.writes.lock().await
    }

    /// Packuments as last sent, by revision.
    pub fn rendered(&self) -> &crate::rendered::RenderedDocuments {
        &self.shared.rendered
    }

    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.shared.trusted_proxies
    }

    pub fn search_turns(&self) -> &crate::security::search_turns::SearchTurns {
        &self.shared.search_turns
    }

    pub fn token_failures(&self) -> &tokengate::FailureLimit {
        &self.shared.token_failures
    }

    /// How long a staged release waits for approval before it is removed.
    pub fn stage_expiry(&self) -> std::time::Duration {
        self.shared.stage_expiry
    }

    /// The ID-token verifier, or why trusted publishing is off.
    pub fn id_tokens(&self) -> Result<&IdTokens, TrustedPublishingOff> {
        self.shared.id_tokens.as_ref().map_err(|off| *off)
    }
}

/// The client's address as far as the registry can tell: the connection's peer, or the
/// address a trusted proxy forwarded (`--trusted-proxy`). What failed-password limits
/// count against; `None` only for a request that came through no connection.
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = tokengate::peer_addr(&parts.extensions);
        Ok(Self(
            state.trusted_proxies().client_ip(peer, &parts.headers),
        ))
    }
}
