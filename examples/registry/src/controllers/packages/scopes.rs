//! Who owns a scope: the organisation whose name it is (any of its members starts packages
//! in it), the user whose name it is, or else the first user who published into it. Nobody
//! else may publish `@scope/…`.

use crate::controllers::users;
use crate::error::ApiError;
use crate::state::AppState;

/// The owner recorded when someone first published into `scope`.
pub async fn recorded_owner(state: &AppState, scope: &str) -> Result<Option<String>, ApiError> {
    Ok(state.db().scope_owner(scope).await?)
}

/// What a publish into a scope needs, once [`check`] has allowed it.
#[must_use]
pub enum Ownership {
    /// The publisher owns the scope already.
    Owned,
    /// Nobody owns it yet: the publish records it for the publisher, in its own transaction.
    Unclaimed,
    /// It is an organisation's, and the publisher is a member: the new package is the
    /// organisation's, and its `developers` team gets read-write on it.
    Org,
}

/// Whether `user` may publish into `scope`. Call it under the registry's write lock, so
/// that two first publishes cannot both claim a scope.
pub async fn check(state: &AppState, scope: &str, user: &str) -> Result<Ownership, ApiError> {
    if let Some(org) = state.db().org(scope).await? {
        return match org.role_of(user) {
            Some(_) => Ok(Ownership::Org),
            None => Err(taken(scope, user)),
        };
    }
    let owner = match recorded_owner(state, scope).await? {
        Some(owner) => Some(owner),
        None => users::load(state, scope).await?.map(|named| named.name),
    };
    match owner {
        None => Ok(Ownership::Unclaimed),
        Some(owner) if owner == user => Ok(Ownership::Owned),
        // Said the same way whatever the scope holds (private packages, public ones, or
        // none but its owner's name), and without naming whose it is.
        Some(_) => Err(taken(scope, user)),
    }
}

/// Said the same way whatever the scope holds (an organisation, private packages, public
/// ones, or none but its owner's name), and without naming whose it is.
fn taken(scope: &str, user: &str) -> ApiError {
    ApiError::forbidden(format!(
        "you cannot publish into the scope @{scope}: it is taken; publish under your own \
         scope (@{user}) or one nobody uses yet"
    ))
}

/// Gives the organisation's `developers` team what the organisation's owners chose for
/// new packages (read-write unless they said otherwise, as npm does) on its new package
/// `name`; retried when the organisation changed meanwhile.
pub async fn grant_developers(
    state: &AppState,
    org: &str,
    name: &crate::controllers::packages::PackageName,
) -> Result<(), ApiError> {
    let mut wanted = crate::db::TeamAccess::ReadWrite;
    for _ in 0..3 {
        let Some(mut current) = state.db().org(org).await? else {
            return Ok(());
        };
        let Some(access) = current.developers_on_new_packages.team_access() else {
            return Ok(());
        };
        wanted = access;
        let before = current.clone();
        if let Some(developers) = current.teams.get_mut(crate::db::orgs::DEVELOPERS) {
            developers.packages.insert(name.to_string(), access);
        }
        match state.db().put_org(&current).await {
            Ok(_) => {
                crate::controllers::orgs::rights_changed(state, &before, &current).await;
                return Ok(());
            }
            Err(error) if error.is_conflict() => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::CONFLICT,
        format!(
            "{name} was published, but @{org}'s developers team could not be given it: the organisation kept changing; grant it with `npm access grant {} {org}:developers {name}`",
            wanted.as_str()
        ),
    ))
}
