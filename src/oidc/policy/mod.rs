//! Trust policies: which CI workflow may exchange its ID token for a package, as data,
//! matched against a [`VerifiedIdToken`] after verification.

use std::fmt;
use std::ops::BitOr;

use super::claims::VerifiedIdToken;
use super::issuer::Provider;

mod circleci;
mod github;
mod gitlab;
mod npm;

pub use circleci::CircleCiPolicy;
pub use github::GitHubPolicy;
pub use gitlab::GitLabPolicy;

/// Something a trusted publisher may do with the token it is exchanged for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrustedAction {
    /// Publish a version (npm's `createPackage`).
    Publish,
    /// Stage a version that a maintainer later makes live (npm's `createStagedPackage`).
    Stage,
}

impl TrustedAction {
    /// npm's name in `npm trust`'s `permissions` array.
    pub fn npm_name(self) -> &'static str {
        match self {
            TrustedAction::Publish => "createPackage",
            TrustedAction::Stage => "createStagedPackage",
        }
    }

    /// The action npm names so, if known.
    pub fn from_npm_name(name: &str) -> Option<Self> {
        match name {
            "createPackage" => Some(TrustedAction::Publish),
            "createStagedPackage" => Some(TrustedAction::Stage),
            _ => None,
        }
    }

    fn bit(self) -> u8 {
        match self {
            TrustedAction::Publish => 1,
            TrustedAction::Stage => 2,
        }
    }
}

/// A set of [`TrustedAction`]s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TrustedActions(u8);

impl TrustedActions {
    /// Nothing.
    pub const NONE: Self = Self(0);
    /// Publishing only.
    pub const PUBLISH: Self = Self(1);
    /// Staging only.
    pub const STAGE: Self = Self(2);

    /// The actions given.
    pub fn new(actions: impl IntoIterator<Item = TrustedAction>) -> Self {
        Self(actions.into_iter().fold(0, |bits, a| bits | a.bit()))
    }

    /// Whether `action` is in the set.
    pub fn contains(self, action: TrustedAction) -> bool {
        self.0 & action.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions, publish first.
    pub fn iter(self) -> impl Iterator<Item = TrustedAction> {
        [TrustedAction::Publish, TrustedAction::Stage]
            .into_iter()
            .filter(move |a| self.contains(*a))
    }

    /// The set from npm's `permissions` names.
    pub fn from_npm_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, UnknownTrustedAction> {
        names
            .into_iter()
            .map(|n| {
                TrustedAction::from_npm_name(n).ok_or_else(|| UnknownTrustedAction(n.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    /// npm's names for the set.
    pub fn npm_names(self) -> Vec<&'static str> {
        self.iter().map(TrustedAction::npm_name).collect()
    }
}

/// A permission name npm's `npm trust` does not send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?} (expected createPackage or createStagedPackage)")]
pub struct UnknownTrustedAction(pub String);

impl BitOr for TrustedActions {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for TrustedActions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A package's trusted publisher: a CI workflow, named by its provider's claims, and what
/// it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustPolicy {
    /// A GitHub Actions workflow.
    GitHub(GitHubPolicy),
    /// A GitLab CI/CD pipeline.
    GitLab(GitLabPolicy),
    /// A CircleCI pipeline definition.
    CircleCi(CircleCiPolicy),
}

impl TrustPolicy {
    /// The provider it trusts.
    pub fn provider(&self) -> Provider {
        match self {
            TrustPolicy::GitHub(_) => Provider::GitHub,
            TrustPolicy::GitLab(_) => Provider::GitLab,
            TrustPolicy::CircleCi(_) => Provider::CircleCi,
        }
    }

    /// What it allows.
    pub fn allows(&self) -> TrustedActions {
        match self {
            TrustPolicy::GitHub(p) => p.allows(),
            TrustPolicy::GitLab(p) => p.allows(),
            TrustPolicy::CircleCi(p) => p.allows(),
        }
    }

    /// The policy with the ids of `pin` pinned (as [`GitHubPolicy::pinned`] or
    /// [`GitLabPolicy::pinned`] would), for an application that keeps the pin apart from
    /// the policy and puts the two together again when it loads them.
    ///
    /// # Errors
    ///
    /// [`InvalidPolicy::PinnedId`] for an id that is not decimal, and
    /// [`InvalidPolicy::PinProvider`] for a pin of another provider's ids (or any pin on a
    /// CircleCI policy, whose ids are fixed when it is made).
    pub fn with_pin(self, pin: &Pin) -> Result<Self, InvalidPolicy> {
        match (self, pin) {
            (
                TrustPolicy::GitHub(p),
                Pin::GitHub {
                    repository_id,
                    repository_owner_id,
                },
            ) => Ok(TrustPolicy::GitHub(
                p.pinned(repository_id, repository_owner_id)?,
            )),
            (
                TrustPolicy::GitLab(p),
                Pin::GitLab {
                    project_id,
                    namespace_id,
                },
            ) => Ok(TrustPolicy::GitLab(p.pinned(project_id, namespace_id)?)),
            _ => Err(InvalidPolicy::PinProvider),
        }
    }

    /// Whether `token` comes from this publisher. A match may carry a [`Pin`]: ids to
    /// store with the policy (from the first exchange), so that a deleted and re-created
    /// repository or project of the same name cannot use it later.
    ///
    /// A policy names no issuer: a verifier trusting two issuers of one provider
    /// (github.com and a GitHub Enterprise Server, say) must keep their policies apart
    /// by [`VerifiedIdToken::issuer`] itself.
    pub fn matches(&self, token: &VerifiedIdToken) -> Result<PolicyMatch, PolicyMismatch> {
        use super::claims::ProviderClaims as C;
        let pin = match (self, token.claims()) {
            (TrustPolicy::GitHub(p), C::GitHub(c)) => p.check(c)?,
            (TrustPolicy::GitLab(p), C::GitLab(c)) => p.check(token.issuer().as_str(), c)?,
            (TrustPolicy::CircleCi(p), C::CircleCi(c)) => p.check(c)?,
            _ => {
                return Err(PolicyMismatch::Provider {
                    expected: self.provider(),
                    found: token.provider(),
                });
            }
        };
        Ok(PolicyMatch {
            allows: self.allows(),
            pin,
        })
    }
}

/// The first of `policies` that `token` matches, with its index; else the mismatch of
/// the policy it came closest to (so that the message names what differs).
pub fn match_policies<'a>(
    policies: impl IntoIterator<Item = &'a TrustPolicy>,
    token: &VerifiedIdToken,
) -> Result<(usize, PolicyMatch), PolicyMismatch> {
    let mut closest: Option<PolicyMismatch> = None;
    for (index, policy) in policies.into_iter().enumerate() {
        match policy.matches(token) {
            Ok(matched) => return Ok((index, matched)),
            Err(mismatch) => {
                if closest
                    .as_ref()
                    .is_none_or(|c| mismatch.depth() > c.depth())
                {
                    closest = Some(mismatch);
                }
            }
        }
    }
    Err(closest.unwrap_or(PolicyMismatch::NoPolicy))
}

/// A policy that `token` matched.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyMatch {
    /// What the policy allows.
    pub allows: TrustedActions,
    /// Ids to pin on the policy, when it has none pinned yet.
    pub pin: Option<Pin>,
}

impl PolicyMatch {
    /// Ids to pin on the policy (store them with it), when it has none pinned yet.
    pub fn pin(&self) -> Option<&Pin> {
        self.pin.as_ref()
    }
}

/// Ids seen at a policy's first exchange, to be stored with it
/// ([`GitHubPolicy::pinned`], [`GitLabPolicy::pinned`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pin {
    /// A GitHub repository and its owner.
    GitHub {
        /// `repository_id`.
        repository_id: String,
        /// `repository_owner_id`.
        repository_owner_id: String,
    },
    /// A GitLab project and its namespace.
    GitLab {
        /// `project_id`.
        project_id: String,
        /// `namespace_id`.
        namespace_id: String,
    },
}

/// Why a verified token does not match a package's trusted publisher. The messages say
/// what differs, for the person reading npm's verbose log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyMismatch {
    /// The package has no trusted publisher.
    #[error("this package has no trusted publisher")]
    NoPolicy,
    /// Another CI provider.
    #[error("the ID token is from {found}, but this package's trusted publisher is on {expected}")]
    Provider {
        /// The policy's provider.
        expected: Provider,
        /// The token's.
        found: Provider,
    },
    /// A GitHub event that runs code from outside the repository with its rights.
    #[error(
        "GitHub event {0} may not publish (it can run code from a fork with the repository's rights); use push, release or workflow_dispatch"
    )]
    Event(String),
    /// GitHub: another repository.
    #[error("repository {found} does not match this package's trusted publisher ({expected})")]
    Repository {
        /// The policy's.
        expected: String,
        /// The token's.
        found: String,
    },
    /// GitHub: the repository's or its owner's id differs from the one pinned: it was
    /// deleted and created again.
    #[error(
        "{what} id {found} does not match the id pinned on this package's trusted publisher ({expected}); if it was re-created, add the trusted publisher again"
    )]
    PinnedId {
        /// `repository`, `repository owner`, `project` or `namespace`.
        what: &'static str,
        /// The pinned id.
        expected: String,
        /// The token's.
        found: String,
    },
    /// GitHub: another workflow file.
    #[error("workflow {found} does not match this package's trusted publisher ({expected})")]
    Workflow {
        /// The policy's.
        expected: String,
        /// The token's (as far as it could be read from `workflow_ref`).
        found: String,
    },
    /// Another deployment environment, or none.
    #[error("{} does not match this package's trusted publisher (environment {expected})", match found { Some(found) => format!("environment {found}"), None => "a job without an environment".to_owned() })]
    Environment {
        /// The policy's.
        expected: String,
        /// The token's.
        found: Option<String>,
    },
    /// GitLab: another project.
    #[error("project {found} does not match this package's trusted publisher ({expected})")]
    Project {
        /// The policy's.
        expected: String,
        /// The token's.
        found: String,
    },
    /// GitLab: another CI configuration file (or one in another project or instance).
    #[error(
        "CI configuration {found} does not match this package's trusted publisher ({expected})"
    )]
    ConfigFile {
        /// The policy's.
        expected: String,
        /// The token's `ci_config_ref_uri`.
        found: String,
    },
    /// CircleCI: another organisation.
    #[error(
        "CircleCI organisation {found} does not match this package's trusted publisher ({expected})"
    )]
    Organisation {
        /// The policy's.
        expected: String,
        /// The token's.
        found: String,
    },
    /// CircleCI: another project.
    #[error(
        "CircleCI project {found} does not match this package's trusted publisher ({expected})"
    )]
    CircleCiProject {
        /// The policy's.
        expected: String,
        /// The token's.
        found: String,
    },
    /// CircleCI: another pipeline definition.
    #[error(
        "pipeline definition {found} does not match this package's trusted publisher ({expected})"
    )]
    PipelineDefinition {
        /// The policy's.
        expected: String,
        /// The token's.
        found: String,
    },
    /// CircleCI: another VCS origin, or none.
    #[error("VCS origin {} does not match this package's trusted publisher ({expected})", found.as_deref().unwrap_or("(none)"))]
    VcsOrigin {
        /// The policy's.
        expected: String,
        /// The token's.
        found: Option<String>,
    },
    /// CircleCI: the job does not use a context the policy requires.
    #[error("the job does not use context {0}, which this package's trusted publisher requires")]
    Context(String),
    /// CircleCI: a rerun with SSH (a person at a shell holds the token).
    #[error("a CircleCI job rerun with SSH may not publish")]
    SshRerun,
}

impl PolicyMismatch {
    /// How far matching got before this: the deeper, the more useful its message.
    fn depth(&self) -> u8 {
        match self {
            PolicyMismatch::NoPolicy => 0,
            PolicyMismatch::Provider { .. } => 1,
            PolicyMismatch::Repository { .. }
            | PolicyMismatch::Project { .. }
            | PolicyMismatch::Organisation { .. } => 2,
            PolicyMismatch::CircleCiProject { .. } => 3,
            PolicyMismatch::Event(_)
            | PolicyMismatch::SshRerun
            | PolicyMismatch::PinnedId { .. } => 4,
            PolicyMismatch::Workflow { .. }
            | PolicyMismatch::ConfigFile { .. }
            | PolicyMismatch::PipelineDefinition { .. } => 5,
            PolicyMismatch::Environment { .. }
            | PolicyMismatch::VcsOrigin { .. }
            | PolicyMismatch::Context(_) => 6,
        }
    }
}

/// Why a policy could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidPolicy {
    /// Not `owner/repo` with GitHub's characters.
    #[error("a GitHub repository is owner/repo (letters, digits, '-', and '.', '_' in the name)")]
    Repository,
    /// Not a `.yml`/`.yaml` file name without directories.
    #[error("a workflow is a file name ending in .yml or .yaml, without directories")]
    WorkflowFile,
    /// Empty, too long, surrounded by spaces, or with control characters.
    #[error(
        "an environment name is 1 to 255 characters, without control characters or surrounding spaces"
    )]
    Environment,
    /// Not `group[/subgroup…]/project`.
    #[error("a GitLab project path is group[/subgroup…]/project")]
    ProjectPath,
    /// Not a relative `.yml`/`.yaml` path.
    #[error("a CI configuration file is a relative path ending in .yml or .yaml")]
    ConfigFile,
    /// Not a decimal id.
    #[error("a pinned id is a decimal number")]
    PinnedId,
    /// A [`Pin`] of another provider's ids ([`TrustPolicy::with_pin`]).
    #[error("the pinned ids are of another CI provider than the policy")]
    PinProvider,
    /// Not a UUID.
    #[error("{0} is a UUID")]
    Uuid(&'static str),
    /// Not `provider/owner/repo`.
    #[error("a VCS origin is provider/owner/repo, without a scheme")]
    VcsOrigin,
    /// Not npm's shape ([`TrustPolicy::from_npm`]).
    #[error("not a trusted publisher as npm sends one: {0}")]
    Npm(&'static str),
    /// A field or claim the policy does not check ([`TrustPolicy::from_npm`]); refused,
    /// not ignored.
    #[error("{0:?} is not a condition this registry checks; remove it (it would be ignored)")]
    UnknownField(String),
}

fn check_environment(env: &str) -> Result<(), InvalidPolicy> {
    let ok =
        (1..=255).contains(&env.len()) && env.trim() == env && !env.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(InvalidPolicy::Environment)
    }
}

fn check_id(id: &str) -> Result<(), InvalidPolicy> {
    if (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(InvalidPolicy::PinnedId)
    }
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn actions_are_a_set_with_npm_names() {
        let both = TrustedActions::PUBLISH | TrustedActions::STAGE;
        assert!(both.contains(TrustedAction::Publish) && both.contains(TrustedAction::Stage));
        assert!(!TrustedActions::STAGE.contains(TrustedAction::Publish));
        assert_eq!(both.npm_names(), ["createPackage", "createStagedPackage"]);
        assert_eq!(
            TrustedActions::from_npm_names(["createStagedPackage"]),
            Ok(TrustedActions::STAGE)
        );
        assert_eq!(
            TrustedActions::from_npm_names(["delete"]),
            Err(UnknownTrustedAction("delete".to_owned()))
        );
        assert!(TrustedActions::new([]).is_empty());
    }

    #[test]
    fn a_pin_put_back_on_its_policy_holds_it_to_the_pinned_ids() {
        let policy = TrustPolicy::GitHub(GitHubPolicy::new("acme/tool", "release.yml").unwrap());
        let pin = policy.matches(&github_token(|_| {})).unwrap().pin.unwrap();
        let pinned = policy.clone().with_pin(&pin).unwrap();
        assert_eq!(pinned.matches(&github_token(|_| {})).unwrap().pin, None);
        // A repository of the same name made again has another id.
        let recreated = github_token(|c| c.repository_id = "75".into());
        assert!(policy.matches(&recreated).is_ok());
        assert!(pinned.matches(&recreated).is_err());
        let gitlab_pin = Pin::GitLab {
            project_id: "20".into(),
            namespace_id: "72".into(),
        };
        assert_eq!(
            policy.with_pin(&gitlab_pin).unwrap_err(),
            InvalidPolicy::PinProvider
        );
        let not_decimal = Pin::GitHub {
            repository_id: "x".into(),
            repository_owner_id: "65".into(),
        };
        assert_eq!(
            pinned.with_pin(&not_decimal).unwrap_err(),
            InvalidPolicy::PinnedId
        );
    }

    #[test]
    fn a_policy_of_another_provider_does_not_match_and_the_closest_mismatch_is_reported() {
        let token = github_token(|_| {});
        let gitlab = TrustPolicy::GitLab(GitLabPolicy::new("acme/tool", ".gitlab-ci.yml").unwrap());
        assert_eq!(
            gitlab.matches(&token).unwrap_err(),
            PolicyMismatch::Provider {
                expected: Provider::GitLab,
                found: Provider::GitHub
            }
        );
        let other_repo =
            TrustPolicy::GitHub(GitHubPolicy::new("acme/other", "release.yml").unwrap());
        let other_file = TrustPolicy::GitHub(GitHubPolicy::new("acme/tool", "deploy.yml").unwrap());
        let right = TrustPolicy::GitHub(GitHubPolicy::new("acme/tool", "release.yml").unwrap());
        let mismatch = match_policies([&gitlab, &other_repo, &other_file], &token).unwrap_err();
        assert_eq!(
            mismatch.to_string(),
            "workflow release.yml does not match this package's trusted publisher (deploy.yml)"
        );
        let (index, _) = match_policies([&gitlab, &other_file, &right], &token).unwrap();
        assert_eq!(index, 2);
        assert_eq!(
            match_policies([], &token).unwrap_err(),
            PolicyMismatch::NoPolicy
        );
    }
}
