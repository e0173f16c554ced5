//! CircleCI: organisation, project, pipeline definition, optional VCS origin and contexts.

use super::{InvalidPolicy, Pin, PolicyMismatch, TrustedActions};
use crate::oidc::claims::CircleCiClaims;
use crate::oidc::issuer::is_uuid;

/// A CircleCI pipeline definition as a trusted publisher (`npm trust circleci --org-id …
/// --project-id … --pipeline-definition-id … [--vcs-origin provider/owner/repo]
/// [--context-id …]`).
///
/// Matches a token whose `oidc.circleci.com/org-id`, `project-id` and
/// `pipeline-definition-id` are these (UUIDs, ignoring case); when the policy names a VCS
/// origin, whose `vcs-origin` is that one (ignoring ASCII case); and whose `context-ids`
/// include every context the policy names (a context can be limited to a security
/// group, as an environment can). A job rerun with SSH never matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircleCiPolicy {
    org_id: String,
    project_id: String,
    pipeline_definition_id: String,
    vcs_origin: Option<String>,
    context_ids: Vec<String>,
    allows: TrustedActions,
}

impl CircleCiPolicy {
    /// The pipeline definition `pipeline_definition_id` of project `project_id` in
    /// organisation `org_id` (all UUIDs), allowed to publish.
    pub fn new(
        org_id: impl Into<String>,
        project_id: impl Into<String>,
        pipeline_definition_id: impl Into<String>,
    ) -> Result<Self, InvalidPolicy> {
        let org_id = uuid(org_id.into(), "the organisation id")?;
        let project_id = uuid(project_id.into(), "the project id")?;
        let pipeline_definition_id =
            uuid(pipeline_definition_id.into(), "the pipeline definition id")?;
        Ok(Self {
            org_id,
            project_id,
            pipeline_definition_id,
            vcs_origin: None,
            context_ids: Vec::new(),
            allows: TrustedActions::PUBLISH,
        })
    }

    /// Only pipelines of this repository (`github.com/owner/repo`).
    pub fn vcs_origin(mut self, origin: impl Into<String>) -> Result<Self, InvalidPolicy> {
        let origin = origin.into();
        let parts: Vec<&str> = origin.split('/').collect();
        let ok = origin.len() <= 255
            && !origin.contains("://")
            && parts.len() >= 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && !p.contains(char::is_whitespace));
        if !ok {
            return Err(InvalidPolicy::VcsOrigin);
        }
        self.vcs_origin = Some(origin);
        Ok(self)
    }

    /// Only jobs that use this context (may be given several times: all are required).
    pub fn context(mut self, context_id: impl Into<String>) -> Result<Self, InvalidPolicy> {
        let id = uuid(context_id.into(), "a context id")?;
        if !self.context_ids.contains(&id) {
            self.context_ids.push(id);
        }
        Ok(self)
    }

    /// What it allows (default: publish).
    pub fn allow(mut self, actions: TrustedActions) -> Self {
        self.allows = actions;
        self
    }

    /// The organisation id (lower case).
    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    /// The project id (lower case).
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The pipeline definition id (lower case).
    pub fn pipeline_definition_id(&self) -> &str {
        &self.pipeline_definition_id
    }

    /// The VCS origin required, if any.
    pub fn vcs_origin_name(&self) -> Option<&str> {
        self.vcs_origin.as_deref()
    }

    /// The contexts required.
    pub fn context_ids(&self) -> &[String] {
        &self.context_ids
    }

    /// What it allows.
    pub fn allows(&self) -> TrustedActions {
        self.allows
    }

    pub(super) fn check(&self, c: &CircleCiClaims) -> Result<Option<Pin>, PolicyMismatch> {
        if c.ssh_rerun {
            return Err(PolicyMismatch::SshRerun);
        }
        if !c.org_id.eq_ignore_ascii_case(&self.org_id) {
            return Err(PolicyMismatch::Organisation {
                expected: self.org_id.clone(),
                found: c.org_id.clone(),
            });
        }
        if !c.project_id.eq_ignore_ascii_case(&self.project_id) {
            return Err(PolicyMismatch::CircleCiProject {
                expected: self.project_id.clone(),
                found: c.project_id.clone(),
            });
        }
        if !c
            .pipeline_definition_id
            .eq_ignore_ascii_case(&self.pipeline_definition_id)
        {
            return Err(PolicyMismatch::PipelineDefinition {
                expected: self.pipeline_definition_id.clone(),
                found: c.pipeline_definition_id.clone(),
            });
        }
        if let Some(expected) = &self.vcs_origin
            && !c
                .vcs_origin
                .as_deref()
                .is_some_and(|found| found.eq_ignore_ascii_case(expected))
        {
            return Err(PolicyMismatch::VcsOrigin {
                expected: expected.clone(),
                found: c.vcs_origin.clone(),
            });
        }
        for required in &self.context_ids {
            if !c
                .context_ids
                .iter()
                .any(|id| id.eq_ignore_ascii_case(required))
            {
                return Err(PolicyMismatch::Context(required.clone()));
            }
        }
        Ok(None)
    }
}

fn uuid(id: String, what: &'static str) -> Result<String, InvalidPolicy> {
    if is_uuid(&id) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(InvalidPolicy::Uuid(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::policy::TrustPolicy;
    use crate::oidc::policy::test_support::{CONTEXT, ORG, PIPELINE_DEF, PROJECT, circleci_token};

    fn policy() -> CircleCiPolicy {
        CircleCiPolicy::new(ORG, PROJECT, PIPELINE_DEF).unwrap()
    }

    #[test]
    fn policies_are_checked_when_made() {
        assert_eq!(
            CircleCiPolicy::new("org", PROJECT, PIPELINE_DEF).unwrap_err(),
            InvalidPolicy::Uuid("the organisation id")
        );
        assert_eq!(
            policy().context("x").unwrap_err(),
            InvalidPolicy::Uuid("a context id")
        );
        for bad in [
            "https://github.com/acme/tool",
            "github.com/acme",
            "github.com//tool",
        ] {
            assert_eq!(
                policy().vcs_origin(bad).unwrap_err(),
                InvalidPolicy::VcsOrigin,
                "{bad}"
            );
        }
        let upper = CircleCiPolicy::new(ORG.to_uppercase(), PROJECT, PIPELINE_DEF).unwrap();
        assert_eq!(upper.org_id(), ORG);
    }

    #[test]
    fn matching_table() {
        const OTHER: &str = "99999999-0000-4000-8000-000000000009";
        let with_origin = || policy().vcs_origin("github.com/acme/tool").unwrap();
        let with_context = || policy().context(CONTEXT).unwrap();
        type Case = (
            &'static str,
            CircleCiPolicy,
            fn(&mut CircleCiClaims),
            Result<(), String>,
        );
        let cases: Vec<Case> = vec![
            ("the trusted pipeline", policy(), |_| {}, Ok(())),
            ("ids compared ignoring case", policy(), |c| c.project_id = PROJECT.to_uppercase(), Ok(())),
            ("another organisation", policy(), |c| c.org_id = OTHER.into(),
                Err(format!("CircleCI organisation {OTHER} does not match this package's trusted publisher ({ORG})"))),
            ("another project", policy(), |c| c.project_id = OTHER.into(),
                Err(format!("CircleCI project {OTHER} does not match this package's trusted publisher ({PROJECT})"))),
            ("another pipeline definition", policy(), |c| c.pipeline_definition_id = OTHER.into(),
                Err(format!("pipeline definition {OTHER} does not match this package's trusted publisher ({PIPELINE_DEF})"))),
            ("origin required, the same", with_origin(), |c| c.vcs_origin = Some("GitHub.com/acme/tool".into()), Ok(())),
            ("origin required, another", with_origin(), |c| c.vcs_origin = Some("github.com/evil/tool".into()),
                Err("VCS origin github.com/evil/tool does not match this package's trusted publisher (github.com/acme/tool)".into())),
            ("origin required, none", with_origin(), |c| c.vcs_origin = None,
                Err("VCS origin (none) does not match this package's trusted publisher (github.com/acme/tool)".into())),
            ("context required, used", with_context(), |_| {}, Ok(())),
            ("context required, not used", with_context(), |c| c.context_ids = vec![OTHER.into()],
                Err(format!("the job does not use context {CONTEXT}, which this package's trusted publisher requires"))),
            ("ssh rerun", policy(), |c| c.ssh_rerun = true, Err("a CircleCI job rerun with SSH may not publish".into())),
        ];
        for (name, policy, edit, expected) in cases {
            let got = TrustPolicy::CircleCi(policy)
                .matches(&circleci_token(edit))
                .map(|m| assert_eq!(m.pin, None))
                .map_err(|e| e.to_string());
            assert_eq!(got, expected, "{name}");
        }
    }
}
