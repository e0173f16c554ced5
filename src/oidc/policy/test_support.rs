//! Verified tokens for the policy tables, built directly (the verifier is tested apart).

use std::time::SystemTime;

use crate::oidc::claims::{
    CircleCiClaims, GitHubClaims, GitLabClaims, ProviderClaims, VerifiedIdToken,
};
use crate::oidc::issuer::IssuerUrl;

fn token(issuer: &str, claims: ProviderClaims) -> VerifiedIdToken {
    VerifiedIdToken {
        issuer: IssuerUrl::parse(issuer).unwrap(),
        subject: None,
        jti: "jti-1".into(),
        issued_at: SystemTime::UNIX_EPOCH,
        expires_at: SystemTime::UNIX_EPOCH,
        claims,
    }
}

pub(crate) fn github_token(edit: impl FnOnce(&mut GitHubClaims)) -> VerifiedIdToken {
    let mut c = GitHubClaims {
        repository: "acme/tool".into(),
        repository_id: "74".into(),
        repository_owner: Some("acme".into()),
        repository_owner_id: "65".into(),
        workflow_ref: "acme/tool/.github/workflows/release.yml@refs/heads/main".into(),
        job_workflow_ref: None,
        environment: None,
        event_name: "push".into(),
        git_ref: Some("refs/heads/main".into()),
        sha: "0123abcd".into(),
        run_id: "42".into(),
        run_attempt: Some("1".into()),
        actor: Some("octocat".into()),
        repository_visibility: Some("private".into()),
        runner_environment: Some("github-hosted".into()),
    };
    edit(&mut c);
    token(
        "https://token.actions.githubusercontent.com",
        ProviderClaims::GitHub(c),
    )
}

pub(crate) fn gitlab_token(edit: impl FnOnce(&mut GitLabClaims)) -> VerifiedIdToken {
    let mut c = GitLabClaims {
        project_path: "acme/tools/cli".into(),
        project_id: "20".into(),
        namespace_id: "72".into(),
        ci_config_ref_uri: "gitlab.com/acme/tools/cli//.gitlab-ci.yml@refs/heads/main".into(),
        environment: None,
        git_ref: Some("main".into()),
        sha: "714a629c".into(),
        pipeline_id: Some("574".into()),
        job_id: Some("302".into()),
        user_login: Some("sample-user".into()),
        project_visibility: Some("private".into()),
    };
    edit(&mut c);
    token("https://gitlab.com", ProviderClaims::GitLab(c))
}

pub(crate) const ORG: &str = "0f3a7c1e-5b7d-4c1e-9a2b-3c4d5e6f7a8b";
pub(crate) const PROJECT: &str = "1a2b3c4d-0000-4000-8000-000000000001";
pub(crate) const PIPELINE_DEF: &str = "1a2b3c4d-0000-4000-8000-000000000002";
pub(crate) const CONTEXT: &str = "1a2b3c4d-0000-4000-8000-000000000003";

pub(crate) fn circleci_token(edit: impl FnOnce(&mut CircleCiClaims)) -> VerifiedIdToken {
    let mut c = CircleCiClaims {
        org_id: ORG.into(),
        project_id: PROJECT.into(),
        pipeline_definition_id: PIPELINE_DEF.into(),
        vcs_origin: Some("github.com/acme/tool".into()),
        vcs_ref: Some("refs/heads/main".into()),
        context_ids: vec![CONTEXT.into()],
        pipeline_id: Some("p-1".into()),
        workflow_id: Some("w-1".into()),
        job_id: Some("j-1".into()),
        ssh_rerun: false,
    };
    edit(&mut c);
    token(
        &format!("https://oidc.circleci.com/org/{ORG}"),
        ProviderClaims::CircleCi(c),
    )
}
