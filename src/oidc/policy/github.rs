//! GitHub Actions: repository, workflow file, optional environment, pinned ids.

use super::{InvalidPolicy, Pin, PolicyMismatch, TrustedActions, check_environment, check_id};
use crate::oidc::claims::GitHubClaims;

/// Events that run code from outside the repository (a fork's pull request, another
/// workflow's artifacts) with the repository's rights: they may not exchange.
const REFUSED_EVENTS: [&str; 2] = ["pull_request_target", "workflow_run"];

/// A GitHub Actions workflow as a trusted publisher (`npm trust github --repo owner/repo
/// --file release.yml [--env prod]`).
///
/// Matches a token whose `repository` is the repository (ignoring ASCII case, as GitHub
/// does), whose `workflow_ref` is `<repository>/.github/workflows/<file>@<ref>` for this
/// file (case-sensitive), and, when the policy names an environment, whose `environment`
/// is that one (ignoring case, as GitHub does). Tokens from `pull_request_target` and
/// `workflow_run` runs never match. Once ids are [`pinned`](Self::pinned), the token's
/// `repository_id` and `repository_owner_id` must be those.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHubPolicy {
    repository: String,
    workflow_file: String,
    environment: Option<String>,
    repository_id: Option<String>,
    repository_owner_id: Option<String>,
    allows: TrustedActions,
}

impl GitHubPolicy {
    /// The workflow `workflow_file` (a file name under `.github/workflows/`) of
    /// `repository` (`owner/repo`), allowed to publish.
    pub fn new(
        repository: impl Into<String>,
        workflow_file: impl Into<String>,
    ) -> Result<Self, InvalidPolicy> {
        let repository = repository.into();
        let workflow_file = workflow_file.into();
        check_repository(&repository)?;
        check_workflow_file(&workflow_file)?;
        Ok(Self {
            repository,
            workflow_file,
            environment: None,
            repository_id: None,
            repository_owner_id: None,
            allows: TrustedActions::PUBLISH,
        })
    }

    /// Only jobs in this deployment environment.
    pub fn environment(mut self, environment: impl Into<String>) -> Result<Self, InvalidPolicy> {
        let environment = environment.into();
        check_environment(&environment)?;
        self.environment = Some(environment);
        Ok(self)
    }

    /// The ids seen at the first exchange ([`Pin::GitHub`]): from then on only this
    /// repository and owner match, not another of the same name.
    pub fn pinned(
        mut self,
        repository_id: impl Into<String>,
        repository_owner_id: impl Into<String>,
    ) -> Result<Self, InvalidPolicy> {
        let repository_id = repository_id.into();
        let repository_owner_id = repository_owner_id.into();
        check_id(&repository_id)?;
        check_id(&repository_owner_id)?;
        self.repository_id = Some(repository_id);
        self.repository_owner_id = Some(repository_owner_id);
        Ok(self)
    }

    /// What it allows (default: publish).
    pub fn allow(mut self, actions: TrustedActions) -> Self {
        self.allows = actions;
        self
    }

    /// `owner/repo`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The workflow's file name.
    pub fn workflow_file(&self) -> &str {
        &self.workflow_file
    }

    /// The environment required, if any.
    pub fn environment_name(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// The pinned repository id.
    pub fn repository_id(&self) -> Option<&str> {
        self.repository_id.as_deref()
    }

    /// The pinned owner id.
    pub fn repository_owner_id(&self) -> Option<&str> {
        self.repository_owner_id.as_deref()
    }

    /// What it allows.
    pub fn allows(&self) -> TrustedActions {
        self.allows
    }

    pub(super) fn check(&self, c: &GitHubClaims) -> Result<Option<Pin>, PolicyMismatch> {
        if REFUSED_EVENTS.contains(&c.event_name.as_str()) {
            return Err(PolicyMismatch::Event(c.event_name.clone()));
        }
        if !c.repository.eq_ignore_ascii_case(&self.repository) {
            return Err(PolicyMismatch::Repository {
                expected: self.repository.clone(),
                found: c.repository.clone(),
            });
        }
        for (what, pinned, found) in [
            (
                "repository owner",
                &self.repository_owner_id,
                &c.repository_owner_id,
            ),
            ("repository", &self.repository_id, &c.repository_id),
        ] {
            if let Some(pinned) = pinned
                && pinned != found
            {
                return Err(PolicyMismatch::PinnedId {
                    what,
                    expected: pinned.clone(),
                    found: found.clone(),
                });
            }
        }
        let prefix = format!("{}/.github/workflows/{}@", c.repository, self.workflow_file);
        let workflow_matches = c
            .workflow_ref
            .strip_prefix(&prefix)
            .is_some_and(|git_ref| !git_ref.is_empty());
        if !workflow_matches {
            return Err(PolicyMismatch::Workflow {
                expected: self.workflow_file.clone(),
                found: workflow_file_of(&c.workflow_ref).to_owned(),
            });
        }
        if let Some(expected) = &self.environment {
            let matches = c
                .environment
                .as_deref()
                .is_some_and(|found| found.to_lowercase() == expected.to_lowercase());
            if !matches {
                return Err(PolicyMismatch::Environment {
                    expected: expected.clone(),
                    found: c.environment.clone(),
                });
            }
        }
        let pinned = self.repository_id.is_some() && self.repository_owner_id.is_some();
        Ok((!pinned).then(|| Pin::GitHub {
            repository_id: c.repository_id.clone(),
            repository_owner_id: c.repository_owner_id.clone(),
        }))
    }
}

/// The file name in `owner/repo/.github/workflows/<file>@<ref>`, for messages: up to the
/// first `.yml@` or `.yaml@` (file names may hold `@`), else the whole reference.
fn workflow_file_of(workflow_ref: &str) -> &str {
    let Some((_, after)) = workflow_ref.split_once("/.github/workflows/") else {
        return workflow_ref;
    };
    for suffix in [".yml@", ".yaml@"] {
        if let Some(at) = after.find(suffix) {
            return &after[..at + suffix.len() - 1];
        }
    }
    after
}

fn check_repository(repository: &str) -> Result<(), InvalidPolicy> {
    let Some((owner, name)) = repository.split_once('/') else {
        return Err(InvalidPolicy::Repository);
    };
    let owner_ok = (1..=39).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !owner.starts_with('-');
    let name_ok = (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != "..";
    if owner_ok && name_ok {
        Ok(())
    } else {
        Err(InvalidPolicy::Repository)
    }
}

fn check_workflow_file(file: &str) -> Result<(), InvalidPolicy> {
    let stem = file
        .strip_suffix(".yml")
        .or_else(|| file.strip_suffix(".yaml"));
    let ok = file.len() <= 255
        && stem.is_some_and(|s| !s.is_empty())
        && !file.contains(['/', '\\'])
        && !file.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(InvalidPolicy::WorkflowFile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::policy::TrustPolicy;
    use crate::oidc::policy::test_support::github_token;

    fn policy() -> GitHubPolicy {
        GitHubPolicy::new("acme/tool", "release.yml").unwrap()
    }

    #[test]
    fn policies_are_checked_when_made() {
        let table: &[(&str, &str, Result<(), InvalidPolicy>)] = &[
            ("acme/tool", "release.yml", Ok(())),
            ("acme/tool.js", "release.yaml", Ok(())),
            ("acme", "release.yml", Err(InvalidPolicy::Repository)),
            ("acme/tool/x", "release.yml", Err(InvalidPolicy::Repository)),
            ("ac me/tool", "release.yml", Err(InvalidPolicy::Repository)),
            ("acme/..", "release.yml", Err(InvalidPolicy::Repository)),
            ("acme/tool", ".yml", Err(InvalidPolicy::WorkflowFile)),
            ("acme/tool", "release", Err(InvalidPolicy::WorkflowFile)),
            (
                "acme/tool",
                "dir/release.yml",
                Err(InvalidPolicy::WorkflowFile),
            ),
        ];
        for (repo, file, expected) in table {
            assert_eq!(
                GitHubPolicy::new(*repo, *file).map(|_| ()),
                *expected,
                "{repo} {file}"
            );
        }
        assert_eq!(
            policy().environment(" prod").unwrap_err(),
            InvalidPolicy::Environment
        );
        assert_eq!(
            policy().pinned("74", "x").unwrap_err(),
            InvalidPolicy::PinnedId
        );
    }

    #[test]
    fn matching_table() {
        let unpinned_pin = Some(Pin::GitHub {
            repository_id: "74".into(),
            repository_owner_id: "65".into(),
        });
        let prod = || policy().environment("prod").unwrap();
        let pinned = || policy().pinned("74", "65").unwrap();
        type Case = (
            &'static str,
            GitHubPolicy,
            fn(&mut GitHubClaims),
            Result<Option<Pin>, String>,
        );
        let cases: Vec<Case> = vec![
            ("the trusted workflow; ids to pin", policy(), |_| {}, Ok(unpinned_pin.clone())),
            ("repository case ignored", policy(), |c| {
                c.repository = "ACME/Tool".into();
                c.workflow_ref = "ACME/Tool/.github/workflows/release.yml@refs/tags/v1".into();
            }, Ok(unpinned_pin.clone())),
            ("pinned and the same ids: nothing to pin", pinned(), |_| {}, Ok(None)),
            ("another repository", policy(), |c| {
                c.repository = "acme/other".into();
                c.workflow_ref = "acme/other/.github/workflows/release.yml@refs/heads/main".into();
            }, Err("repository acme/other does not match this package's trusted publisher (acme/tool)".into())),
            ("another workflow", policy(), |c| {
                c.workflow_ref = "acme/tool/.github/workflows/deploy.yml@refs/heads/main".into();
            }, Err("workflow deploy.yml does not match this package's trusted publisher (release.yml)".into())),
            ("the workflow of another repository", policy(), |c| {
                c.workflow_ref = "evil/fork/.github/workflows/release.yml@refs/heads/main".into();
            }, Err("workflow release.yml does not match this package's trusted publisher (release.yml)".into())),
            ("a longer file name with the same start", policy(), |c| {
                c.workflow_ref = "acme/tool/.github/workflows/release.yml.evil.yml@refs/heads/main".into();
            }, Err("workflow release.yml.evil.yml does not match this package's trusted publisher (release.yml)".into())),
            ("no ref after @", policy(), |c| {
                c.workflow_ref = "acme/tool/.github/workflows/release.yml@".into();
            }, Err("workflow release.yml does not match this package's trusted publisher (release.yml)".into())),
            ("workflow file case matters", policy(), |c| {
                c.workflow_ref = "acme/tool/.github/workflows/Release.yml@refs/heads/main".into();
            }, Err("workflow Release.yml does not match this package's trusted publisher (release.yml)".into())),
            ("environment required, none", prod(), |_| {},
                Err("a job without an environment does not match this package's trusted publisher (environment prod)".into())),
            ("environment required, another", prod(), |c| c.environment = Some("staging".into()),
                Err("environment staging does not match this package's trusted publisher (environment prod)".into())),
            ("environment case ignored", prod(), |c| c.environment = Some("Prod".into()), Ok(unpinned_pin.clone())),
            ("no environment required, any", policy(), |c| c.environment = Some("staging".into()), Ok(unpinned_pin.clone())),
            ("re-created repository", pinned(), |c| c.repository_id = "99".into(),
                Err("repository id 99 does not match the id pinned on this package's trusted publisher (74); if it was re-created, add the trusted publisher again".into())),
            ("re-created owner", pinned(), |c| c.repository_owner_id = "98".into(),
                Err("repository owner id 98 does not match the id pinned on this package's trusted publisher (65); if it was re-created, add the trusted publisher again".into())),
            ("pull_request_target", policy(), |c| c.event_name = "pull_request_target".into(),
                Err("GitHub event pull_request_target may not publish (it can run code from a fork with the repository's rights); use push, release or workflow_dispatch".into())),
            ("workflow_run", policy(), |c| c.event_name = "workflow_run".into(),
                Err("GitHub event workflow_run may not publish (it can run code from a fork with the repository's rights); use push, release or workflow_dispatch".into())),
        ];
        for (name, policy, edit, expected) in cases {
            let token = github_token(edit);
            let got =
                TrustPolicy::GitHub(policy.allow(TrustedActions::PUBLISH | TrustedActions::STAGE))
                    .matches(&token)
                    .map(|m| {
                        assert_eq!(m.allows, TrustedActions::PUBLISH | TrustedActions::STAGE);
                        m.pin
                    })
                    .map_err(|e| e.to_string());
            assert_eq!(got, expected, "{name}");
        }
    }
}
