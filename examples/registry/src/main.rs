//! A small private npm registry on tokengate, which the real `npm` CLI can log in to,
//! create, list and revoke tokens with, publish to and install from.
//!
//! ```sh
//! cargo run -p tokengate-registry                       # data in ./registry-data
//! cargo run -p tokengate-registry -- --memory           # nothing on disk
//! cargo run -p tokengate-registry -- --listen 127.0.0.1:4873 --data /var/lib/registry
//! ```
//!
//! Tokens behave like npm's: read-only tokens cannot publish, CIDR-bound tokens are refused
//! from elsewhere (npm prints "Login is not allowed from your IP address"), and a revoked
//! token is refused on the very next command.

mod audit;
mod config;
mod controllers;
mod db;
mod error;
mod json_body;
mod query;
mod rendered;
mod router;
mod security;
mod server;
mod state;
mod storage;
mod tfa;
mod web;

use config::{Config, TrustedPublishingSetting};
use tokengate::Tokens;
use tokengate::store::{DynStore, MemoryStore, SqliteStore};

#[tokio::main]
async fn main() {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            // Not `println!`: `registry --help | head` closes the pipe early, which is no
            // reason to panic.
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "{}", config::USAGE);
            return;
        }
        Err(error) => {
            eprintln!("registry: {error}\n\n{}", config::USAGE);
            std::process::exit(2);
        }
    };
    if let Err(error) = run(config).await {
        eprintln!("registry: {error}");
        std::process::exit(1);
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match config.data.clone() {
        Some(dir) => {
            storage::private_dirs(&dir)
                .await
                .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
            // A folder that already existed keeps the mode it was made with: tighten it,
            // or refuse to start on a folder others can read.
            if storage::make_private(&dir, storage::PRIVATE_DIR)
                .map_err(|e| format!("cannot make {} private (0700): {e}", dir.display()))?
            {
                tracing::warn!(dir = %dir.display(), "the data folder was readable by others: now 0700");
            }
            #[cfg(not(feature = "postgres"))]
            if config.database.is_some() {
                return Err(
                    "--database: this registry was built without PostgreSQL; build it \
                            with `--features postgres` (cargo run -p tokengate-registry \
                            --features postgres -- --database …)"
                        .into(),
                );
            }
            #[cfg(feature = "postgres")]
            if let Some(url) = config.database.clone() {
                // Tokens and metadata in PostgreSQL, shared by every node on it; revocations
                // reach the other nodes through its LISTEN/NOTIFY feed.
                let store = tokengate::store::PostgresStore::connect(url.as_str()).await?;
                let data = db::Data::postgres(url.as_str(), &dir).await?;
                let dir = dir.display().to_string();
                return serve(
                    config,
                    DynStore::new(store),
                    data,
                    format!("PostgreSQL, tarballs in {dir}"),
                )
                .await;
            }
            let store = SqliteStore::open(dir.join("tokens.db")).await?;
            // The token database holds digests only, but it is nobody else's business; a
            // database from an earlier release may have been made with the umask's mode,
            // and SQLite gives its side files the database's.
            for file in ["tokens.db", "tokens.db-wal", "tokens.db-shm"] {
                storage::make_private(&dir.join(file), storage::PRIVATE_FILE)
                    .map_err(|e| format!("cannot make {file} private (0600): {e}"))?;
            }
            let data = db::Data::open(&dir).await?;
            let dir = dir.display().to_string();
            serve(
                config,
                DynStore::new(store),
                data,
                format!("SQLite in {dir}"),
            )
            .await
        }
        None => {
            let data = db::Data::memory()?;
            serve(
                config,
                DynStore::new(MemoryStore::new()),
                data,
                "memory (lost on exit)".into(),
            )
            .await
        }
    }
}

/// Why the registry cannot listen, and what to do about it.
fn cannot_listen(address: std::net::SocketAddr, error: &std::io::Error) -> String {
    if error.kind() != std::io::ErrorKind::AddrInUse {
        return format!("cannot listen on {address}: {error}");
    }
    // 4873 is Verdaccio's default port too: the likeliest owner of it.
    let verdaccio = if address.port() == 4873 {
        " (4873 is also Verdaccio's default port: is one running?)"
    } else {
        ""
    };
    format!(
        "cannot listen on {address}: something else is listening there{verdaccio}; \
         choose another address with --listen, e.g. --listen 127.0.0.1:4874"
    )
}

async fn serve(
    config: Config,
    store: DynStore,
    data: db::Data,
    described: String,
) -> Result<(), Box<dyn std::error::Error>> {
    let audit_file = config.data.as_ref().map(|dir| dir.join("audit.log"));
    let audit = audit::hook(audit_file.as_deref())
        .map_err(|e| format!("cannot open the audit log: {e}"))?;
    let day = std::time::Duration::from_secs(86_400);
    let mut tokens = Tokens::builder(store)
        .prefix("npm")?
        // No token does more than its owner may now (a member removed from a team).
        .owner_rights(controllers::orgs::rights::RegistryRights::new(
            std::sync::Arc::clone(&data.metadata),
        ))
        .write_token_lifetime(day * config.write_token_days)
        .on_event(audit);
    if let Some(max) = config.max_write_token_days {
        tokens = tokens.max_write_token_lifetime(day * max);
    }
    let tokens = tokens.build();
    let sealer = match &config.data {
        Some(dir) => security::sealer::Sealer::from_file(&dir.join("secret.key"))
            .map_err(|e| format!("cannot read or create the registry's key: {e}"))?,
        None => security::sealer::Sealer::ephemeral()?,
    };
    let id_tokens = id_tokens(&config.trusted_publishing, tokens.store())?;
    let trusted_line = match (&config.trusted_publishing, &id_tokens) {
        (TrustedPublishingSetting::On(trusted), Ok(_)) => {
            let issuers: Vec<String> = trusted
                .issuers
                .iter()
                .map(|i| i.url().to_string())
                .collect();
            format!(
                "trusted publishing: ID tokens for {} from {}",
                trusted.audience.as_str(),
                issuers.join(", ")
            )
        }
        (_, Err(off)) | (TrustedPublishingSetting::Off(off), _) => off.reason().to_owned(),
    };
    let state = state::AppState::new(
        tokens,
        data,
        sealer,
        config.trusted_proxies.clone(),
        id_tokens,
        config.stage_expiry,
    );
    controllers::stage::sweep_expired(state.clone());
    let app = router::router(state, config.max_publish_bytes);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| cannot_listen(config.listen, &e))?;
    let url = format!("http://{}/", listener.local_addr()?);
    println!("tokengate example registry listening on {url}");
    println!("  data: {described}");
    println!("  create a user:    npm adduser --registry={url}");
    println!("    with npm 12:    npm login --auth-type=legacy --registry={url}");
    println!("  then, e.g.:       npm publish --registry={url}   (from a package's folder)");
    println!("  tokens on the web: {url}-/web/   (npm login opens it too)");
    println!("  {trusted_line}");
    println!("  stop it with Ctrl-C");
    server::serve(listener, app, config.limits, config.trusted_proxies).await?;
    Ok(())
}

/// The ID-token verifier for trusted publishing, or why it is off. With only the built-in
/// issuers, a machine without root certificates starts with it off (and says so) rather
/// than not at all.
fn id_tokens(
    setting: &TrustedPublishingSetting,
    store: &DynStore,
) -> Result<Result<state::IdTokens, config::TrustedPublishingOff>, String> {
    let trusted = match setting {
        TrustedPublishingSetting::On(trusted) => trusted,
        TrustedPublishingSetting::Off(off) => return Ok(Err(*off)),
    };
    let fetch = match tokengate::oidc::HyperFetch::new() {
        Ok(fetch) => fetch,
        Err(e) if trusted.asked => {
            return Err(format!("cannot set up HTTPS for trusted publishing: {e}"));
        }
        Err(e) => {
            eprintln!("cannot set up HTTPS for trusted publishing: {e}");
            return Ok(Err(config::TrustedPublishingOff::NoHttps));
        }
    };
    let mut verifier =
        tokengate::oidc::IdTokenVerifier::builder(trusted.audience.clone(), fetch, store.clone());
    for issuer in &trusted.issuers {
        verifier = verifier.issuer(issuer.clone());
    }
    Ok(Ok(verifier.build()))
}
