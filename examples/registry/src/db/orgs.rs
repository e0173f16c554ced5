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

/// What the `developers` team gets on each package the organisation's members start
/// (npm gives it read-write); its owners and admins choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NewPackageAccess {
    /// Install and publish it, as on npm.
    #[default]
    #[serde(rename = "read-write")]
    ReadWrite,
    /// Install it.
    #[serde(rename = "read-only")]
    ReadOnly,
    /// Nothing: only the publisher (its maintainer) and teams given it later.
    #[serde(rename = "none")]
    NoAccess,
}

impl NewPackageAccess {
    /// Each choice, as the API and the organisation's page offer them.
    pub const ALL: [NewPackageAccess; 3] = [
        NewPackageAccess::ReadWrite,
        NewPackageAccess::ReadOnly,
        NewPackageAccess::NoAccess,
    ];

    /// As the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            NewPackageAccess::ReadWrite => "read-write",
            NewPackageAccess::ReadOnly => "read-only",
            NewPackageAccess::NoAccess => "none",
        }
    }

    /// The choice the API names, `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|choice| choice.as_str() == text)
    }

    /// What the `developers` team is given, if anything.
    pub fn team_access(self) -> Option<TeamAccess> {
        match self {
            NewPackageAccess::ReadWrite => Some(TeamAccess::ReadWrite),
            NewPackageAccess::ReadOnly => Some(TeamAccess::ReadOnly),
            NewPackageAccess::NoAccess => None,
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
    /// What `developers` gets on each new package (records written before there was a
    /// choice read as npm's read-write).
    #[serde(default)]
    pub developers_on_new_packages: NewPackageAccess,
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
            developers_on_new_packages: NewPackageAccess::default(),
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
    fn a_record_from_before_the_choice_gives_developers_read_write() {
        let old = r#"{"name":"acme","members":{"alice":"owner"},"teams":{},"created":"2026-12-01T00:00:00Z"}"#;
        let org: Org = serde_json::from_str(old).unwrap();
        assert_eq!(org.developers_on_new_packages, NewPackageAccess::ReadWrite);
    }

    #[test]
    fn names_round_trip() {
        for role in [Role::Developer, Role::Admin, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        for access in [TeamAccess::ReadOnly, TeamAccess::ReadWrite] {
            assert_eq!(TeamAccess::parse(access.as_str()), Some(access));
        }
        for choice in NewPackageAccess::ALL {
            assert_eq!(NewPackageAccess::parse(choice.as_str()), Some(choice));
        }
        assert_eq!(NewPackageAccess::parse("no-access"), None);
        assert_eq!(Role::parse("member"), None);
        assert_eq!(TeamAccess::parse("write"), None);
    }
}
