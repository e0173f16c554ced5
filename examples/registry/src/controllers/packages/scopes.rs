//! Who owns a scope: the user whose name it is, or else the first user who published into
//! it. Nobody else may publish `@scope/…`.

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
}

/// Whether `user` may publish into `scope`. Call it under the registry's write lock, so
/// that two first publishes cannot both claim a scope.
pub async fn check(state: &AppState, scope: &str, user: &str) -> Result<Ownership, ApiError> {
    let owner = match recorded_owner(state, scope).await? {
        Some(owner) => Some(owner),
        None => users::load(state, scope).await?.map(|named| named.name),
    };
    match owner {
        None => Ok(Ownership::Unclaimed),
        Some(owner) if owner == user => Ok(Ownership::Owned),
        // Said the same way whatever the scope holds (private packages, public ones, or
        // none but its owner's name), and without naming whose it is.
        Some(_) => Err(ApiError::forbidden(format!(
            "you cannot publish into the scope @{scope}: it is taken; publish under your own \
             scope (@{user}) or one nobody uses yet"
        ))),
    }
}
