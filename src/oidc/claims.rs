//! What a verified ID token says: the standard claims, each provider's own, and the
//! summary an audit log needs.

use std::time::SystemTime;

use serde_json::{Map, Value};

use super::error::Refusal;
use super::issuer::{IssuerUrl, Provider};

/// The longest claim value read (the token itself is at most 16 KiB).
const MAX_CLAIM_LEN: usize = 1_024;

/// An ID token whose signature, issuer, audience, times and single use were checked.
///
/// It names no policy yet: match it against the package's
/// [`TrustPolicy`](super::TrustPolicy)s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedIdToken {
    pub(crate) issuer: IssuerUrl,
    pub(crate) subject: Option<String>,
    pub(crate) jti: String,
    pub(crate) issued_at: SystemTime,
    pub(crate) expires_at: SystemTime,
    pub(crate) claims: ProviderClaims,
}

impl VerifiedIdToken {
    /// The issuer (`iss`).
    pub fn issuer(&self) -> &IssuerUrl {
        &self.issuer
    }

    /// The provider whose claims it carries.
    pub fn provider(&self) -> Provider {
        match self.claims {
            ProviderClaims::GitHub(_) => Provider::GitHub,
            ProviderClaims::GitLab(_) => Provider::GitLab,
            ProviderClaims::CircleCi(_) => Provider::CircleCi,
        }
    }

    /// The subject (`sub`), when present.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The token's id (`jti`), recorded as used.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// When it was issued (`iat`).
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// When it expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The provider's claims.
    pub fn claims(&self) -> &ProviderClaims {
        &self.claims
    }

    /// What an audit log of the exchange records.
    pub fn provenance(&self) -> Provenance {
        let (source, workflow, run_id, commit_sha) = match &self.claims {
            ProviderClaims::GitHub(c) => (
                c.repository.clone(),
                Some(c.workflow_ref.clone()),
                Some(c.run_id.clone()),
                Some(c.sha.clone()),
            ),
            ProviderClaims::GitLab(c) => (
                c.project_path.clone(),
                Some(c.ci_config_ref_uri.clone()),
                c.pipeline_id.clone().or_else(|| c.job_id.clone()),
                Some(c.sha.clone()),
            ),
            ProviderClaims::CircleCi(c) => (
                c.vcs_origin
                    .clone()
                    .unwrap_or_else(|| format!("project {}", c.project_id)),
                Some(c.pipeline_definition_id.clone()),
                c.workflow_id.clone().or_else(|| c.pipeline_id.clone()),
                None,
            ),
        };
        Provenance {
            issuer: self.issuer.as_str().to_owned(),
            provider: self.provider(),
            source,
            workflow,
            run_id,
            commit_sha,
            jti: self.jti.clone(),
        }
    }
}

/// The exchange's who-and-what, for the audit log (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Provenance {
    /// The issuer (`iss`).
    pub issuer: String,
    /// The provider.
    pub provider: Provider,
    /// GitHub `owner/repo`, GitLab project path, CircleCI VCS origin (or project id).
    pub source: String,
    /// GitHub `workflow_ref`, GitLab `ci_config_ref_uri`, CircleCI pipeline definition id.
    pub workflow: Option<String>,
    /// GitHub run id, GitLab pipeline id (else job id), CircleCI workflow id (else
    /// pipeline id).
    pub run_id: Option<String>,
    /// The commit built (GitHub and GitLab `sha`; CircleCI tokens carry none).
    pub commit_sha: Option<String>,
    /// The token's `jti`.
    pub jti: String,
}

/// The claims of one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderClaims {
    /// GitHub Actions.
    GitHub(GitHubClaims),
    /// GitLab CI/CD.
    GitLab(GitLabClaims),
    /// CircleCI.
    CircleCi(CircleCiClaims),
}

/// GitHub Actions' claims that policies and audit logs use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GitHubClaims {
    /// `owner/repo`.
    pub repository: String,
    /// The repository's numeric id: stays with the repository through renames, and a
    /// re-created repository of the same name gets another.
    pub repository_id: String,
    /// The owner's login.
    pub repository_owner: Option<String>,
    /// The owner's numeric id (the same rules as `repository_id`).
    pub repository_owner_id: String,
    /// `owner/repo/.github/workflows/<file>@<ref>`: the workflow that runs.
    pub workflow_ref: String,
    /// The workflow of the job (differs from `workflow_ref` in a reusable workflow).
    pub job_workflow_ref: Option<String>,
    /// The deployment environment of the job, if any.
    pub environment: Option<String>,
    /// What triggered the run (`push`, `release`, `workflow_dispatch`, …).
    pub event_name: String,
    /// The git ref (`ref`).
    pub git_ref: Option<String>,
    /// The commit.
    pub sha: String,
    /// The run's id.
    pub run_id: String,
    /// The attempt of the run.
    pub run_attempt: Option<String>,
    /// Who triggered it.
    pub actor: Option<String>,
    /// `public`, `private` or `internal`.
    pub repository_visibility: Option<String>,
    /// `github-hosted` or `self-hosted`.
    pub runner_environment: Option<String>,
}

/// GitLab CI/CD's claims that policies and audit logs use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GitLabClaims {
    /// `group/[subgroup/]project`.
    pub project_path: String,
    /// The project's numeric id.
    pub project_id: String,
    /// The top namespace's numeric id.
    pub namespace_id: String,
    /// `<host>/<project path>//<CI config path>@<ref>`: the pipeline definition.
    pub ci_config_ref_uri: String,
    /// The deployment environment of the job, if any.
    pub environment: Option<String>,
    /// The git ref (`ref`).
    pub git_ref: Option<String>,
    /// The commit.
    pub sha: String,
    /// The pipeline's id.
    pub pipeline_id: Option<String>,
    /// The job's id.
    pub job_id: Option<String>,
    /// Who ran it.
    pub user_login: Option<String>,
    /// `public`, `internal` or `private`.
    pub project_visibility: Option<String>,
}

/// CircleCI's claims (`oidc.circleci.com/…`) that policies and audit logs use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CircleCiClaims {
    /// The organisation's id (also the last part of the issuer).
    pub org_id: String,
    /// The project's id.
    pub project_id: String,
    /// The pipeline definition's id.
    pub pipeline_definition_id: String,
    /// `provider/owner/repo`, as `npm trust circleci --vcs-origin` takes it.
    pub vcs_origin: Option<String>,
    /// The git ref.
    pub vcs_ref: Option<String>,
    /// The contexts the job uses.
    pub context_ids: Vec<String>,
    /// The pipeline's id.
    pub pipeline_id: Option<String>,
    /// The workflow's id.
    pub workflow_id: Option<String>,
    /// The job's id.
    pub job_id: Option<String>,
    /// Whether the job is a rerun with SSH (someone at a shell holds this token).
    pub ssh_rerun: bool,
}

/// Reads claims from a verified payload.
pub(crate) struct Payload<'a>(pub(crate) &'a Map<String, Value>);

impl Payload<'_> {
    /// A string claim; numbers are read as their decimal text (some issuers send ids as
    /// numbers); absent or `null` is `None`.
    pub(crate) fn string(&self, name: &'static str) -> Result<Option<String>, Refusal> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= MAX_CLAIM_LEN => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(Refusal::InvalidClaim(name)),
        }
    }

    /// A string claim that must be present and not empty.
    pub(crate) fn required(&self, name: &'static str) -> Result<String, Refusal> {
        match self.string(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(Refusal::MissingClaim(name)),
        }
    }

    /// An optional string claim; an empty string is read as absent (GitHub sends empty
    /// strings for claims that do not apply, such as `head_ref` outside pull requests).
    pub(crate) fn optional(&self, name: &'static str) -> Result<Option<String>, Refusal> {
        Ok(self.string(name)?.filter(|s| !s.is_empty()))
    }

    pub(crate) fn github(&self) -> Result<GitHubClaims, Refusal> {
        Ok(GitHubClaims {
            repository: self.required("repository")?,
            repository_id: self.required("repository_id")?,
            repository_owner: self.optional("repository_owner")?,
            repository_owner_id: self.required("repository_owner_id")?,
            workflow_ref: self.required("workflow_ref")?,
            job_workflow_ref: self.optional("job_workflow_ref")?,
            environment: self.optional("environment")?,
            event_name: self.required("event_name")?,
            git_ref: self.optional("ref")?,
            sha: self.required("sha")?,
            run_id: self.required("run_id")?,
            run_attempt: self.optional("run_attempt")?,
            actor: self.optional("actor")?,
            repository_visibility: self.optional("repository_visibility")?,
            runner_environment: self.optional("runner_environment")?,
        })
    }

    pub(crate) fn gitlab(&self) -> Result<GitLabClaims, Refusal> {
        Ok(GitLabClaims {
            project_path: self.required("project_path")?,
            project_id: self.required("project_id")?,
            namespace_id: self.required("namespace_id")?,
            ci_config_ref_uri: self.required("ci_config_ref_uri")?,
            environment: self.optional("environment")?,
            git_ref: self.optional("ref")?,
            sha: self.required("sha")?,
            pipeline_id: self.optional("pipeline_id")?,
            job_id: self.optional("job_id")?,
            user_login: self.optional("user_login")?,
            project_visibility: self.optional("project_visibility")?,
        })
    }

    /// CircleCI's claims; `issuer` is `<base>/org/<org id>`, and the org id claim, when
    /// present, must agree with it.
    pub(crate) fn circleci(&self, issuer: &IssuerUrl) -> Result<CircleCiClaims, Refusal> {
        let from_issuer = issuer
            .as_str()
            .rsplit_once("/org/")
            .map(|(_, org)| org.to_owned());
        let org_id = match (self.optional("oidc.circleci.com/org-id")?, from_issuer) {
            (Some(claim), Some(issuer_org)) if claim != issuer_org => {
                return Err(Refusal::InvalidClaim("oidc.circleci.com/org-id"));
            }
            (Some(claim), _) => claim,
            (None, Some(issuer_org)) => issuer_org,
            (None, None) => return Err(Refusal::MissingClaim("oidc.circleci.com/org-id")),
        };
        let context_ids = match self.0.get("oidc.circleci.com/context-ids") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) if ids.len() <= 64 => ids
                .iter()
                .map(|id| match id {
                    Value::String(s) if s.len() <= MAX_CLAIM_LEN => Ok(s.clone()),
                    _ => Err(Refusal::InvalidClaim("oidc.circleci.com/context-ids")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(Refusal::InvalidClaim("oidc.circleci.com/context-ids")),
        };
        let ssh_rerun = match self.0.get("oidc.circleci.com/ssh-rerun") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Refusal::InvalidClaim("oidc.circleci.com/ssh-rerun")),
        };
        Ok(CircleCiClaims {
            org_id,
            project_id: self.required("oidc.circleci.com/project-id")?,
            pipeline_definition_id: self.required("oidc.circleci.com/pipeline-definition-id")?,
            vcs_origin: self.optional("oidc.circleci.com/vcs-origin")?,
            vcs_ref: self.optional("oidc.circleci.com/vcs-ref")?,
            context_ids,
            pipeline_id: self.optional("oidc.circleci.com/pipeline-id")?,
            workflow_id: self.optional("oidc.circleci.com/workflow-id")?,
            job_id: self.optional("oidc.circleci.com/job-id")?,
            ssh_rerun,
        })
    }
}
