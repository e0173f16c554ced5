//! The audit log: one JSON line per token created, revoked or refused, and per write made
//! with a token, from tokengate's event hook. In `<data>/audit.log` (owner-only), or in
//! the server log with `--memory`.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde_json::json;
use tokengate::{Action, TokenEvent};
use tokio::sync::mpsc;

/// Lines waiting to be written; past this they are dropped (and counted in the server log)
/// rather than slow the requests down.
const BACKLOG: usize = 4096;

/// The hook to give `Tokens::builder(..).on_event`, writing to `file` (or, without one, to
/// the server log). Must be called inside the runtime.
///
/// # Errors
///
/// When the file cannot be opened for appending.
pub fn hook(
    file: Option<&Path>,
) -> std::io::Result<impl Fn(&TokenEvent<'_>) + Send + Sync + 'static> {
    let (sender, mut receiver) = mpsc::channel::<String>(BACKLOG);
    match file {
        Some(path) => {
            let mut file = open_private(path)?;
            tokio::task::spawn_blocking(move || {
                while let Some(line) = receiver.blocking_recv() {
                    if let Err(error) = writeln!(file, "{line}") {
                        tracing::error!(%error, "cannot write the audit log");
                    }
                }
            });
        }
        None => {
            tokio::spawn(async move {
                while let Some(line) = receiver.recv().await {
                    tracing::info!(target: "audit", "{line}");
                }
            });
        }
    }
    Ok(move |event: &TokenEvent<'_>| {
        if let Some(line) = line(event) {
            if sender.try_send(line).is_err() {
                tracing::warn!("audit log backlog full: an entry was dropped");
            }
        }
    })
}

/// An event as one JSON line; reads are not audited, only what changes something.
fn line(event: &TokenEvent<'_>) -> Option<String> {
    let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let entry = match event {
        TokenEvent::Created { listing } => json!({
            "at": at, "event": "token created", "token_id": listing.id.to_string(),
            "owner": listing.owner, "kind": listing.kind.as_str(),
            "grants": listing.grants.iter()
                .map(|g| format!("{} {}", g.permission, g.pattern)).collect::<Vec<_>>(),
            "cidr": listing.cidr.to_strings(),
        }),
        TokenEvent::Revoked { id, owner } => json!({
            "at": at, "event": "token revoked", "token_id": id.to_string(), "owner": owner,
        }),
        TokenEvent::Used {
            by,
            action: Action::Write,
            resource,
        } => json!({
            "at": at, "event": "write", "token_id": by.token_id().to_string(),
            "owner": by.owner(), "resource": resource.map(|r| r.to_string()),
        }),
        TokenEvent::Refused {
            rejection,
            client,
            method,
            path,
        } => json!({
            "at": at, "event": "refused", "reason": format!("{:?}", rejection.reason()),
            "resource": rejection.resource().map(|r| r.to_string()),
            "token_id": rejection.token_id().map(|id| id.to_string()),
            "client": client.map(|ip| ip.to_string()),
            "method": method.map(|m| m.to_string()), "path": path,
        }),
        _ => return None,
    };
    Some(entry.to_string())
}

/// Opens `path` for appending, created readable by its owner only.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
