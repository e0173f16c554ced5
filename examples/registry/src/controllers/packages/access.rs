//! Private packages: who may see a package and who may change it, in one place, and npm's
//! access endpoints (`npm access get|set status`, `list collaborators`, `list packages`).
//!
//! A public package is anyone's to read. A private one answers only to its maintainers and
//! the members of its organisation's teams with access to it, and only through tokens whose
//! grants allow the package; everyone else gets the same 404 as for a package that does not
//! exist, so that its existence does not leak. Team access is read from the database on
//! every request, so a member removed from a team loses it on the next one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokengate::{Action, Authenticated, Resource};

use crate::controllers::packages::PackageName;
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

use crate::db::{Access, OrgStanding, ReadRule, TeamAccess};
pub use crate::db::{PackageMfa, Visibility};

/// A package as stored: its packument and who may see it.
pub struct Package {
    pub packument: Value,
    pub visibility: Visibility,
    pub mfa: PackageMfa,
    /// What a write of this package names, so that a change made meanwhile (on any node)
    /// is not overwritten.
    pub revision: i64,
    /// The best access the reader it was loaded for has through its organisation's teams.
    pub reader_team: Option<TeamAccess>,
    /// Whether the reader it was loaded for maintains it: on the list and, in an
    /// organisation's scope, still a member of the organisation.
    pub reader_maintains: bool,
}

impl Package {
    /// A write of this package as read.
    pub fn replacing(&self) -> crate::db::PackageWrite {
        crate::db::PackageWrite::Replacing {
            revision: self.revision,
        }
    }

    /// The user names of its maintainers.
    pub fn maintainers(&self) -> Vec<&str> {
        maintainer_names(&self.packument)
    }

    /// The one rule for reads, shared by every route that can reveal a package; `who`
    /// is the reader it was [loaded](load) for.
    pub fn readable_by(&self, who: Option<&Authenticated>, name: &PackageName) -> bool {
        let member = self.reader_maintains || self.reader_team.is_some();
        visible(self.visibility, member, who, name)
    }

    /// Whether the reader it was loaded for may publish it: a maintainer, or in a team
    /// with read-write access.
    pub fn publishable_by_reader(&self) -> bool {
        self.reader_maintains || self.reader_team == Some(TeamAccess::ReadWrite)
    }
}

/// The read rule, decided from the index: the same as [`Package::readable_by`].
pub fn rule_allows(rule: ReadRule, who: Option<&Authenticated>, name: &PackageName) -> bool {
    let member = rule.reader_maintains || rule.reader_team.is_some();
    visible(rule.visibility, member, who, name)
}

/// Whether `who` may read a package of `visibility` that they maintain (or have team
/// access to) or not.
pub fn visible(
    visibility: Visibility,
    reader_maintains: bool,
    who: Option<&Authenticated>,
    name: &PackageName,
) -> bool {
    match visibility {
        Visibility::Public => true,
        Visibility::Private => who.is_some_and(|who| {
            reader_maintains && who.may(Action::Read, Some(&Resource::new(name.to_string())))
        }),
    }
}

pub fn maintainer_names(packument: &Value) -> Vec<&str> {
    packument["maintainers"]
        .as_array()
        .map(|all| all.iter().filter_map(|m| m["name"].as_str()).collect())
        .unwrap_or_default()
}

/// The stored package, with what `reader` may do through teams; `None` when there is none.
pub async fn load(
    state: &AppState,
    name: &PackageName,
    reader: Option<&str>,
) -> Result<Option<Package>, ApiError> {
    let Some(stored) = state.db().package(name).await? else {
        return Ok(None);
    };
    // Only an organisation's scoped packages have teams, and members.
    let standing = match reader {
        Some(reader) if name.is_scoped() => state.db().org_standing(name, reader).await?,
        _ => OrgStanding::NoOrganisation,
    };
    let reader_maintains = reader.is_some_and(|reader| {
        maintainer_names(&stored.packument).contains(&reader) && standing.keeps_maintainers()
    });
    Ok(Some(Package {
        packument: stored.packument,
        visibility: stored.access.visibility,
        mfa: stored.access.mfa,
        revision: stored.revision,
        reader_team: standing.team(),
        reader_maintains,
    }))
}

/// The package as `who` may see it: the same 404 for one that does not exist and for one
/// `who` may not read.
pub async fn readable(
    state: &AppState,
    who: Option<&Authenticated>,
    name: &PackageName,
) -> Result<Package, ApiError> {
    match load(state, name, who.map(Authenticated::owner)).await? {
        Some(package) if package.readable_by(who, name) => Ok(package),
        _ => Err(not_found(name)),
    }
}

pub fn not_found(name: &PackageName) -> ApiError {
    ApiError::not_found(format!("package {:?} not found", name.to_string()))
}

/// The package, for a change only its maintainers may make, through a token that may
/// write it: 404 when `who` may not even see it, 403 when they see it but may not change
/// it. Call it under the registry's write lock.
pub async fn changeable(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
) -> Result<Package, ApiError> {
    changeable_as(state, who, name, Outsiders::Forbidden).await
}

/// What [`changeable_as`] answers someone who may see a package but does not maintain it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outsiders {
    /// A 403 that says only its maintainers may change it (npm's routes: the CLI shows why).
    Forbidden,
    /// The same 404 as for a package that does not exist (the web's settings pages, which
    /// exist for maintainers only).
    NotFound,
}

/// [`changeable`], answering someone who does not maintain the package as `outsiders` says.
pub async fn changeable_as(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    outsiders: Outsiders,
) -> Result<Package, ApiError> {
    crate::controllers::tokens::refuse_exchanged(
        who,
        "change a package's owners, access, versions or trusted publishers",
    )?;
    maintained(state, who, name, outsiders).await
}

/// [`changeable`] for its dist-tags, which a token from trusted publishing may change too
/// (npm 12's `npm dist-tag` exchanges an ID token for one, as `npm publish` does).
pub async fn tags_changeable(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
) -> Result<Package, ApiError> {
    maintained(state, who, name, Outsiders::Forbidden).await
}

/// The package, if `who` maintains it and their token may write it.
async fn maintained(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    outsiders: Outsiders,
) -> Result<Package, ApiError> {
    let package = readable(state, Some(who), name).await?;
    if !package.reader_maintains {
        if outsiders == Outsiders::NotFound {
            return Err(not_found(name));
        }
        return Err(ApiError::forbidden(format!(
            "you are not a maintainer of {name}: only its maintainers may change it"
        )));
    }
    crate::controllers::packages::check_write(who, name)?;
    Ok(package)
}

/// Changes the rules of `package` as it was read (a 409 if it has changed since).
pub async fn save_access(
    state: &AppState,
    name: &PackageName,
    package: &Package,
    visibility: Visibility,
    mfa: PackageMfa,
) -> Result<(), ApiError> {
    Ok(state
        .db()
        .set_access(name, Access { visibility, mfa }, package.revision)
        .await?)
}

/// `GET /-/package/<name>/visibility`: `npm access get status`.
pub async fn get_visibility(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let name = PackageName::parse(&name)?;
    let package = readable(&state, who.as_ref(), &name).await?;
    Ok(Json(
        json!({ "public": package.visibility == Visibility::Public }),
    ))
}

/// What `npm access set` sends: a visibility, or the package's 2FA rule.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessChange {
    access: Option<String>,
    publish_requires_tfa: Option<bool>,
    automation_token_overrides_tfa: Option<bool>,
}

/// `POST /-/package/<name>/access`: `npm access set status=public|private` and
/// `npm access set mfa=none|publish|automation`.
pub async fn set_access(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(name): Path<String>,
    JsonBody(change): JsonBody<AccessChange>,
) -> Result<impl IntoResponse, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let name = PackageName::parse(&name)?;
    let _writing = state.write_lock().await;
    let package = changeable(&state, &who, &name).await?;
    let mfa = match (
        change.publish_requires_tfa,
        change.automation_token_overrides_tfa,
    ) {
        (None, None) => package.mfa,
        (Some(false), None | Some(false)) => PackageMfa::None,
        (Some(true), None | Some(false)) => PackageMfa::Publish,
        (Some(true), Some(true)) => PackageMfa::Automation,
        _ => {
            return Err(ApiError::bad_request(
                "automation_token_overrides_tfa goes with publish_requires_tfa: true",
            ));
        }
    };
    if mfa != PackageMfa::None && mfa != package.mfa {
        let user = crate::controllers::users::load(&state, who.owner()).await?;
        if !user.is_some_and(|user| user.tfa.as_ref().is_some_and(crate::tfa::Tfa::active)) {
            return Err(ApiError::bad_request(
                "enable two-factor authentication on your account first (npm profile \
                 enable-2fa): a package that asks for codes needs maintainers who have them",
            ));
        }
    }
    let visibility = match change.access.as_deref() {
        None => package.visibility,
        Some("public") => Visibility::Public,
        Some("restricted" | "private") if name.is_scoped() => Visibility::Private,
        Some("restricted" | "private") => {
            return Err(ApiError::bad_request(format!(
                "{name} is not scoped: only scoped packages can be private"
            )));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "access {:?} is not supported: use public or restricted",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    save_access(&state, &name, &package, visibility, mfa).await?;
    crate::controllers::orgs::package_rights_changed(&state, &name, &[]).await;
    tracing::info!(package = %name, user = who.owner(), ?visibility, ?mfa, "access changed");
    Ok(StatusCode::OK)
}

/// `GET /-/package/<name>/collaborators`: `npm access list collaborators`.
pub async fn collaborators(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let name = PackageName::parse(&name)?;
    let package = readable(&state, who.as_ref(), &name).await?;
    let mut collaborators = Map::new();
    let org = match name.scope() {
        Some(scope) => state.db().org(scope).await?,
        None => None,
    };
    // Its organisation's members with access through a team, then its maintainers (in an
    // organisation's scope, those who are still members).
    if let Some(org) = &org {
        for (package, user, access) in org.access_rows() {
            if package == name.to_string() {
                collaborators.insert(user, json!(access.as_str()));
            }
        }
    }
    let maintains = |user: &str| org.as_ref().is_none_or(|org| org.role_of(user).is_some());
    for user in package
        .maintainers()
        .into_iter()
        .filter(|user| maintains(user))
    {
        collaborators.insert(user.to_owned(), json!("read-write"));
    }
    Ok(Json(collaborators))
}

/// `GET /-/user/<user>/package`: `npm access list packages [<user>]`, the packages `user`
/// maintains that the one asking may see.
pub async fn user_packages(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path(user): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let mut packages = Map::new();
    for maintained in state.db().maintained_by(&user).await? {
        let Ok(name) = PackageName::parse(&maintained.name) else {
            continue;
        };
        let readable = match maintained.visibility {
            Visibility::Public => true,
            Visibility::Private => match who.as_ref() {
                Some(who) => {
                    let rule = state.db().read_rule(&name, Some(who.owner())).await?;
                    rule.is_some_and(|rule| rule_allows(rule, Some(who), &name))
                }
                None => false,
            },
        };
        if readable {
            packages.insert(name.to_string(), json!("read-write"));
        }
    }
    Ok(Json(packages))
}
