//! Trusted publishing: a package names the CI workflows that may publish it (`npm trust`,
//! [`policies`]), and a CI job exchanges its provider's OIDC ID token for a short-lived
//! token that can publish that one package ([`exchange`]).
//!
//! A policy is kept in npm's shape, with the issuer it was made for and, after its first
//! exchange, the repository or project ids it is pinned to (so that a repository deleted
//! and made again under the same name by someone else cannot use it).

pub mod exchange;
pub mod policies;
pub mod publishers;

use serde_json::{Value, json};
use tokengate::oidc::{Pin, Provider, TrustPolicy};

use crate::db::StoredPublisher;
use crate::state::IdTokens;

/// The most trusted publishers a package has (npm allows a handful; ten is plenty for a
/// release workflow per provider and environment).
pub const MAX_PUBLISHERS: usize = 10;

/// The stored policy as the library matches it, with its pin put back; `None` for a row
/// that no longer reads as a policy (it then matches nothing, and says so in the log).
pub fn policy_of(stored: &StoredPublisher) -> Option<TrustPolicy> {
    let policy = TrustPolicy::from_npm(&stored.policy).and_then(|policy| match &stored.pin {
        Some(pin) => match pin_from_json(pin) {
            Some(pin) => policy.with_pin(&pin),
            None => Err(tokengate::oidc::InvalidPolicy::PinnedId),
        },
        None => Ok(policy),
    });
    match policy {
        Ok(policy) => Some(policy),
        Err(error) => {
            tracing::error!(id = %stored.id, %error, "a stored trusted publisher is damaged; it matches nothing");
            None
        }
    }
}

/// The issuer a policy for `provider` is made for on this registry (one per provider),
/// `None` when the registry does not trust that provider.
pub fn issuer_for(id_tokens: &IdTokens, provider: Provider) -> Option<String> {
    id_tokens
        .issuers()
        .iter()
        .find(|issuer| issuer.provider() == provider)
        .map(|issuer| issuer.url().to_string())
}

/// A pin as stored; `None` for a kind of pin this registry does not know how to keep (a
/// policy that cannot be pinned is not exchanged for).
pub fn pin_to_json(pin: &Pin) -> Option<Value> {
    Some(match pin {
        Pin::GitHub {
            repository_id,
            repository_owner_id,
        } => json!({ "github": {
            "repository_id": repository_id, "repository_owner_id": repository_owner_id,
        }}),
        Pin::GitLab {
            project_id,
            namespace_id,
        } => json!({ "gitlab": { "project_id": project_id, "namespace_id": namespace_id } }),
        _ => return None,
    })
}

fn pin_from_json(value: &Value) -> Option<Pin> {
    let text = |object: &Value, key: &str| object.get(key)?.as_str().map(str::to_owned);
    if let Some(github) = value.get("github") {
        return Some(Pin::GitHub {
            repository_id: text(github, "repository_id")?,
            repository_owner_id: text(github, "repository_owner_id")?,
        });
    }
    let gitlab = value.get("gitlab")?;
    Some(Pin::GitLab {
        project_id: text(gitlab, "project_id")?,
        namespace_id: text(gitlab, "namespace_id")?,
    })
}

/// The policy as `npm trust list` reads it: npm's shape with its id.
pub fn listed(stored: &StoredPublisher) -> Value {
    let mut shown = stored.policy.clone();
    shown["id"] = json!(stored.id);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_read_back_as_they_were_written() {
        let pins = [
            Pin::GitHub {
                repository_id: "74".into(),
                repository_owner_id: "65".into(),
            },
            Pin::GitLab {
                project_id: "20".into(),
                namespace_id: "72".into(),
            },
        ];
        for pin in pins {
            assert_eq!(pin_from_json(&pin_to_json(&pin).unwrap()), Some(pin));
        }
        assert_eq!(
            pin_from_json(&json!({ "github": { "repository_id": "1" } })),
            None
        );
    }

    #[test]
    fn a_damaged_row_matches_nothing() {
        let stored = StoredPublisher {
            id: "p1".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            policy: json!({ "type": "github", "claims": { "repository": "acme/tool",
                "workflow_ref": { "file": "release.yml" } }, "permissions": ["createPackage"] }),
            pin: Some(json!({ "github": { "repository_id": "not a number",
                "repository_owner_id": "65" } })),
            created_by: "alice".into(),
            created: "2026-12-02T00:00:00Z".into(),
        };
        assert!(policy_of(&stored).is_none());
        let unpinned = StoredPublisher {
            pin: None,
            ..stored
        };
        assert!(policy_of(&unpinned).is_some());
    }
}
