//! The audit log: one JSON line per token created or revoked, and per write made with a
//! token, from tokengate's event hook; refusals one line each for the first few from an
//! address in a minute, then one summary line per address and minute, so that anonymous
//! floods cannot fill the disk. In `<data>/audit.log` (owner-only), or in the server log
//! with `--memory`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

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
    let refusals = Arc::new(Mutex::new(Refusals::new(Instant::now())));
    // Summaries of a quiet minute are written when it ends, not at the next refusal.
    tokio::spawn({
        let (refusals, sender) = (Arc::clone(&refusals), sender.clone());
        async move {
            let mut every = tokio::time::interval(SUMMARY_WINDOW);
            loop {
                every.tick().await;
                let due = lock(&refusals).roll(Instant::now());
                for line in due {
                    send(&sender, line);
                }
            }
        }
    });
    Ok(move |event: &TokenEvent<'_>| {
        if let TokenEvent::Refused {
            rejection, client, ..
        } = event
        {
            let reason = format!("{:?}", rejection.reason());
            let (due, alone) = lock(&refusals).count(Instant::now(), *client, &reason);
            for line in due {
                send(&sender, line);
            }
            if !alone {
                return;
            }
        }
        if let Some(line) = line(event) {
            send(&sender, line);
        }
    })
}

fn send(sender: &mpsc::Sender<String>, line: String) {
    if sender.try_send(line).is_err() {
        tracing::warn!("audit log backlog full: an entry was dropped");
    }
}

fn lock(refusals: &Mutex<Refusals>) -> std::sync::MutexGuard<'_, Refusals> {
    // Counts stay counts even if a writer panicked holding them.
    refusals.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Refusals logged one line each per client address in a [`SUMMARY_WINDOW`]; the rest are
/// counted and summarised.
const REFUSALS_ALONE: u32 = 10;
/// How long a summary covers.
const SUMMARY_WINDOW: Duration = Duration::from_secs(60);
/// Addresses counted apart in one window; refusals from any more are summed together.
const ADDRESSES_APART: usize = 10_000;

/// Refusals per client address in the current window.
struct Refusals {
    started: Instant,
    started_at: SystemTime,
    /// `None`: no address known, or past [`ADDRESSES_APART`].
    by_client: HashMap<Option<IpAddr>, Counted>,
}

#[derive(Default)]
struct Counted {
    total: u32,
    /// The refusals past the first [`REFUSALS_ALONE`], by reason.
    summarised: BTreeMap<String, u32>,
}

impl Refusals {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            started_at: SystemTime::now(),
            by_client: HashMap::new(),
        }
    }

    /// Counts a refusal from `client`: the summaries of a window that has ended, and
    /// whether this refusal gets a line of its own.
    fn count(&mut self, now: Instant, client: Option<IpAddr>, reason: &str) -> (Vec<String>, bool) {
        let due = self.roll(now);
        let apart = self.by_client.len() < ADDRESSES_APART || self.by_client.contains_key(&client);
        let counted = self.by_client.entry(client.filter(|_| apart)).or_default();
        counted.total = counted.total.saturating_add(1);
        let alone = counted.total <= REFUSALS_ALONE;
        if !alone {
            let reason = counted.summarised.entry(reason.to_owned()).or_default();
            *reason = reason.saturating_add(1);
        }
        (due, alone)
    }

    /// The summary lines of the window, if it has ended (and a new one begun).
    fn roll(&mut self, now: Instant) -> Vec<String> {
        if now.duration_since(self.started) < SUMMARY_WINDOW {
            return Vec::new();
        }
        let from = humantime::format_rfc3339_millis(self.started_at).to_string();
        let to = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let ended = std::mem::replace(self, Self::new(now));
        ended
            .by_client
            .into_iter()
            .filter(|(_, counted)| !counted.summarised.is_empty())
            .map(|(client, counted)| {
                json!({
                    "at": to, "event": "refusals summarised", "from": from,
                    "client": client.map(|ip| ip.to_string()),
                    "count": counted.total - REFUSALS_ALONE.min(counted.total),
                    "reasons": counted.summarised,
                })
                .to_string()
            })
            .collect()
    }
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
        TokenEvent::Exchanged {
            listing,
            provenance,
        } => json!({
            "at": at, "event": "token exchanged", "token_id": listing.id.to_string(),
            "owner": listing.owner,
            "grants": listing.grants.iter()
                .map(|g| format!("{} {}", g.permission, g.pattern)).collect::<Vec<_>>(),
            "issuer": provenance.issuer, "provider": provenance.provider.as_str(),
            "source": provenance.source, "workflow": provenance.workflow,
            "run_id": provenance.run_id, "commit": provenance.commit_sha,
            "jti": provenance.jti,
        }),
        TokenEvent::Revoked { id, owner } => json!({
            "at": at, "event": "token revoked", "token_id": id.to_string(), "owner": owner,
        }),
        TokenEvent::Used {
            by,
            action: action @ (Action::Write | Action::Stage),
            resource,
        } => json!({
            "at": at,
            "event": if *action == Action::Stage { "stage" } else { "write" },
            "token_id": by.token_id().to_string(),
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
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, crate::storage::PRIVATE_FILE);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_ten_a_minute_an_address_is_summarised_not_written_line_by_line() {
        let start = Instant::now();
        let mut refusals = Refusals::new(start);
        let flood: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let alone = (0..2_000)
            .filter(|_| refusals.count(start, Some(flood), "UnknownToken").1)
            .count();
        assert_eq!(alone, 10, "the first ten have lines of their own");
        assert!(
            refusals.count(start, Some(other), "ReadOnly").1,
            "others are apart"
        );
        assert!(refusals.roll(start + Duration::from_secs(59)).is_empty());
        let summary = refusals.roll(start + SUMMARY_WINDOW);
        assert_eq!(summary.len(), 1, "only the address past ten is summarised");
        let summary: serde_json::Value = serde_json::from_str(&summary[0]).unwrap();
        assert_eq!(summary["client"], "192.0.2.7");
        assert_eq!(summary["count"], 1_990);
        assert_eq!(summary["reasons"]["UnknownToken"], 1_990);
        // A new window: lines of their own again.
        let later = start + SUMMARY_WINDOW;
        assert!(refusals.count(later, Some(flood), "UnknownToken").1);
    }

    #[test]
    fn addresses_past_the_cap_are_summed_together() {
        let start = Instant::now();
        let mut refusals = Refusals::new(start);
        for n in 0..ADDRESSES_APART as u32 + 5 {
            let client = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            for _ in 0..=REFUSALS_ALONE {
                refusals.count(start, Some(client), "UnknownToken");
            }
        }
        assert!(refusals.by_client.len() <= ADDRESSES_APART + 1);
        assert_eq!(refusals.by_client[&None].total, 5 * (REFUSALS_ALONE + 1));
    }
}
