//! The registry's [`OwnerRights`]: what a token's owner may write now, asked by the token
//! gate after the token's own grants, so that removing someone from a team takes away what
//! their tokens could do through it on the very next request, without revoking them.
//!
//! A write to a private package that its owner sees only through a read-only team is
//! refused (403): they may install it, not change it. Everything else is left to the
//! handlers, which read the same data on every request and answer as they always have:
//! public packages, new ones, reads, routes that name no package, and private packages the
//! owner cannot see at all (whose refusal must look like that of a package that does not
//! exist, which only the handlers can tell). So only members of organisations ever get a
//! refusal cached, and every change to an organisation, to its packages' maintainers or to
//! their visibility tells the token manager about them
//! ([`package_rights_changed`](super::package_rights_changed)).

use std::sync::Arc;

use tokengate::{Action, OwnerRights, OwnerVerdict, RightsError, RightsQuery};

use crate::controllers::packages::PackageName;
use crate::db::{Metadata, TeamAccess, Visibility};

/// What owners may do, from the registry's database.
pub struct RegistryRights {
    db: Arc<dyn Metadata>,
}

impl RegistryRights {
    pub fn new(db: Arc<dyn Metadata>) -> Self {
        Self { db }
    }
}

impl OwnerRights for RegistryRights {
    async fn check(&self, query: RightsQuery<'_>) -> Result<OwnerVerdict, RightsError> {
        let Some(resource) = query.resource.filter(|_| query.action == Action::Write) else {
            return Ok(OwnerVerdict::Allowed);
        };
        let Ok(name) = PackageName::parse(resource.as_str()) else {
            return Ok(OwnerVerdict::Allowed);
        };
        let rule = self
            .db
            .read_rule(&name, Some(query.owner))
            .await
            .map_err(RightsError::new)?;
        Ok(match rule {
            Some(rule)
                if rule.visibility == Visibility::Private
                    && !rule.reader_maintains
                    && rule.reader_team == Some(TeamAccess::ReadOnly) =>
            {
                OwnerVerdict::Denied
            }
            _ => OwnerVerdict::Allowed,
        })
    }
}
