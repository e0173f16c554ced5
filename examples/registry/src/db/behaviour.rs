//! What every [`Metadata`] backend must do, run against each of them by its own tests.

use serde_json::{Value, json};

use super::{Access, Digest, Metadata, PackageMfa, PackageWrite, SearchQuery, Visibility};
use crate::controllers::packages::PackageName;

fn packument(name: &str, description: &str, maintainer: &str) -> Value {
    let integrity = Digest::of(name.as_bytes()).integrity();
    json!({
        "name": name,
        "dist-tags": { "latest": "1.0.0" },
        "maintainers": [{ "name": maintainer }],
        "time": { "modified": "2026-12-02T00:00:00.000Z", "1.0.0": "2026-12-02T00:00:00.000Z" },
        "versions": { "1.0.0": {
            "name": name, "version": "1.0.0", "description": description,
            "keywords": ["Util"], "dist": { "integrity": integrity },
        }},
    })
}

async fn with_packages(db: &dyn Metadata, packages: &[(&str, &str, Visibility)]) {
    for (name, description, visibility) in packages {
        let access = Access {
            visibility: *visibility,
            mfa: PackageMfa::None,
        };
        let parsed = PackageName::parse(name).unwrap();
        db.put_packument(
            &parsed,
            &packument(name, description, "alice"),
            PackageWrite::New(access),
        )
        .await
        .unwrap();
    }
}

async fn found(db: &dyn Metadata, text: &str, reader: Option<&str>) -> (Vec<String>, u64) {
    found_within(db, text, reader, Paged::first(10_250)).await
}

/// A page of a search, and how many matches it counts.
#[derive(Clone, Copy)]
struct Paged {
    from: usize,
    size: usize,
    counted: usize,
}

impl Paged {
    /// The first page of 20, counting at most `counted`.
    fn first(counted: usize) -> Self {
        Paged {
            from: 0,
            size: 20,
            counted,
        }
    }
}

/// [`found`], for one page and counting at most `paged.counted` matches.
async fn found_within(
    db: &dyn Metadata,
    text: &str,
    reader: Option<&str>,
    paged: Paged,
) -> (Vec<String>, u64) {
    let terms: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    let page = db
        .search(
            &SearchQuery {
                terms: &terms,
                from: paged.from,
                size: paged.size,
                reader,
                counted: paged.counted,
            },
            None,
        )
        .await
        .unwrap();
    (
        page.hits.into_iter().map(|hit| hit.name).collect(),
        page.total,
    )
}

/// Search ranks exact name, then prefix, then name, then text, and finds private
/// packages for their maintainers only.
pub async fn search_ranks(db: &dyn Metadata) {
    with_packages(
        db,
        &[
            ("strings", "pads text on the left", Visibility::Public),
            ("leftpad", "", Visibility::Public),
            ("padding", "", Visibility::Public),
            ("pad", "", Visibility::Public),
            ("unrelated", "nothing here", Visibility::Public),
            ("@alice/pad-secret", "", Visibility::Private),
        ],
    )
    .await;
    struct Case {
        name: &'static str,
        text: &'static str,
        reader: Option<&'static str>,
        found: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "anonymous: public packages in rank order",
            text: "pad",
            reader: None,
            found: &["pad", "padding", "leftpad", "strings"],
        },
        Case {
            name: "a maintainer finds their private package too",
            text: "pad",
            reader: Some("alice"),
            found: &["pad", "padding", "@alice/pad-secret", "leftpad", "strings"],
        },
        Case {
            name: "someone else does not",
            text: "pad",
            reader: Some("bob"),
            found: &["pad", "padding", "leftpad", "strings"],
        },
        Case {
            name: "every term must match",
            text: "pad left",
            reader: None,
            found: &["leftpad", "strings"],
        },
        Case {
            name: "a term shorter than the index's trigrams",
            text: "le",
            reader: None,
            found: &["leftpad", "strings"],
        },
        Case {
            name: "keywords, whatever their case",
            text: "util unrelated",
            reader: None,
            found: &["unrelated"],
        },
        Case {
            name: "quotes and LIKE wildcards are text",
            text: "\"% _",
            reader: None,
            found: &[],
        },
        Case {
            name: "no words: every package the reader may see, by name",
            text: "",
            reader: None,
            found: &["leftpad", "pad", "padding", "strings", "unrelated"],
        },
    ];
    for case in cases {
        let (names, total) = found(db, case.text, case.reader).await;
        assert_eq!(names, case.found, "{}", case.name);
        assert_eq!(total, case.found.len() as u64, "{}", case.name);
    }
}

/// A package write replaces its index, a stale one changes nothing, and a delete
/// removes it all.
pub async fn writes_replace_the_index(db: &dyn Metadata) {
    with_packages(db, &[("pad", "first words", Visibility::Public)]).await;
    let name = PackageName::parse("pad").unwrap();
    let before = db.read_rule(&name, None).await.unwrap().unwrap().revision;
    let mut changed = packument("pad", "second words", "bob");
    changed["users"] = json!({ "carol": true });
    db.put_packument(
        &name,
        &changed,
        PackageWrite::Replacing { revision: before },
    )
    .await
    .unwrap();
    // A write based on what was read before that one changes nothing.
    let stale = db
        .put_packument(
            &name,
            &packument("pad", "lost", "eve"),
            PackageWrite::Replacing { revision: before },
        )
        .await
        .unwrap_err();
    assert!(stale.is_conflict(), "{stale}");
    let again = PackageWrite::New(Access {
        visibility: Visibility::Public,
        mfa: PackageMfa::None,
    });
    assert!(
        db.put_packument(&name, &changed, again)
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert!(found(db, "lost", None).await.0.is_empty());
    let rule = db.read_rule(&name, Some("bob")).await.unwrap().unwrap();
    assert!(rule.reader_maintains && rule.revision > before);
    assert!(found(db, "first", None).await.0.is_empty());
    assert_eq!(found(db, "second", None).await.0, ["pad"]);
    assert_eq!(db.starred_by("carol").await.unwrap(), ["pad"]);
    assert!(db.maintained_by("alice").await.unwrap().is_empty());
    let stale = db.delete_package(&name, before).await.unwrap_err();
    assert!(stale.is_conflict(), "a delete based on an old read");
    let read = db.read_rule(&name, None).await.unwrap().unwrap().revision;
    let public = Access {
        visibility: Visibility::Public,
        mfa: PackageMfa::Publish,
    };
    assert!(
        db.set_access(&name, public, before)
            .await
            .unwrap_err()
            .is_conflict()
    );
    db.set_access(&name, public, read).await.unwrap();
    let read = db.read_rule(&name, None).await.unwrap().unwrap().revision;
    db.delete_package(&name, read).await.unwrap();
    assert!(db.read_rule(&name, None).await.unwrap().is_none());
    assert!(found(db, "second", None).await.0.is_empty());
    assert!(db.starred_by("carol").await.unwrap().is_empty());
    // Published again, it never reuses a revision (nor so an ETag).
    db.put_packument(
        &name,
        &changed,
        PackageWrite::New(Access {
            visibility: Visibility::Public,
            mfa: PackageMfa::None,
        }),
    )
    .await
    .unwrap();
    assert!(db.read_rule(&name, None).await.unwrap().unwrap().revision > rule.revision);
}

/// A user is made once, and a record written over one read before another write changes
/// nothing: two requests (on two nodes, say) cannot both use up the same one-time code.
fn new_user(name: &str) -> super::User {
    super::User {
        name: name.into(),
        password_hash: "$argon2id$…".into(),
        email: None,
        tfa: None,
        created: None,
        updated: None,
        profile: Default::default(),
        revision: None,
    }
}

pub async fn user_writes_name_what_they_read(db: &dyn Metadata) {
    let mut alice = new_user("alice");
    let made = db.put_user(&alice).await.unwrap();
    assert!(
        db.put_user(&alice).await.unwrap_err().is_conflict(),
        "a second signup of the same name"
    );
    let mut first = db.user("alice").await.unwrap().unwrap();
    let mut second = db.user("alice").await.unwrap().unwrap();
    assert_eq!(first.revision, Some(made));
    first.email = Some("first@example.com".into());
    first.revision = Some(db.put_user(&first).await.unwrap());
    second.email = Some("second@example.com".into());
    assert!(db.put_user(&second).await.unwrap_err().is_conflict());
    let stored = db.user("alice").await.unwrap().unwrap();
    assert_eq!(stored.email.as_deref(), Some("first@example.com"));
    // The writer goes on from what it wrote.
    first.email = None;
    db.put_user(&first).await.unwrap();
    alice.revision = Some(made);
    assert!(db.put_user(&alice).await.unwrap_err().is_conflict());
}

/// A new scoped package claims its scope in the same transaction: a first publish into a
/// scope someone else has claimed meanwhile changes nothing.
pub async fn a_first_publish_claims_its_scope(db: &dyn Metadata) {
    let access = Access {
        visibility: Visibility::Public,
        mfa: PackageMfa::None,
    };
    let write = |publisher: &str| PackageWrite::NewInScope {
        access,
        publisher: publisher.to_owned(),
    };
    let first = PackageName::parse("@acme/one").unwrap();
    db.put_packument(&first, &packument("@acme/one", "", "alice"), write("alice"))
        .await
        .unwrap();
    assert_eq!(
        db.scope_owner("acme").await.unwrap().as_deref(),
        Some("alice")
    );
    let second = PackageName::parse("@acme/two").unwrap();
    let refused = db
        .put_packument(&second, &packument("@acme/two", "", "bob"), write("bob"))
        .await
        .unwrap_err();
    assert!(refused.is_conflict(), "{refused}");
    assert!(db.read_rule(&second, None).await.unwrap().is_none());
    db.put_packument(
        &second,
        &packument("@acme/two", "", "alice"),
        write("alice"),
    )
    .await
    .unwrap();
}

fn publisher(id: &str, created: &str) -> super::StoredPublisher {
    super::StoredPublisher {
        id: id.to_owned(),
        issuer: "https://token.actions.githubusercontent.com".to_owned(),
        policy: json!({
            "type": "github",
            "claims": { "repository": "acme/tool", "workflow_ref": { "file": "release.yml" } },
            "permissions": ["createPackage"],
        }),
        pin: None,
        created_by: "alice".to_owned(),
        created: created.to_owned(),
    }
}

/// Trusted publishers: added all or none up to the most allowed, listed oldest first,
/// pinned once, removed by id within their package only, and gone with their package.
pub async fn trusted_publishers_belong_to_their_package(db: &dyn Metadata) {
    use super::PublishersAdded;
    let public = Access {
        visibility: Visibility::Public,
        mfa: PackageMfa::None,
    };
    let tool = PackageName::parse("tool").unwrap();
    let other = PackageName::parse("other").unwrap();
    let first = publisher("p1", "2026-12-02T00:00:01Z");
    assert_eq!(
        db.add_trusted_publishers(&tool, std::slice::from_ref(&first), 2)
            .await
            .unwrap(),
        PublishersAdded::NoPackage
    );
    for name in [&tool, &other] {
        db.put_packument(
            name,
            &packument(&name.to_string(), "", "alice"),
            PackageWrite::New(public),
        )
        .await
        .unwrap();
    }
    let second = publisher("p2", "2026-12-02T00:00:02Z");
    assert_eq!(
        db.add_trusted_publishers(&tool, &[second.clone(), first.clone()], 2)
            .await
            .unwrap(),
        PublishersAdded::Added
    );
    let third = publisher("p3", "2026-12-02T00:00:03Z");
    assert_eq!(
        db.add_trusted_publishers(&tool, &[third], 2).await.unwrap(),
        PublishersAdded::TooMany { existing: 2 }
    );
    let listed = db.trusted_publishers(&tool).await.unwrap();
    assert_eq!(listed, [first.clone(), second.clone()]);
    assert!(db.trusted_publishers(&other).await.unwrap().is_empty());

    // A write of the package keeps them; pinning happens once.
    let stored = db.package(&tool).await.unwrap().unwrap();
    db.put_packument(
        &tool,
        &stored.packument,
        PackageWrite::Replacing {
            revision: stored.revision,
        },
    )
    .await
    .unwrap();
    let pin = json!({ "github": { "repository_id": "74", "repository_owner_id": "65" } });
    assert!(db.pin_trusted_publisher(&tool, "p1", &pin).await.unwrap());
    assert!(
        !db.pin_trusted_publisher(&tool, "p1", &json!({}))
            .await
            .unwrap()
    );
    assert!(!db.pin_trusted_publisher(&other, "p2", &pin).await.unwrap());
    let listed = db.trusted_publishers(&tool).await.unwrap();
    assert_eq!(listed[0].pin.as_ref(), Some(&pin));
    assert_eq!(listed[1].pin, None);

    // Removed by id, within the package named only.
    assert!(!db.remove_trusted_publisher(&other, "p1").await.unwrap());
    assert!(db.remove_trusted_publisher(&tool, "p1").await.unwrap());
    assert!(!db.remove_trusted_publisher(&tool, "p1").await.unwrap());
    assert_eq!(db.trusted_publishers(&tool).await.unwrap(), [second]);

    // A package removed takes its publishers along: one published again under the name
    // starts with none.
    let stored = db.package(&tool).await.unwrap().unwrap();
    db.delete_package(&tool, stored.revision).await.unwrap();
    db.put_packument(
        &tool,
        &packument("tool", "", "mallory"),
        PackageWrite::New(public),
    )
    .await
    .unwrap();
    assert!(db.trusted_publishers(&tool).await.unwrap().is_empty());
}

/// A search counts at most `counted` matches (private packages left out before they are
/// counted), and pages through every match in rank order however many it counts: past
/// the count each rank is read by its own query, which must give the same pages.
pub async fn search_is_bounded(db: &dyn Metadata) {
    with_packages(
        db,
        &[
            ("@alice/pad-secret", "", Visibility::Private),
            ("padding", "", Visibility::Public),
            ("leftpad", "", Visibility::Public),
            ("strings", "pads text on the left", Visibility::Public),
            ("zpad", "", Visibility::Public),
            ("apadb", "", Visibility::Public),
            ("tools", "a pad maker", Visibility::Public),
            ("padlock", "", Visibility::Public),
            ("pa", "short", Visibility::Public),
            // Written last, so that the text index gives it after the others.
            ("pad", "", Visibility::Public),
        ],
    )
    .await;
    struct Case {
        name: &'static str,
        text: &'static str,
        reader: Option<&'static str>,
        paged: Paged,
        found: &'static [&'static str],
        total: u64,
    }
    let page = |from, size, counted| Paged {
        from,
        size,
        counted,
    };
    let cases = [
        Case {
            name: "within the count: every match, counted exactly, ranked",
            text: "pad",
            reader: None,
            paged: page(0, 20, 100),
            found: &[
                "pad", "padding", "padlock", "apadb", "leftpad", "zpad", "strings", "tools",
            ],
            total: 8,
        },
        Case {
            name: "past the count: the total is the count, the page ranked over every match",
            text: "pad",
            reader: None,
            paged: page(0, 20, 2),
            found: &[
                "pad", "padding", "padlock", "apadb", "leftpad", "zpad", "strings", "tools",
            ],
            total: 2,
        },
        Case {
            name: "past the count, each rank within it: the ranks from the text index",
            text: "pad",
            reader: None,
            paged: page(0, 20, 3),
            found: &[
                "pad", "padding", "padlock", "apadb", "leftpad", "zpad", "strings", "tools",
            ],
            total: 3,
        },
        Case {
            name: "a page within the prefixes",
            text: "pad",
            reader: None,
            paged: page(1, 2, 2),
            found: &["padding", "padlock"],
            total: 2,
        },
        Case {
            name: "a page across the prefixes and the names",
            text: "pad",
            reader: None,
            paged: page(2, 3, 2),
            found: &["padlock", "apadb", "leftpad"],
            total: 2,
        },
        Case {
            name: "a page across the names and the text",
            text: "pad",
            reader: None,
            paged: page(5, 2, 2),
            found: &["zpad", "strings"],
            total: 2,
        },
        Case {
            name: "a page past every match",
            text: "pad",
            reader: None,
            paged: page(8, 5, 2),
            found: &[],
            total: 2,
        },
        Case {
            name: "a maintainer's private package is ranked among the names",
            text: "pad",
            reader: Some("alice"),
            paged: page(2, 3, 2),
            found: &["padlock", "@alice/pad-secret", "apadb"],
            total: 2,
        },
        Case {
            name: "a private package is not counted for someone else",
            text: "pad",
            reader: Some("bob"),
            paged: page(0, 1, 100),
            found: &["pad"],
            total: 8,
        },
        Case {
            name: "but it is for its maintainer",
            text: "pad",
            reader: Some("alice"),
            paged: page(0, 1, 100),
            found: &["pad"],
            total: 9,
        },
        Case {
            name: "and up to the count only",
            text: "pad",
            reader: Some("alice"),
            paged: page(0, 1, 8),
            found: &["pad"],
            total: 8,
        },
        Case {
            name: "counting nothing, two terms: the longest is the prefix",
            text: "pad padl",
            reader: None,
            paged: page(0, 20, 0),
            found: &["padlock"],
            total: 0,
        },
        Case {
            name: "two terms, no common prefix: names, then text",
            text: "pad left",
            reader: None,
            paged: page(0, 20, 0),
            found: &["leftpad", "strings"],
            total: 0,
        },
        Case {
            name: "a word in every package's keywords, past the count: read in name order",
            text: "util",
            reader: None,
            paged: page(1, 3, 2),
            found: &["leftpad", "pa", "pad"],
            total: 2,
        },
        Case {
            name: "no words: the readable packages by name, past the count",
            text: "",
            reader: None,
            paged: page(0, 3, 2),
            found: &["apadb", "leftpad", "pa"],
            total: 2,
        },
        Case {
            name: "no words, for a maintainer: their private package counts",
            text: "",
            reader: Some("alice"),
            paged: page(0, 2, 2),
            found: &["@alice/pad-secret", "apadb"],
            total: 2,
        },
        Case {
            name: "a short term past the count: read without the text index, ranked",
            text: "pa",
            reader: None,
            paged: page(0, 20, 2),
            found: &[
                "pa", "pad", "padding", "padlock", "apadb", "leftpad", "zpad", "strings", "tools",
            ],
            total: 2,
        },
    ];
    for case in cases {
        let (names, total) = found_within(db, case.text, case.reader, case.paged).await;
        assert_eq!(names, case.found, "{}", case.name);
        assert_eq!(total, case.total, "{}", case.name);
    }
}

/// An organisation is one record, written as read; its name is never a user's (either way
/// round) nor a scope someone else publishes in; its teams' access reaches the read rule.
pub async fn organisations_hold_their_teams_access(db: &dyn Metadata) {
    use super::{Org, OrgStanding, TeamAccess};
    db.put_user(&new_user("alice")).await.unwrap();
    let org = |name: &str| Org::new(name, "alice", "2026-12-02T00:00:00Z".into());
    assert!(
        db.put_org(&org("alice")).await.unwrap_err().is_conflict(),
        "a user's name"
    );
    let claim = PackageWrite::NewInScope {
        access: Access {
            visibility: Visibility::Public,
            mfa: PackageMfa::None,
        },
        publisher: "bob".into(),
    };
    let bobs = PackageName::parse("@tools/lint").unwrap();
    db.put_packument(&bobs, &packument("@tools/lint", "", "bob"), claim)
        .await
        .unwrap();
    assert!(
        db.put_org(&org("tools")).await.unwrap_err().is_conflict(),
        "bob's scope"
    );

    let made = db.put_org(&org("acme")).await.unwrap();
    assert!(
        db.put_org(&org("acme")).await.unwrap_err().is_conflict(),
        "made twice"
    );
    assert!(
        db.put_user(&new_user("acme"))
            .await
            .unwrap_err()
            .is_conflict(),
        "as a user"
    );

    with_private("@acme/tool", db).await;
    let tool = PackageName::parse("@acme/tool").unwrap();
    let mut acme = db.org("acme").await.unwrap().unwrap();
    assert_eq!(acme.revision, Some(made));
    let stale = acme.clone();
    acme.members.insert("carol".into(), super::Role::Developer);
    let developers = acme.teams.get_mut(super::orgs::DEVELOPERS).unwrap();
    developers.members.insert("carol".into());
    developers
        .packages
        .insert("@acme/tool".into(), TeamAccess::ReadOnly);
    db.put_org(&acme).await.unwrap();
    assert!(
        db.put_org(&stale).await.unwrap_err().is_conflict(),
        "written since"
    );

    let rule = db.read_rule(&tool, Some("carol")).await.unwrap().unwrap();
    assert_eq!(rule.reader_team, Some(TeamAccess::ReadOnly));
    assert!(!rule.reader_maintains);
    assert_eq!(
        db.org_standing(&tool, "carol").await.unwrap(),
        OrgStanding::Member(Some(TeamAccess::ReadOnly))
    );
    assert_eq!(
        db.org_standing(&tool, "dave").await.unwrap(),
        OrgStanding::Outsider
    );
    assert_eq!(found(db, "acme", Some("carol")).await.0, ["@acme/tool"]);
    assert!(found(db, "acme", Some("dave")).await.0.is_empty());

    let mut acme = db.org("acme").await.unwrap().unwrap();
    acme.teams
        .get_mut(super::orgs::DEVELOPERS)
        .unwrap()
        .members
        .remove("carol");
    db.put_org(&acme).await.unwrap();
    let rule = db.read_rule(&tool, Some("carol")).await.unwrap().unwrap();
    assert_eq!(rule.reader_team, None, "gone with her membership");
}

pub async fn an_organisation_is_removed_only_when_its_scope_is_empty(db: &dyn Metadata) {
    use super::{Org, OrgRemoval, TeamAccess};
    db.put_user(&new_user("alice")).await.unwrap();
    // alice published into the scope before she made the organisation.
    let claim = PackageWrite::NewInScope {
        access: Access {
            visibility: Visibility::Public,
            mfa: PackageMfa::None,
        },
        publisher: "alice".into(),
    };
    let tool = PackageName::parse("@acme/tool").unwrap();
    db.put_packument(&tool, &packument("@acme/tool", "", "alice"), claim)
        .await
        .unwrap();
    // Names beside the scope's, on either side of it in sort order, are not in it.
    for beside in ["@acme-x/a", "@acmeco/a", "@acme0/a"] {
        with_private(beside, db).await;
    }
    db.put_org(&Org::new("acme", "alice", "2026-12-02T00:00:00Z".into()))
        .await
        .unwrap();
    let mut acme = db.org("acme").await.unwrap().unwrap();
    acme.teams
        .get_mut(super::orgs::DEVELOPERS)
        .unwrap()
        .packages
        .insert("@acme/tool".into(), TeamAccess::ReadWrite);
    db.put_org(&acme).await.unwrap();
    let acme = db.org("acme").await.unwrap().unwrap();

    assert_eq!(
        db.remove_org(&acme).await.unwrap(),
        OrgRemoval::HasPackages(1)
    );
    assert!(db.org("acme").await.unwrap().is_some(), "nothing removed");
    let read = db.package(&tool).await.unwrap().unwrap().revision;
    db.delete_package(&tool, read).await.unwrap();

    let mut stale = acme.clone();
    stale.revision = stale.revision.map(|revision| revision - 1);
    assert!(
        db.remove_org(&stale).await.unwrap_err().is_conflict(),
        "changed since it was read"
    );
    assert_eq!(db.remove_org(&acme).await.unwrap(), OrgRemoval::Removed);
    assert!(db.org("acme").await.unwrap().is_none());
    assert_eq!(
        db.org_standing(&tool, "alice").await.unwrap(),
        super::OrgStanding::NoOrganisation
    );
    assert_eq!(db.scope_owner("acme").await.unwrap(), None, "scope freed");
    db.put_user(&new_user("acme"))
        .await
        .expect("the name is free again");
    assert!(
        db.remove_org(&acme).await.unwrap_err().is_conflict(),
        "gone already"
    );
}

pub async fn a_users_organisations_follow_their_membership(db: &dyn Metadata) {
    use super::{Org, Role};
    db.put_user(&new_user("alice")).await.unwrap();
    for name in ["zeta", "acme"] {
        db.put_org(&Org::new(name, "alice", "2026-12-02T00:00:00Z".into()))
            .await
            .unwrap();
    }
    let mut acme = db.org("acme").await.unwrap().unwrap();
    acme.members.insert("bob".into(), Role::Admin);
    db.put_org(&acme).await.unwrap();
    assert_eq!(
        db.orgs_of("alice").await.unwrap(),
        [
            ("acme".to_owned(), Role::Owner),
            ("zeta".to_owned(), Role::Owner)
        ],
        "by name"
    );
    assert_eq!(
        db.orgs_of("bob").await.unwrap(),
        [("acme".to_owned(), Role::Admin)]
    );
    let mut acme = db.org("acme").await.unwrap().unwrap();
    acme.members.remove("bob");
    db.put_org(&acme).await.unwrap();
    assert!(db.orgs_of("bob").await.unwrap().is_empty(), "left");
    let zeta = db.org("zeta").await.unwrap().unwrap();
    db.remove_org(&zeta).await.unwrap();
    assert_eq!(
        db.orgs_of("alice").await.unwrap(),
        [("acme".to_owned(), Role::Owner)],
        "removed"
    );
}

pub async fn a_first_publish_into_a_scope_finds_its_organisation_as_it_is_then(db: &dyn Metadata) {
    use super::Org;
    let access = Access {
        visibility: Visibility::Private,
        mfa: PackageMfa::None,
    };
    db.put_user(&new_user("alice")).await.unwrap();
    db.put_org(&Org::new("acme", "alice", "2026-12-02T00:00:00Z".into()))
        .await
        .unwrap();
    struct Case {
        name: &'static str,
        package: &'static str,
        write: PackageWrite,
        conflict: bool,
    }
    let cases = [
        Case {
            name: "an organisation's package, the organisation removed meanwhile",
            package: "@ghost/tool",
            write: PackageWrite::NewInOrg(access),
            conflict: true,
        },
        Case {
            name: "a claim of a scope that became an organisation's meanwhile",
            package: "@acme/claimed",
            write: PackageWrite::NewInScope {
                access,
                publisher: "bob".into(),
            },
            conflict: true,
        },
        Case {
            name: "an organisation's package",
            package: "@acme/tool",
            write: PackageWrite::NewInOrg(access),
            conflict: false,
        },
    ];
    for case in cases {
        let name = PackageName::parse(case.package).unwrap();
        let written = db
            .put_packument(&name, &packument(case.package, "", "alice"), case.write)
            .await;
        match written {
            Err(error) => assert!(
                case.conflict && error.is_conflict(),
                "{}: {error}",
                case.name
            ),
            Ok(()) => assert!(!case.conflict, "{}: written", case.name),
        }
        assert_eq!(
            db.package(&name).await.unwrap().is_some(),
            !case.conflict,
            "{}",
            case.name
        );
    }
}

/// A package in an organisation's scope is maintained only by members: someone the list
/// names who is not (or no longer) a member maintains nothing, for reads and for
/// tarballs alike, nor finds it in a search or its stages in their list, while the lists
/// that name them in a user's scope still count.
pub async fn only_members_maintain_an_organisations_packages(db: &dyn Metadata) {
    use super::{Org, OrgStanding, Role, StageQuery, StoredStage};
    for user in ["alice", "bob"] {
        db.put_user(&new_user(user)).await.unwrap();
    }
    db.put_org(&Org::new("acme", "alice", "2026-12-02T00:00:00Z".into()))
        .await
        .unwrap();
    let mut acme = db.org("acme").await.unwrap().unwrap();
    acme.members.insert("bob".into(), Role::Developer);
    db.put_org(&acme).await.unwrap();
    let tool = PackageName::parse("@acme/tool").unwrap();
    let mut listed = packument("@acme/tool", "", "alice");
    listed["maintainers"] = json!([{ "name": "alice" }, { "name": "bob" }]);
    let access = Access {
        visibility: Visibility::Private,
        mfa: PackageMfa::None,
    };
    db.put_packument(&tool, &listed, PackageWrite::New(access))
        .await
        .unwrap();
    // bob's own scope has no organisation: the list is all there is.
    let own = PackageName::parse("@bob/kit").unwrap();
    db.put_packument(
        &own,
        &packument("@bob/kit", "", "bob"),
        PackageWrite::New(access),
    )
    .await
    .unwrap();

    let maintains = |name: &PackageName, user: &'static str| {
        let name = name.clone();
        async move {
            db.read_rule(&name, Some(user))
                .await
                .unwrap()
                .unwrap()
                .reader_maintains
        }
    };
    let stage = |package: &str, id: &str| StoredStage {
        id: id.to_owned(),
        package: package.to_owned(),
        version: "1.1.0".to_owned(),
        tag: "latest".to_owned(),
        document: json!({ "manifest": { "version": "1.1.0" }, "tags": [], "readme": null }),
        digest: Digest::of(id.as_bytes()),
        actor: "alice".to_owned(),
        actor_type: "user".to_owned(),
        created_at: 1_000,
        expires_at: 9_000,
    };
    for (package, id) in [("@acme/tool", "s-tool"), ("@bob/kit", "s-kit")] {
        db.add_stage(&stage(package, id)).await.unwrap();
    }
    let stages_of = |maintainer: &'static str| async move {
        let (page, total) = db
            .stages(&StageQuery {
                maintainer,
                package: None,
                now: 2_000,
                offset: 0,
                limit: 10,
            })
            .await
            .unwrap();
        let ids: Vec<String> = page.into_iter().map(|stage| stage.id).collect();
        (ids, total)
    };
    assert!(maintains(&tool, "bob").await, "a member on the list");
    assert_eq!(db.maintained_by("bob").await.unwrap().len(), 2);
    assert_eq!(found(db, "tool", Some("bob")).await.0, ["@acme/tool"]);
    assert_eq!(
        stages_of("bob").await,
        (vec!["s-kit".into(), "s-tool".into()], 2)
    );
    assert!(maintains(&own, "bob").await, "no organisation's");
    assert_eq!(
        db.org_standing(&own, "bob").await.unwrap(),
        OrgStanding::NoOrganisation
    );

    let mut acme = db.org("acme").await.unwrap().unwrap();
    acme.members.remove("bob");
    db.put_org(&acme).await.unwrap();
    assert!(!maintains(&tool, "bob").await, "listed, but gone from acme");
    assert_eq!(
        found(db, "tool", Some("bob")).await,
        (Vec::new(), 0),
        "a search finds it for him no more, nor counts it"
    );
    assert_eq!(
        stages_of("bob").await,
        (vec!["s-kit".into()], 1),
        "nor does he list its stages"
    );
    assert_eq!(found(db, "tool", Some("alice")).await.0, ["@acme/tool"]);
    assert_eq!(stages_of("alice").await.1, 1);
    let bobs: Vec<String> = db
        .maintained_by("bob")
        .await
        .unwrap()
        .into_iter()
        .map(|maintained| maintained.name)
        .collect();
    assert_eq!(bobs, ["@bob/kit"], "nor listed as his");
    assert!(maintains(&tool, "alice").await);
    assert_eq!(
        db.org_standing(&tool, "bob").await.unwrap(),
        OrgStanding::Outsider
    );
    let tarball = db
        .tarball(&tool, "tool-1.0.0.tgz", Some("bob"))
        .await
        .unwrap()
        .expect("the version's tarball");
    assert!(
        !tarball.rule.reader_maintains,
        "the tarball's rule is the same"
    );
    assert!(maintains(&own, "bob").await);
}

async fn with_private(name: &str, db: &dyn Metadata) {
    let access = Access {
        visibility: Visibility::Private,
        mfa: PackageMfa::None,
    };
    let parsed = PackageName::parse(name).unwrap();
    db.put_packument(
        &parsed,
        &packument(name, "a tool", "alice"),
        PackageWrite::New(access),
    )
    .await
    .unwrap();
}

/// A stage reserves its version (against a second stage and a publish, in the backend's
/// own transaction), is listed only to its package's maintainers until it expires, and
/// is approved or removed exactly once.
pub async fn stages_reserve_their_version_and_are_decided_once(db: &dyn Metadata) {
    use super::{StageAdded, StageQuery, StoredStage};
    let tool = PackageName::parse("tool").unwrap();
    let stage = |id: &str, version: &str, expires_at: i64| StoredStage {
        id: id.to_owned(),
        package: "tool".to_owned(),
        version: version.to_owned(),
        tag: "latest".to_owned(),
        document: json!({ "manifest": { "version": version }, "tags": [], "readme": null }),
        digest: Digest::of(version.as_bytes()),
        actor: "alice".to_owned(),
        actor_type: "user".to_owned(),
        created_at: 1_000,
        expires_at,
    };
    assert_eq!(
        db.add_stage(&stage("s0", "1.1.0", 9_000)).await.unwrap(),
        StageAdded::NoPackage
    );
    let public = Access {
        visibility: Visibility::Public,
        mfa: PackageMfa::None,
    };
    db.put_packument(
        &tool,
        &packument("tool", "", "alice"),
        PackageWrite::New(public),
    )
    .await
    .unwrap();
    assert_eq!(
        db.add_stage(&stage("s1", "1.1.0", 9_000)).await.unwrap(),
        StageAdded::Added
    );
    assert_eq!(
        db.add_stage(&stage("s2", "1.1.0", 9_000)).await.unwrap(),
        StageAdded::Taken { id: "s1".into() }
    );
    assert_eq!(
        db.add_stage(&stage("s3", "1.0.0", 9_000)).await.unwrap(),
        StageAdded::Published
    );
    assert_eq!(
        db.stage_of(&tool, "1.1.0").await.unwrap().as_deref(),
        Some("s1")
    );
    assert!(db.tarball_in_use(&Digest::of(b"1.1.0")).await.unwrap());

    let listed = |maintainer: &'static str, now: i64| async move {
        db.stages(&StageQuery {
            maintainer,
            package: None,
            now,
            offset: 0,
            limit: 10,
        })
        .await
        .unwrap()
    };
    let (page, total) = listed("alice", 2_000).await;
    assert_eq!((page.len(), total), (1, 1));
    assert_eq!(page[0], stage("s1", "1.1.0", 9_000));
    assert_eq!(listed("bob", 2_000).await.1, 0, "only maintainers list it");
    assert_eq!(
        listed("alice", 9_000).await.1,
        0,
        "an expired stage is not listed"
    );

    // A publish of the reserved version is refused by the backend itself.
    let mut over = db.package(&tool).await.unwrap().unwrap();
    over.packument["versions"]["1.1.0"] =
        json!({ "version": "1.1.0", "dist": { "integrity": Digest::of(b"x").integrity() } });
    let refused = db
        .put_packument(
            &tool,
            &over.packument,
            PackageWrite::Replacing {
                revision: over.revision,
            },
        )
        .await
        .unwrap_err();
    assert!(refused.is_conflict(), "{refused}");

    // Approving publishes it and takes the stage, once.
    assert!(
        db.approve_stage("s1", &tool, &over.packument, over.revision)
            .await
            .unwrap()
    );
    assert!(db.stage("s1").await.unwrap().is_none());
    assert!(
        !db.approve_stage("s1", &tool, &over.packument, over.revision)
            .await
            .unwrap(),
        "a stage is approved once"
    );
    assert!(db.remove_stage("s1").await.unwrap().is_none());

    // Removal, and expiry, free a version.
    db.add_stage(&stage("s4", "1.2.0", 9_000)).await.unwrap();
    assert_eq!(
        db.remove_stage("s4").await.unwrap().map(|s| s.id),
        Some("s4".into())
    );
    db.add_stage(&stage("s5", "1.2.0", 5_000)).await.unwrap();
    let expired = db.remove_expired_stages(5_000).await.unwrap();
    assert_eq!(
        expired.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s5"]
    );
    assert!(db.stage_of(&tool, "1.2.0").await.unwrap().is_none());
    assert!(!db.tarball_in_use(&Digest::of(b"1.2.0")).await.unwrap());

    // The package's staging rule: off until set, and only for a package that exists.
    assert!(!db.requires_staging(&tool).await.unwrap());
    assert!(db.set_requires_staging(&tool, true).await.unwrap());
    assert!(
        db.set_requires_staging(&tool, true).await.unwrap(),
        "idempotent"
    );
    assert!(db.requires_staging(&tool).await.unwrap());
    assert!(db.set_requires_staging(&tool, false).await.unwrap());
    assert!(!db.requires_staging(&tool).await.unwrap());
    let nowhere = PackageName::parse("nowhere").unwrap();
    assert!(!db.set_requires_staging(&nowhere, true).await.unwrap());
    assert!(!db.requires_staging(&nowhere).await.unwrap());
}
