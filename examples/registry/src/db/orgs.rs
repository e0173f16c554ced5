//! Organisations as stored: one record per organisation (members with roles, teams with
//! their members and package access), and the rows derived from it in the same
//! transaction, which the read rule queries: each member's best team access per package.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The team every organisation has, that new members join.
pub const DEVELOPERS: &str = "developers";

/// A member's role in an organisation, weakest first (npm's `npm org set` roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A member: in teams, nothing to manage.
    Developer,
    /// Manages teams and their members.
    Admin,
    /// Manages everything, members and roles included.
    Owner,
}

impl Role {
    /// As npm names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Developer => "developer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// The role npm names, `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "developer" => Some(Role::Developer),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// What a team may do with a package (npm's `npm access grant` permissions), weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TeamAccess {
    /// Install it.
    #[serde(rename = "read-only")]
    ReadOnly,
    /// Install and publish it.
    #[serde(rename = "read-write")]
    ReadWrite,
}

impl TeamAccess {
    /// As npm names it, and as both backends store it.
    pub fn as_str(self) -> &'static str {
        match self {
            TeamAccess::ReadOnly => "read-only",
            TeamAccess::ReadWrite => "read-write",
        }
    }

    /// The permission npm names, `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read-only" => Some(TeamAccess::ReadOnly),
            "read-write" => Some(TeamAccess::ReadWrite),
            _ => None,
        }
    }
}

/// One team.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    #[serde(default)]
    pub description: Option<String>,
    pub members: BTreeSet<String>,
    /// Full package names (`@org/name`) and the team's access to each.
    pub packages: BTreeMap<String, TeamAccess>,
}

/// An organisation: its scope is `@<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub name: String,
    pub members: BTreeMap<String, Role>,
    pub teams: BTreeMap<String, Team>,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The record's revision as read, which its next write names (not part of the
    /// record); `None` for an organisation not yet written.
    #[serde(skip)]
    pub revision: Option<i64>,
}

impl Org {
    /// A new organisation of one owner, who is in its `developers` team.
    pub fn new(name: &str, owner: &str, created: String) -> Self {
        let developers = Team {
            description: None,
            members: BTreeSet::from([owner.to_owned()]),
            packages: BTreeMap::new(),
        };
        Self {
            name: name.to_owned(),
            members: BTreeMap::from([(owner.to_owned(), Role::Owner)]),
            teams: BTreeMap::from([(DEVELOPERS.to_owned(), developers)]),
            created,
            revision: None,
        }
    }

    /// An owner (the first by name): for a new organisation, the one who made it.
    pub fn first_owner(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|(_, role)| **role == Role::Owner)
            .map(|(name, _)| name.as_str())
    }

    /// `user`'s role, if they are a member.
    pub fn role_of(&self, user: &str) -> Option<Role> {
        self.members.get(user).copied()
    }

    /// Each member's best access per package, as the read rule's rows hold them:
    /// (package, user, access).
    pub fn access_rows(&self) -> Vec<(String, String, TeamAccess)> {
        let mut best: BTreeMap<(&str, &str), TeamAccess> = BTreeMap::new();
        for team in self.teams.values() {
            for (package, access) in &team.packages {
                for member in &team.members {
                    let entry = best.entry((package, member)).or_insert(*access);
                    *entry = (*entry).max(*access);
                }
            }
        }
        best.into_iter()
            .map(|((package, user), access)| (package.to_owned(), user.to_owned(), access))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_gets_the_best_access_of_their_teams() {
        let mut org = Org::new("acme", "alice", "2026-12-02T00:00:00Z".into());
        let readers = Team {
            description: None,
            members: BTreeSet::from(["alice".to_owned(), "bob".to_owned()]),
            packages: BTreeMap::from([("@acme/tool".to_owned(), TeamAccess::ReadOnly)]),
        };
        org.teams.insert("readers".into(), readers);
        org.teams
            .get_mut(DEVELOPERS)
            .unwrap()
            .packages
            .insert("@acme/tool".into(), TeamAccess::ReadWrite);
        assert_eq!(
            org.access_rows(),
            vec![
                ("@acme/tool".into(), "alice".into(), TeamAccess::ReadWrite),
                ("@acme/tool".into(), "bob".into(), TeamAccess::ReadOnly),
            ]
        );
    }

    #[test]
    fn names_round_trip() {
        for role in [Role::Developer, Role::Admin, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        for access in [TeamAccess::ReadOnly, TeamAccess::ReadWrite] {
            assert_eq!(TeamAccess::parse(access.as_str()), Some(access));
        }
        assert_eq!(Role::parse("member"), None);
        assert_eq!(TeamAccess::parse("write"), None);
    }
}
