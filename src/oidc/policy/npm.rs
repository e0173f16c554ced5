//! Policies in npm's wire shape: `npm trust github|gitlab|circleci` sends
//! `{"type", "claims", "permissions"}` and `npm trust list` reads the same back.

use serde_json::{Map, Value, json};

use super::{
    CircleCiPolicy, GitHubPolicy, GitLabPolicy, InvalidPolicy, TrustPolicy, TrustedActions,
};

const ORG_ID: &str = "oidc.circleci.com/org-id";
const PROJECT_ID: &str = "oidc.circleci.com/project-id";
const PIPELINE_DEFINITION_ID: &str = "oidc.circleci.com/pipeline-definition-id";
const VCS_ORIGIN: &str = "oidc.circleci.com/vcs-origin";
const CONTEXT_IDS: &str = "oidc.circleci.com/context-ids";

impl TrustPolicy {
    /// A policy from one element of the array `npm trust` sends to `POST
    /// /-/package/<pkg>/trust`, for example `{"type": "github", "claims": {"repository":
    /// "acme/tool", "workflow_ref": {"file": "release.yml"}, "environment": "prod"},
    /// "permissions": ["createPackage"]}`. At least one permission is required, as npm
    /// requires one. An `id` (which `npm trust list` shows) is ignored; any other field,
    /// or a claim this provider's policy does not check, is refused
    /// ([`InvalidPolicy::UnknownField`]) rather than ignored, since a condition dropped
    /// silently would let more workflows publish than its author meant. Pinned ids are
    /// not part of npm's shape: the application keeps them beside the policy.
    pub fn from_npm(value: &Value) -> Result<Self, InvalidPolicy> {
        let object = value
            .as_object()
            .ok_or(InvalidPolicy::Npm("not an object"))?;
        only_fields(object, &["id", "type", "claims", "permissions"])?;
        let claims = object
            .get("claims")
            .and_then(Value::as_object)
            .ok_or(InvalidPolicy::Npm("no claims object"))?;
        let known: &[&str] = match object.get("type").and_then(Value::as_str) {
            Some("github") => &["repository", "workflow_ref", "environment"],
            Some("gitlab") => &["project_path", "ci_config_ref_uri", "environment"],
            Some("circleci") => &[
                ORG_ID,
                PROJECT_ID,
                PIPELINE_DEFINITION_ID,
                VCS_ORIGIN,
                CONTEXT_IDS,
            ],
            _ => &[],
        };
        only_fields(claims, known)?;
        let permissions = object
            .get("permissions")
            .and_then(Value::as_array)
            .ok_or(InvalidPolicy::Npm("no permissions array"))?;
        let names = permissions
            .iter()
            .map(|p| {
                p.as_str()
                    .ok_or(InvalidPolicy::Npm("a permission is not a string"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let allows = TrustedActions::from_npm_names(names)
            .map_err(|_| InvalidPolicy::Npm("an unknown permission"))?;
        if allows.is_empty() {
            return Err(InvalidPolicy::Npm("no permission"));
        }
        let policy = match object.get("type").and_then(Value::as_str) {
            Some("github") => {
                let mut p =
                    GitHubPolicy::new(text(claims, "repository")?, file(claims, "workflow_ref")?)?;
                if let Some(env) = optional_text(claims, "environment")? {
                    p = p.environment(env)?;
                }
                TrustPolicy::GitHub(p.allow(allows))
            }
            Some("gitlab") => {
                let mut p = GitLabPolicy::new(
                    text(claims, "project_path")?,
                    file(claims, "ci_config_ref_uri")?,
                )?;
                if let Some(env) = optional_text(claims, "environment")? {
                    p = p.environment(env)?;
                }
                TrustPolicy::GitLab(p.allow(allows))
            }
            Some("circleci") => {
                let mut p = CircleCiPolicy::new(
                    text(claims, ORG_ID)?,
                    text(claims, PROJECT_ID)?,
                    text(claims, PIPELINE_DEFINITION_ID)?,
                )?;
                if let Some(origin) = optional_text(claims, VCS_ORIGIN)? {
                    p = p.vcs_origin(origin)?;
                }
                match claims.get(CONTEXT_IDS) {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(ids)) if ids.len() <= 64 => {
                        for id in ids {
                            let id = id
                                .as_str()
                                .ok_or(InvalidPolicy::Npm("a context id is not a string"))?;
                            p = p.context(id)?;
                        }
                    }
                    Some(_) => return Err(InvalidPolicy::Npm("context ids are not an array")),
                }
                TrustPolicy::CircleCi(p.allow(allows))
            }
            _ => return Err(InvalidPolicy::Npm("type is not github, gitlab or circleci")),
        };
        Ok(policy)
    }

    /// The policy in npm's shape (what `npm trust list` shows), without an `id`: the
    /// application adds the one it keeps the policy under.
    pub fn to_npm(&self) -> Value {
        let (kind, claims) = match self {
            TrustPolicy::GitHub(p) => {
                let mut claims = json!({
                    "repository": p.repository(),
                    "workflow_ref": { "file": p.workflow_file() },
                });
                if let Some(env) = p.environment_name() {
                    claims["environment"] = json!(env);
                }
                ("github", claims)
            }
            TrustPolicy::GitLab(p) => {
                let mut claims = json!({
                    "project_path": p.project_path(),
                    "ci_config_ref_uri": { "file": p.config_file() },
                });
                if let Some(env) = p.environment_name() {
                    claims["environment"] = json!(env);
                }
                ("gitlab", claims)
            }
            TrustPolicy::CircleCi(p) => {
                let mut claims = json!({
                    ORG_ID: p.org_id(),
                    PROJECT_ID: p.project_id(),
                    PIPELINE_DEFINITION_ID: p.pipeline_definition_id(),
                });
                if let Some(origin) = p.vcs_origin_name() {
                    claims[VCS_ORIGIN] = json!(origin);
                }
                if !p.context_ids().is_empty() {
                    claims[CONTEXT_IDS] = json!(p.context_ids());
                }
                ("circleci", claims)
            }
        };
        json!({ "type": kind, "claims": claims, "permissions": self.allows().npm_names() })
    }
}

fn text<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, InvalidPolicy> {
    optional_text(claims, name)?.ok_or(InvalidPolicy::Npm("a required claim is missing"))
}

fn optional_text<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, InvalidPolicy> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(InvalidPolicy::Npm("a claim is not a string")),
    }
}

/// Refuses a field of `object` not in `known`.
fn only_fields(object: &Map<String, Value>, known: &[&str]) -> Result<(), InvalidPolicy> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(unknown) => Err(InvalidPolicy::UnknownField(
            unknown.chars().take(64).collect(),
        )),
        None => Ok(()),
    }
}

/// `{"file": "…"}`, as npm sends the workflow and the CI configuration.
fn file<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, InvalidPolicy> {
    if let Some(Value::Object(reference)) = claims.get(name) {
        only_fields(reference, &["file"])?;
    }
    claims
        .get(name)
        .and_then(|v| v.get("file"))
        .and_then(Value::as_str)
        .ok_or(InvalidPolicy::Npm(
            "no {\"file\": …} for the workflow or CI configuration",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::policy::test_support::{CONTEXT, ORG, PIPELINE_DEF, PROJECT};

    #[test]
    fn npm_trust_bodies_round_trip() {
        // What `npm trust github|gitlab|circleci … --allow-publish [--allow-stage-publish]`
        // sends (lib/commands/trust/*.js, optionsToBody, plus permissions).
        let bodies = [
            json!({ "type": "github", "claims": { "repository": "acme/tool",
                "workflow_ref": { "file": "release.yml" }, "environment": "prod" },
                "permissions": ["createPackage"] }),
            json!({ "type": "gitlab", "claims": { "project_path": "acme/cli",
                "ci_config_ref_uri": { "file": ".gitlab-ci.yml" } },
                "permissions": ["createPackage", "createStagedPackage"] }),
            json!({ "type": "circleci", "claims": { ORG_ID: ORG, PROJECT_ID: PROJECT,
                PIPELINE_DEFINITION_ID: PIPELINE_DEF, VCS_ORIGIN: "github.com/acme/tool",
                CONTEXT_IDS: [CONTEXT] }, "permissions": ["createStagedPackage"] }),
        ];
        for body in bodies {
            let policy = TrustPolicy::from_npm(&body).unwrap();
            assert_eq!(policy.to_npm(), body);
        }
        let github = TrustPolicy::from_npm(&json!({ "id": "x", "type": "github",
            "claims": { "repository": "acme/tool", "workflow_ref": { "file": "release.yml" } },
            "permissions": ["createPackage"] }))
        .unwrap();
        let TrustPolicy::GitHub(p) = github else {
            panic!("a GitHub policy")
        };
        assert_eq!(
            (p.repository(), p.workflow_file(), p.environment_name()),
            ("acme/tool", "release.yml", None)
        );
    }

    #[test]
    fn bodies_npm_would_not_send_are_refused() {
        let github = |claims: Value, permissions: Value| {
            TrustPolicy::from_npm(
                &json!({ "type": "github", "claims": claims, "permissions": permissions }),
            )
        };
        let good = json!({ "repository": "acme/tool", "workflow_ref": { "file": "release.yml" } });
        let table = [
            (
                "no permission",
                github(good.clone(), json!([])),
                InvalidPolicy::Npm("no permission"),
            ),
            (
                "unknown permission",
                github(good.clone(), json!(["admin"])),
                InvalidPolicy::Npm("an unknown permission"),
            ),
            (
                "no permissions",
                TrustPolicy::from_npm(&json!({ "type": "github", "claims": good })),
                InvalidPolicy::Npm("no permissions array"),
            ),
            (
                "file as a string",
                github(
                    json!({ "repository": "acme/tool", "workflow_ref": "release.yml" }),
                    json!(["createPackage"]),
                ),
                InvalidPolicy::Npm("no {\"file\": …} for the workflow or CI configuration"),
            ),
            (
                "a path for a workflow",
                github(
                    json!({ "repository": "acme/tool", "workflow_ref": { "file": "x/release.yml" } }),
                    json!(["createPackage"]),
                ),
                InvalidPolicy::WorkflowFile,
            ),
            (
                "bad repository",
                github(
                    json!({ "repository": "acme", "workflow_ref": { "file": "release.yml" } }),
                    json!(["createPackage"]),
                ),
                InvalidPolicy::Repository,
            ),
            (
                "unknown type",
                TrustPolicy::from_npm(
                    &json!({ "type": "jenkins", "claims": {}, "permissions": ["createPackage"] }),
                ),
                InvalidPolicy::Npm("type is not github, gitlab or circleci"),
            ),
            (
                "not an object",
                TrustPolicy::from_npm(&json!([])),
                InvalidPolicy::Npm("not an object"),
            ),
            (
                "a condition this policy does not check",
                github(
                    json!({ "repository": "acme/tool", "workflow_ref": { "file": "release.yml" },
                        "ref": "refs/heads/main" }),
                    json!(["createPackage"]),
                ),
                InvalidPolicy::UnknownField("ref".into()),
            ),
            (
                "a condition on the workflow this policy does not check",
                github(
                    json!({ "repository": "acme/tool",
                        "workflow_ref": { "file": "release.yml", "ref": "refs/heads/main" } }),
                    json!(["createPackage"]),
                ),
                InvalidPolicy::UnknownField("ref".into()),
            ),
            (
                "another provider's claim",
                github(
                    json!({ "repository": "acme/tool", "workflow_ref": { "file": "release.yml" },
                        "project_path": "acme/tool" }),
                    json!(["createPackage"]),
                ),
                InvalidPolicy::UnknownField("project_path".into()),
            ),
            (
                "a field beside the policy",
                TrustPolicy::from_npm(&json!({ "type": "github", "claims": good,
                    "permissions": ["createPackage"], "expires": "2027-01-01" })),
                InvalidPolicy::UnknownField("expires".into()),
            ),
        ];
        for (name, got, expected) in table {
            assert_eq!(got.unwrap_err(), expected, "{name}");
        }
    }
}
