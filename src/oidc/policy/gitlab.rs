//! GitLab CI/CD: project path, CI configuration file, optional environment, pinned ids.

use super::{InvalidPolicy, Pin, PolicyMismatch, TrustedActions, check_environment, check_id};
use crate::oidc::claims::GitLabClaims;

/// A GitLab CI/CD pipeline as a trusted publisher (`npm trust gitlab --project
/// group/project --file .gitlab-ci.yml [--env prod]`).
///
/// Matches a token whose `project_path` is the project (ignoring ASCII case, as GitLab
/// does), whose `ci_config_ref_uri` is `<host>/<project path>//<file>@<ref>` with the
/// issuer's host, the same project and this file (so a pipeline defined in another
/// project does not match), and, when the policy names an environment, whose
/// `environment` is that one. Once ids are [`pinned`](Self::pinned), the token's
/// `project_id` and `namespace_id` must be those.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitLabPolicy {
    project_path: String,
    config_file: String,
    environment: Option<String>,
    project_id: Option<String>,
    namespace_id: Option<String>,
    allows: TrustedActions,
}

impl GitLabPolicy {
    /// The pipeline defined by `config_file` (its path in the repository, such as
    /// `.gitlab-ci.yml`, compared exactly; npm's CLI sends a file name only, which
    /// matches a configuration at the repository's root) of `project_path`
    /// (`group[/subgroup…]/project`), allowed to publish.
    pub fn new(
        project_path: impl Into<String>,
        config_file: impl Into<String>,
    ) -> Result<Self, InvalidPolicy> {
        let project_path = project_path.into();
        let config_file = config_file.into();
        check_project_path(&project_path)?;
        check_config_file(&config_file)?;
        Ok(Self {
            project_path,
            config_file,
            environment: None,
            project_id: None,
            namespace_id: None,
            allows: TrustedActions::PUBLISH,
        })
    }

    /// Only jobs in this deployment environment (compared exactly).
    pub fn environment(mut self, environment: impl Into<String>) -> Result<Self, InvalidPolicy> {
        let environment = environment.into();
        check_environment(&environment)?;
        self.environment = Some(environment);
        Ok(self)
    }

    /// The ids seen at the first exchange ([`Pin::GitLab`]).
    pub fn pinned(
        mut self,
        project_id: impl Into<String>,
        namespace_id: impl Into<String>,
    ) -> Result<Self, InvalidPolicy> {
        let project_id = project_id.into();
        let namespace_id = namespace_id.into();
        check_id(&project_id)?;
        check_id(&namespace_id)?;
        self.project_id = Some(project_id);
        self.namespace_id = Some(namespace_id);
        Ok(self)
    }

    /// What it allows (default: publish).
    pub fn allow(mut self, actions: TrustedActions) -> Self {
        self.allows = actions;
        self
    }

    /// The project path.
    pub fn project_path(&self) -> &str {
        &self.project_path
    }

    /// The CI configuration file's path.
    pub fn config_file(&self) -> &str {
        &self.config_file
    }

    /// The environment required, if any.
    pub fn environment_name(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// The pinned project id.
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// The pinned namespace id.
    pub fn namespace_id(&self) -> Option<&str> {
        self.namespace_id.as_deref()
    }

    /// What it allows.
    pub fn allows(&self) -> TrustedActions {
        self.allows
    }

    pub(super) fn check(
        &self,
        issuer: &str,
        c: &GitLabClaims,
    ) -> Result<Option<Pin>, PolicyMismatch> {
        if !c.project_path.eq_ignore_ascii_case(&self.project_path) {
            return Err(PolicyMismatch::Project {
                expected: self.project_path.clone(),
                found: c.project_path.clone(),
            });
        }
        for (what, pinned, found) in [
            ("namespace", &self.namespace_id, &c.namespace_id),
            ("project", &self.project_id, &c.project_id),
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
        let host = issuer
            .split_once("://")
            .map_or(issuer, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default();
        let config_matches = c
            .ci_config_ref_uri
            .split_once('/')
            .filter(|(uri_host, _)| uri_host.eq_ignore_ascii_case(host))
            .and_then(|(_, rest)| rest.strip_prefix(c.project_path.as_str()))
            .and_then(|rest| rest.strip_prefix("//"))
            .and_then(|rest| rest.strip_prefix(self.config_file.as_str()))
            .and_then(|rest| rest.strip_prefix('@'))
            .is_some_and(|git_ref| !git_ref.is_empty());
        if !config_matches {
            return Err(PolicyMismatch::ConfigFile {
                expected: self.config_file.clone(),
                found: c.ci_config_ref_uri.clone(),
            });
        }
        if let Some(expected) = &self.environment
            && c.environment.as_ref() != Some(expected)
        {
            return Err(PolicyMismatch::Environment {
                expected: expected.clone(),
                found: c.environment.clone(),
            });
        }
        let pinned = self.project_id.is_some() && self.namespace_id.is_some();
        Ok((!pinned).then(|| Pin::GitLab {
            project_id: c.project_id.clone(),
            namespace_id: c.namespace_id.clone(),
        }))
    }
}

fn check_project_path(path: &str) -> Result<(), InvalidPolicy> {
    let segments: Vec<&str> = path.split('/').collect();
    let ok = path.len() <= 255
        && segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && !s.starts_with(['-', '.'])
        });
    if ok {
        Ok(())
    } else {
        Err(InvalidPolicy::ProjectPath)
    }
}

fn check_config_file(file: &str) -> Result<(), InvalidPolicy> {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base
        .strip_suffix(".yml")
        .or_else(|| base.strip_suffix(".yaml"));
    let ok = file.len() <= 255
        && stem.is_some_and(|s| !s.is_empty())
        && !file.starts_with('/')
        && !file.contains("//")
        && !file.contains('@')
        && !file.split('/').any(|s| s == "..")
        && !file.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(InvalidPolicy::ConfigFile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::policy::TrustPolicy;
    use crate::oidc::policy::test_support::gitlab_token;

    fn policy() -> GitLabPolicy {
        GitLabPolicy::new("acme/tools/cli", ".gitlab-ci.yml").unwrap()
    }

    #[test]
    fn policies_are_checked_when_made() {
        let table: &[(&str, &str, Result<(), InvalidPolicy>)] = &[
            ("acme/cli", ".gitlab-ci.yml", Ok(())),
            ("acme/tools/cli", "ci/release.yaml", Ok(())),
            ("acme", ".gitlab-ci.yml", Err(InvalidPolicy::ProjectPath)),
            (
                "acme//cli",
                ".gitlab-ci.yml",
                Err(InvalidPolicy::ProjectPath),
            ),
            ("acme/cli", "/abs.yml", Err(InvalidPolicy::ConfigFile)),
            ("acme/cli", "../up.yml", Err(InvalidPolicy::ConfigFile)),
            ("acme/cli", "ci.txt", Err(InvalidPolicy::ConfigFile)),
            ("acme/cli", "a@b.yml", Err(InvalidPolicy::ConfigFile)),
        ];
        for (path, file, expected) in table {
            assert_eq!(
                GitLabPolicy::new(*path, *file).map(|_| ()),
                *expected,
                "{path} {file}"
            );
        }
    }

    #[test]
    fn matching_table() {
        let pin = Some(Pin::GitLab {
            project_id: "20".into(),
            namespace_id: "72".into(),
        });
        let prod = || policy().environment("production").unwrap();
        let pinned = || policy().pinned("20", "72").unwrap();
        type Case = (
            &'static str,
            GitLabPolicy,
            fn(&mut GitLabClaims),
            Result<Option<Pin>, String>,
        );
        let cases: Vec<Case> = vec![
            ("the trusted pipeline; ids to pin", policy(), |_| {}, Ok(pin.clone())),
            ("project case ignored", policy(), |c| {
                c.project_path = "Acme/Tools/CLI".into();
                c.ci_config_ref_uri = "gitlab.com/Acme/Tools/CLI//.gitlab-ci.yml@refs/tags/v1".into();
            }, Ok(pin.clone())),
            ("pinned, the same ids", pinned(), |_| {}, Ok(None)),
            ("another project", policy(), |c| c.project_path = "acme/other".into(),
                Err("project acme/other does not match this package's trusted publisher (acme/tools/cli)".into())),
            ("another config file", policy(), |c| {
                c.ci_config_ref_uri = "gitlab.com/acme/tools/cli//deploy.yml@refs/heads/main".into();
            }, Err("CI configuration gitlab.com/acme/tools/cli//deploy.yml@refs/heads/main does not match this package's trusted publisher (.gitlab-ci.yml)".into())),
            ("config from another project", policy(), |c| {
                c.ci_config_ref_uri = "gitlab.com/evil/x//.gitlab-ci.yml@refs/heads/main".into();
            }, Err("CI configuration gitlab.com/evil/x//.gitlab-ci.yml@refs/heads/main does not match this package's trusted publisher (.gitlab-ci.yml)".into())),
            ("config on another instance", policy(), |c| {
                c.ci_config_ref_uri = "gitlab.evil.example/acme/tools/cli//.gitlab-ci.yml@refs/heads/main".into();
            }, Err("CI configuration gitlab.evil.example/acme/tools/cli//.gitlab-ci.yml@refs/heads/main does not match this package's trusted publisher (.gitlab-ci.yml)".into())),
            ("a longer path with the same start", policy(), |c| {
                c.ci_config_ref_uri = "gitlab.com/acme/tools/cli//.gitlab-ci.yml.x.yml@refs/heads/main".into();
            }, Err("CI configuration gitlab.com/acme/tools/cli//.gitlab-ci.yml.x.yml@refs/heads/main does not match this package's trusted publisher (.gitlab-ci.yml)".into())),
            ("environment required, none", prod(), |_| {},
                Err("a job without an environment does not match this package's trusted publisher (environment production)".into())),
            ("environment required, another", prod(), |c| c.environment = Some("review".into()),
                Err("environment review does not match this package's trusted publisher (environment production)".into())),
            ("environment required, the same", prod(), |c| c.environment = Some("production".into()), Ok(pin.clone())),
            ("re-created project", pinned(), |c| c.project_id = "21".into(),
                Err("project id 21 does not match the id pinned on this package's trusted publisher (20); if it was re-created, add the trusted publisher again".into())),
            ("re-created namespace", pinned(), |c| c.namespace_id = "73".into(),
                Err("namespace id 73 does not match the id pinned on this package's trusted publisher (72); if it was re-created, add the trusted publisher again".into())),
        ];
        for (name, policy, edit, expected) in cases {
            let got = TrustPolicy::GitLab(policy)
                .matches(&gitlab_token(edit))
                .map(|m| m.pin)
                .map_err(|e| e.to_string());
            assert_eq!(got, expected, "{name}");
        }
    }
}
