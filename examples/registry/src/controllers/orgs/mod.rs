//! Organisations and teams, as npm's `npm org`, `npm team` and `npm access grant|revoke`
//! reach them, and the registry's own call that makes an organisation.
//!
//! An organisation's name is a scope: `@acme/*` belongs to the organisation `acme`. Owners
//! manage members and roles; admins manage teams, their members and their packages;
//! developers are members. Every change is one write of the organisation's record (a 409
//! when it changed meanwhile), asks for the caller's one-time password when they have 2FA,
//! and tells the token manager whose rights changed, so that their tokens lose what they
//! lost on the next request, without being revoked.

pub mod members;
pub mod organisation;
pub mod rights;
pub mod teams;

use axum::http::StatusCode;
use tokengate::{Authenticated, Permission, ResourcePattern, SecondFactor, TokenKind};

use crate::controllers::packages::PackageName;
use crate::db::{Org, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// The resource a token's `--orgs` grant names: `org:<name>`.
pub fn org_resource(org: &str) -> String {
    format!("org:{org}")
}

/// How much `who`'s token may do to `org`'s members and teams: a session (npm login) as
/// much as its owner; any other token only what an explicit `--orgs` grant on `org` gives,
/// whatever its package grants.
fn token_permission(who: &Authenticated, org: &str) -> Permission {
    if who.kind() == TokenKind::Session {
        return Permission::ReadWrite;
    }
    let resource = org_resource(org);
    who.grants()
        .iter()
        .filter(|grant| matches!(&grant.pattern, ResourcePattern::Exact(name) if *name == resource))
        .map(|grant| grant.permission)
        .max()
        .unwrap_or(Permission::NoAccess)
}

/// Whether `who`'s token may read `org` (were its owner a member): a session, or a token
/// with an `--orgs` grant on it; never one from trusted publishing. For pages that list
/// the owner's organisations.
pub fn token_may_read(who: &Authenticated, org: &str) -> bool {
    who.kind() != TokenKind::Exchanged && token_permission(who, org) >= Permission::ReadOnly
}

/// Whether `who`'s token may read (`needs` read-only) or change `org`. Asked once `who` is
/// known to be a member: to anyone else the organisation does not exist.
fn check_token(who: &Authenticated, org: &str, needs: Permission) -> Result<(), ApiError> {
    crate::controllers::tokens::refuse_exchanged(who, "manage an organisation")?;
    if needs == Permission::ReadWrite {
        refuse_bypassed(who)?;
    }
    if token_permission(who, org) < needs {
        return Err(ApiError::forbidden(format!(
            "this token cannot {} the organisation {org}: create one with `--orgs {org} \
             --orgs-permission {}`, or use a session (npm login)",
            if needs == Permission::ReadWrite {
                "manage"
            } else {
                "read"
            },
            needs
        )));
    }
    Ok(())
}

/// A 403 for a token that bypasses two-factor authentication: as on npm, it does no
/// account governance, and making or changing an organisation is.
pub fn refuse_bypassed(who: &Authenticated) -> Result<(), ApiError> {
    if who.second_factor() == SecondFactor::Bypassed {
        return Err(ApiError::forbidden(
            "a token that bypasses two-factor authentication cannot create or change \
             organisations, teams or their access: use a session (npm login) or a token \
             without --bypass-2fa",
        ));
    }
    Ok(())
}

/// The organisation, if `user` is a member; otherwise the same 404 as for one that does
/// not exist, so that its members and teams do not leak.
async fn as_member(state: &AppState, org: &str, user: &str) -> Result<(Org, Role), ApiError> {
    let found = state.db().org(org).await?;
    let role = found.as_ref().and_then(|found| found.role_of(user));
    match (found, role) {
        (Some(found), Some(role)) => Ok((found, role)),
        _ => Err(no_such_org(org)),
    }
}

pub fn no_such_org(org: &str) -> ApiError {
    ApiError::not_found(format!(
        "no organisation named {:?} (or you are not a member of it)",
        org.chars().take(64).collect::<String>()
    ))
}

/// `who` may read `org`: a member, through a token that may read it. Anyone else, signed
/// in or not, gets the 404 of an organisation that does not exist (on which npm's `npm
/// access list packages <user>` falls back to the user's packages).
pub async fn readable(
    state: &AppState,
    who: Option<Authenticated>,
    org: &str,
) -> Result<Org, ApiError> {
    let who = who.ok_or_else(|| no_such_org(org))?;
    let (found, _) = as_member(state, org, who.owner()).await?;
    check_token(&who, org, Permission::ReadOnly)?;
    Ok(found)
}

/// `who`, a member of `org` with at least `needs`, whose token may change it, with their
/// second factor checked against `code`: the organisation as read, and their role.
pub async fn may_change(
    state: &AppState,
    who: Option<Authenticated>,
    code: Option<&str>,
    org: &str,
    needs: Role,
) -> Result<(Org, Role, Authenticated), ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let (current, role) = allowed(state, &who, org, needs).await?;
    crate::tfa::verify_owners_code(state, &who, code, None).await?;
    Ok((current, role, who))
}

/// `who`, a member of `org` with at least `needs`, whose token may change it (the second
/// factor not yet asked): the organisation as read, and their role. Asked before anything
/// else about the change, so that nobody else learns what `org` or its scope holds.
pub async fn allowed(
    state: &AppState,
    who: &Authenticated,
    org: &str,
    needs: Role,
) -> Result<(Org, Role), ApiError> {
    let (current, role) = as_member(state, org, who.owner()).await?;
    check_token(who, org, Permission::ReadWrite)?;
    if role < needs {
        return Err(ApiError::forbidden(format!(
            "only an organisation's {}s{} may do this, and you are {} {} of {org}",
            needs.as_str(),
            if needs == Role::Admin {
                " and owners"
            } else {
                ""
            },
            if role == Role::Admin { "an" } else { "a" },
            role.as_str()
        )));
    }
    Ok((current, role))
}

/// Applies `edit` to `org` for `who` (see [`may_change`]), writes it, and tells the token
/// manager about everyone whose rights it may have changed. `edit` sees the caller's role.
pub async fn change<F>(
    state: &AppState,
    who: Option<Authenticated>,
    code: Option<&str>,
    org: &str,
    needs: Role,
    edit: F,
) -> Result<Org, ApiError>
where
    F: Fn(&mut Org, Role) -> Result<(), ApiError>,
{
    let (mut current, role, who) = may_change(state, who, code, org, needs).await?;
    let before = current.clone();
    edit(&mut current, role)?;
    let departed = members::departed(&before, &current);
    if departed.is_empty() {
        state.db().put_org(&current).await?;
    } else {
        // Their packages are listed while they are still members; under the write lock,
        // as publishes are, so none of theirs starts in between.
        let _writing = state.write_lock().await;
        let theirs = members::org_packages_of(state, org, &departed).await?;
        state.db().put_org(&current).await?;
        members::drop_from_maintainers(state, theirs, &departed, who.owner()).await;
    }
    rights_changed(state, &before, &current).await;
    tracing::info!(org, user = who.owner(), "organisation changed");
    Ok(current)
}

/// Tells the token manager (and, with PostgreSQL, every node) that the members of
/// `before` and `after` may have other rights now.
pub async fn rights_changed(state: &AppState, before: &Org, after: &Org) {
    tell(
        state,
        before
            .members
            .keys()
            .chain(after.members.keys())
            .cloned()
            .collect(),
    )
    .await;
}

/// Tells the token manager that each of `people` may have other rights now.
pub async fn tell(state: &AppState, mut people: Vec<String>) {
    people.sort();
    people.dedup();
    for person in &people {
        if let Err(error) = state.tokens().owner_rights_changed(person).await {
            // Tried a few times already. This node's answers are dropped; the others keep
            // theirs until the token cache's TTL (60 s) ends them.
            tracing::error!(
                %error,
                user = %person,
                "could not tell the other nodes of a rights change: they apply it within 60 s"
            );
        }
    }
}

/// Tells the token manager that the rights of `users` on the package `name` may have
/// changed (its maintainers or visibility did), and those of its organisation's members
/// when it is one's: only they can have a refusal cached about it.
pub async fn package_rights_changed(state: &AppState, name: &PackageName, users: &[&str]) {
    let mut people: Vec<String> = users.iter().map(|user| (*user).to_owned()).collect();
    if let Some(scope) = name.scope() {
        match state.db().org(scope).await {
            Ok(Some(org)) => people.extend(org.members.into_keys()),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, package = %name, "could not read the organisation");
            }
        }
    }
    tell(state, people).await;
}

/// A user named `name`, to be put into `org` by `who`, who must be allowed to (at least
/// `needs`) before the name is looked up: nobody else learns whether such a user exists.
/// A 400 naming the field when there is no such user.
pub async fn existing_user(
    state: &AppState,
    who: Option<&Authenticated>,
    org: &str,
    needs: Role,
    name: &str,
) -> Result<String, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    allowed(state, who, org, needs).await?;
    let bare = name.strip_prefix('@').unwrap_or(name);
    match crate::controllers::users::load(state, bare).await? {
        Some(user) => Ok(user.name),
        None => Err(ApiError::bad_request(format!(
            "no user named {:?}",
            bare.chars().take(64).collect::<String>()
        ))),
    }
}

/// A package of `org`'s scope, as a team's access names it.
fn org_package(org: &str, package: &str) -> Result<PackageName, ApiError> {
    let name = PackageName::parse(package)?;
    if name.scope() != Some(org) {
        return Err(ApiError::bad_request(format!(
            "{name} is not a package of the organisation {org}: only @{org}/ packages can be \
             given to its teams"
        )));
    }
    Ok(name)
}

/// A 201 for something made.
fn created<T: axum::response::IntoResponse>(body: T) -> (StatusCode, T) {
    (StatusCode::CREATED, body)
}
