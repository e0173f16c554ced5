//! The registry's data: one metadata store behind [`Metadata`] (users, packages with their
//! versions, dist-tags, maintainers and stars, access and 2FA rules, scopes) and the
//! tarballs as content-addressed files ([`blobs`]). Organisations ([`orgs`]) are kept as
//! one record each, with each member's team access per package derived beside it.
//!
//! A package is kept as its packument (the document npm reads) and, beside it in the same
//! transaction, the index the registry queries: maintainers, stars, versions with their
//! tarballs, dist-tags and the search text. Handlers keep working on packuments; the index
//! is derived from each one as it is written, so the two never disagree.
//!
//! [`sqlite`] is the default backend: one file, `registry.db`, beside `tokens.db`.

#[cfg(test)]
mod behaviour;
pub mod blobs;
mod import;
mod index;
pub mod orgs;
#[cfg(feature = "postgres")]
pub mod postgres;
mod search_tiers;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::controllers::packages::PackageName;

pub use import::import_json_folder;
pub use index::Digest;
pub use orgs::{NewPackageAccess, Org, Role, Team, TeamAccess};

/// The registry's data: the metadata store and the tarballs.
pub struct Data {
    pub metadata: std::sync::Arc<dyn Metadata>,
    pub blobs: blobs::Blobs,
}

impl Data {
    /// The data in `folder`: `registry.db` and `tarballs/`. A folder written before the
    /// database is imported into it the first time.
    pub async fn open(folder: &std::path::Path) -> Result<Self, DbError> {
        let doing = "open the registry's data";
        let metadata = sqlite::SqliteMetadata::open(&folder.join("registry.db"))?;
        let blobs =
            blobs::Blobs::disk(folder.join("tarballs")).map_err(|e| DbError::new(doing, e))?;
        if let Some(imported) = import_json_folder(&metadata, &blobs, folder).await? {
            tracing::warn!(
                users = imported.users,
                packages = imported.packages,
                folder = %folder.display(),
                "imported the JSON files of an earlier release into registry.db; they are \
                 no longer read, and can be moved away once you have checked the registry"
            );
        }
        Ok(Self {
            metadata: std::sync::Arc::new(metadata),
            blobs,
        })
    }

    /// Users and packages in the PostgreSQL database at `url`, tarballs in `folder`: what
    /// several registry processes share.
    #[cfg(feature = "postgres")]
    pub async fn postgres(url: &str, folder: &std::path::Path) -> Result<Self, DbError> {
        let metadata = postgres::PostgresMetadata::connect(url).await?;
        let blobs = blobs::Blobs::disk(folder.join("tarballs"))
            .map_err(|e| DbError::new("open the registry's data", e))?;
        if folder.join("packages").is_dir() || folder.join("users").is_dir() {
            tracing::warn!(
                folder = %folder.display(),
                "this data folder holds the JSON files of an earlier release: they are \
                 imported into the default SQLite database only, never into PostgreSQL"
            );
        }
        Ok(Self {
            metadata: std::sync::Arc::new(metadata),
            blobs,
        })
    }

    /// Data that lives as long as the process.
    pub fn memory() -> Result<Self, DbError> {
        Ok(Self {
            metadata: std::sync::Arc::new(sqlite::SqliteMetadata::memory()?),
            blobs: blobs::Blobs::memory(),
        })
    }
}

/// What a [`Metadata`] call returns.
pub type DbFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DbError>> + Send + 'a>>;

/// A database call that failed: what was being done, and why (for the log only).
#[derive(Debug)]
pub struct DbError {
    doing: &'static str,
    cause: String,
    conflict: bool,
    timed_out: bool,
}

impl DbError {
    pub fn new(doing: &'static str, cause: impl std::fmt::Display) -> Self {
        Self {
            doing,
            cause: cause.to_string(),
            conflict: false,
            timed_out: false,
        }
    }

    /// The database cut the statement off at its time limit: nothing was read or written,
    /// and the same call may succeed later.
    #[cfg(any(feature = "postgres", test))]
    pub fn timed_out(doing: &'static str, cause: impl std::fmt::Display) -> Self {
        Self {
            timed_out: true,
            ..Self::new(doing, cause)
        }
    }

    pub fn is_timed_out(&self) -> bool {
        self.timed_out
    }

    /// The package changed (on this node or another) between the read the write was based
    /// on and the write: nothing was written.
    pub fn conflict(doing: &'static str, cause: impl std::fmt::Display) -> Self {
        Self {
            conflict: true,
            ..Self::new(doing, cause)
        }
    }

    pub fn is_conflict(&self) -> bool {
        self.conflict
    }

    /// What was being done ("save the package"), for the answer to the client.
    pub fn doing(&self) -> &'static str {
        self.doing
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot {}: {}", self.doing, self.cause)
    }
}

impl std::error::Error for DbError {}

/// What is kept about a user: never the password, only its Argon2 hash.
#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub password_hash: String,
    pub email: Option<String>,
    /// Two-factor authentication, when set up.
    #[serde(default)]
    pub tfa: Option<crate::tfa::Tfa>,
    /// When the account was made and its profile last changed (RFC 3339), for `npm
    /// profile get`; accounts made before these were kept have neither until changed.
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub updated: Option<String>,
    /// `npm profile set` fields other than email: fullname, homepage, github, …
    #[serde(default)]
    pub profile: std::collections::BTreeMap<String, String>,
    /// The record's revision as read, which its next write names (not part of the
    /// record); `None` for a user not yet written.
    #[serde(skip)]
    pub revision: Option<i64>,
}

/// Who may read a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Everyone, with a token or without.
    Public,
    /// Its maintainers, through tokens that may read it (npm's `restricted`).
    Private,
}

/// When writes to a package need a one-time password (`npm access set mfa=…`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageMfa {
    /// As the writer's own account says.
    #[default]
    None,
    /// Always, even from a token that bypasses the second factor.
    Publish,
    /// Always, except from a token that bypasses it (automation).
    Automation,
}

impl Visibility {
    /// How both backends store it.
    pub fn as_column(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

impl PackageMfa {
    /// How both backends store it.
    pub fn as_column(self) -> &'static str {
        match self {
            PackageMfa::None => "none",
            PackageMfa::Publish => "publish",
            PackageMfa::Automation => "automation",
        }
    }
}

impl Access {
    /// The rules as stored in two columns, or which of them is damaged.
    pub fn from_columns(visibility: &str, mfa: &str) -> Result<Self, String> {
        let damaged = |what: &str| format!("a package's {what} is damaged");
        Ok(Self {
            visibility: match visibility {
                "public" => Visibility::Public,
                "private" => Visibility::Private,
                _ => return Err(damaged("visibility")),
            },
            mfa: match mfa {
                "none" => PackageMfa::None,
                "publish" => PackageMfa::Publish,
                "automation" => PackageMfa::Automation,
                _ => return Err(damaged("2FA rule")),
            },
        })
    }
}

/// A package's access rules: who reads it, and when writes need a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub visibility: Visibility,
    #[serde(default)]
    pub mfa: PackageMfa,
}

/// A package as stored.
pub struct StoredPackage {
    pub packument: Value,
    pub access: Access,
    /// What a write based on this read must name ([`PackageWrite::Replacing`]).
    pub revision: i64,
}

/// What a packument write is based on.
#[derive(Clone, Debug)]
pub enum PackageWrite {
    /// A new package, with these rules; refused if one of that name exists by then.
    New(Access),
    /// A new scoped package published by `publisher`, in the same transaction as the
    /// scope's claim: the scope is recorded as the publisher's if nobody owns it yet, and
    /// the write is refused if someone else does by then (a first publish on another node).
    NewInScope { access: Access, publisher: String },
    /// A new package in the scope of the organisation of that name, refused if the
    /// organisation is gone by then (removed on another node). A scope claim
    /// ([`PackageWrite::NewInScope`]) is likewise refused once an organisation has the
    /// scope's name, and both take turns with making and removing organisations.
    NewInOrg(Access),
    /// The package as read at this revision; refused if it has changed since.
    Replacing { revision: i64 },
}

/// Whether a first publish into `scope` may go on now that it holds its turn: an
/// organisation's package (`for_org`) needs its organisation still there, and a claim of
/// the scope needs no organisation of its name. A conflict otherwise.
pub(crate) fn check_org_for(
    for_org: bool,
    scope: &str,
    org_exists: bool,
    doing: &'static str,
) -> Result<(), DbError> {
    match (for_org, org_exists) {
        (true, false) => Err(DbError::conflict(
            doing,
            format!("the organisation {scope} was removed meanwhile"),
        )),
        (false, true) => Err(DbError::conflict(
            doing,
            format!("the scope @{scope} became an organisation's meanwhile"),
        )),
        _ => Ok(()),
    }
}

/// Which of a package's documents a reader asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Document {
    /// The whole packument.
    Full,
    /// npm's abbreviated install document (`application/vnd.npm.install-v1+json`).
    Abbreviated,
}

/// One of a package's documents, as stored: serialized JSON, before the tarball URLs are
/// pointed at the server that answers.
pub struct StoredDocument {
    pub json: String,
    pub revision: i64,
}

/// What the read rule needs about a package and one reader, answered from the index.
#[derive(Clone, Copy, Debug)]
pub struct ReadRule {
    pub visibility: Visibility,
    /// Whether the reader (if any) is one of its maintainers: listed as one and, for a
    /// package in an organisation's scope, still a member of the organisation (someone
    /// who leaves it keeps nothing of its packages, even where the list still names them).
    pub reader_maintains: bool,
    /// The reader's best access through the teams of its organisation, if any.
    pub reader_team: Option<TeamAccess>,
    /// Changes with every write to the package, across the registry (never reused, even
    /// after the package is deleted and published again): what its `ETag` is made of.
    pub revision: i64,
}

/// Where a user stands with the organisation whose scope holds a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgStanding {
    /// The package is in no organisation's scope (unscoped, or a user's scope).
    NoOrganisation,
    /// The organisation's, and the user is not a member of it: being listed among the
    /// package's maintainers gives them nothing.
    Outsider,
    /// A member of the organisation, with their best access through its teams.
    Member(Option<TeamAccess>),
}

impl OrgStanding {
    /// From what the backends read: whether the organisation exists, whether the user is
    /// a member, and their team access.
    pub fn of(org_exists: bool, member: bool, team: Option<TeamAccess>) -> Self {
        match (org_exists, member) {
            (false, _) => OrgStanding::NoOrganisation,
            (true, false) => OrgStanding::Outsider,
            (true, true) => OrgStanding::Member(team),
        }
    }

    /// Whether a maintainer standing here maintains the package.
    pub fn keeps_maintainers(self) -> bool {
        self != OrgStanding::Outsider
    }

    /// The best access through the organisation's teams.
    pub fn team(self) -> Option<TeamAccess> {
        match self {
            OrgStanding::Member(team) => team,
            OrgStanding::NoOrganisation | OrgStanding::Outsider => None,
        }
    }
}

/// A tarball of a published version: where its bytes are, and who may read it.
pub struct TarballRow {
    pub digest: Digest,
    pub rule: ReadRule,
}

/// A package found by a search, with what npm shows of it.
#[derive(Clone, Debug)]
pub struct SearchHit {
    pub name: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub version: String,
    pub visibility: Visibility,
    /// What else npm shows: `date`, `publisher`, `maintainers` (with their emails).
    pub summary: Value,
}

/// A page of hits, and how many there are in all.
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// How many packages match, exact up to [`SearchQuery::counted`]; `counted` itself
    /// means "at least `counted`".
    pub total: u64,
}

/// A search: its words (already split and bounded), a page, and who asks.
pub struct SearchQuery<'a> {
    pub terms: &'a [String],
    pub from: usize,
    pub size: usize,
    /// The reader's name, if any: their private packages are found too, when their token
    /// may read them (decided by the caller per hit, after the query).
    pub reader: Option<&'a str>,
    /// The most matches a search counts, so that its work is bounded however many
    /// packages match: up to it, `total` is exact; past it, `total` is `counted` (at least
    /// that many). The page is ranked over every match either way, and read through the
    /// indexes rank by rank (see `search_tiers`), so that its cost follows `from + size`,
    /// not the number of matches.
    pub counted: usize,
}

/// What a search holds until its query has ended, even when the caller stops waiting
/// (a client that disconnects): its turn among the searches running at once.
pub type SearchTurn = tokio::sync::OwnedSemaphorePermit;

/// A package someone maintains, with its visibility, for `npm access list packages`.
pub struct Maintained {
    pub name: String,
    pub visibility: Visibility,
}

/// A package's trusted publisher (`npm trust`), as stored: the policy in npm's shape, the
/// issuer it was made for, and the ids pinned at its first exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPublisher {
    /// The policy's id, which `npm trust revoke --id` names.
    pub id: String,
    /// The issuer (for CircleCI, the base of its organisations' issuers) it was made for:
    /// a token from another issuer of the same provider never matches it.
    pub issuer: String,
    /// `{"type", "claims", "permissions"}`, as `npm trust` sends it.
    pub policy: Value,
    /// The ids seen at the first exchange, `None` until then.
    pub pin: Option<Value>,
    /// The maintainer who set it up: the exchanged tokens publish as them.
    pub created_by: String,
    /// When (RFC 3339).
    pub created: String,
}

/// What removing an organisation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgRemoval {
    /// It is gone, with its teams and their access.
    Removed,
    /// Nothing: packages are in its scope (this many).
    HasPackages(u64),
}

/// What adding trusted publishers to a package did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishersAdded {
    /// All of them were added.
    Added,
    /// None: the package would have more than the most allowed (it has this many).
    TooMany { existing: usize },
    /// None: there is no such package (it was removed meanwhile).
    NoPackage,
}

/// A staged release (`npm stage publish`): a version uploaded, reserved and kept aside
/// until a maintainer approves it (it is then published exactly as staged) or rejects it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredStage {
    /// A random UUID, which `npm stage approve|reject|view|download` name.
    pub id: String,
    pub package: String,
    pub version: String,
    /// The dist-tag the release goes under when approved.
    pub tag: String,
    /// What approval publishes, as checked at staging: `{"manifest", "tags", "readme"}`.
    pub document: Value,
    /// The staged tarball, kept among the others but named by no version until approved.
    pub digest: Digest,
    /// Who staged it, and as what (`user`, or `trusted-publisher` for a CI job).
    pub actor: String,
    pub actor_type: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When it is removed unless approved or rejected first.
    pub expires_at: i64,
}

/// What staging a release did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageAdded {
    Added,
    /// None: the version is staged already, by the stage with this id.
    Taken {
        id: String,
    },
    /// None: the version is published already.
    Published,
    /// None: there is no such package (it was removed meanwhile).
    NoPackage,
}

/// Which staged releases a listing shows.
pub struct StageQuery<'a> {
    /// Those of the packages this user maintains.
    pub maintainer: &'a str,
    /// Only this package's, when given.
    pub package: Option<&'a str>,
    /// Only those that have not expired at this instant (milliseconds).
    pub now: i64,
    pub offset: u64,
    pub limit: u64,
}

/// The registry's metadata: every read and write handlers make of users and packages.
///
/// Every write is one transaction. A package's packument, access rules and index change
/// together or not at all.
pub trait Metadata: Send + Sync + 'static {
    /// The user named `name`.
    fn user(&self, name: &str) -> DbFuture<'_, Option<User>>;
    /// Makes the user (`user.revision` is `None`) or replaces the record read at
    /// `user.revision`; a conflict, with nothing written, when a user or an organisation
    /// of that name was made meanwhile or the record has changed since (a code used up on another node, say).
    /// Returns the new revision.
    fn put_user(&self, user: &User) -> DbFuture<'_, i64>;
    /// The organisation named `name`.
    fn org(&self, name: &str) -> DbFuture<'_, Option<Org>>;
    /// Makes the organisation (`org.revision` is `None`) or replaces the record read at
    /// `org.revision`, and rewrites its members' team access in the same transaction;
    /// returns the new revision. A conflict, with nothing written, when the record has
    /// changed since, or (for a new one) when a user or an organisation has the name, or
    /// someone other than its owner has published into its scope. A user and an
    /// organisation never share a name: [`Metadata::put_user`] refuses an
    /// organisation's.
    fn put_org(&self, org: &Org) -> DbFuture<'_, i64>;
    /// Removes the organisation as read at `org.revision`, its members' team access and
    /// its scope's recorded first publisher, in one transaction, so that its name is free
    /// again; nothing is removed while a package is in its scope
    /// ([`OrgRemoval::HasPackages`]), and a conflict when the record changed since.
    fn remove_org(&self, org: &Org) -> DbFuture<'_, OrgRemoval>;
    /// The organisations `user` is a member of, by name, with their role in each (the
    /// first thousand).
    fn orgs_of(&self, user: &str) -> DbFuture<'_, Vec<(String, Role)>>;
    /// Where `user` stands with the organisation whose scope holds the package: a member
    /// (with their best access through its teams), an outsider, or no organisation's.
    fn org_standing(&self, name: &PackageName, user: &str) -> DbFuture<'_, OrgStanding>;
    /// Whose scope `scope` is, as recorded at its first publish.
    fn scope_owner(&self, scope: &str) -> DbFuture<'_, Option<String>>;

    /// The package's packument and rules.
    fn package(&self, name: &PackageName) -> DbFuture<'_, Option<StoredPackage>>;
    /// One of the package's documents, as stored, for serving.
    fn document(&self, name: &PackageName, which: Document)
    -> DbFuture<'_, Option<StoredDocument>>;
    /// Writes the packument (and its index), if the package is still as `write` says it
    /// was read ([`DbError::is_conflict`] otherwise, with nothing written). A replaced
    /// package keeps its rules.
    fn put_packument(
        &self,
        name: &PackageName,
        packument: &Value,
        write: PackageWrite,
    ) -> DbFuture<'_, ()>;
    /// Changes the rules of the package as read at revision `read` (a conflict if it has
    /// changed since).
    fn set_access(&self, name: &PackageName, access: Access, read: i64) -> DbFuture<'_, ()>;
    /// Removes the package as read at revision `read` and its index (a conflict if it has
    /// changed since; its tarball files are the caller's).
    fn delete_package(&self, name: &PackageName, read: i64) -> DbFuture<'_, ()>;

    /// The read rule for `reader` on the package, `None` when there is no such package.
    fn read_rule(&self, name: &PackageName, reader: Option<&str>)
    -> DbFuture<'_, Option<ReadRule>>;
    /// The tarball `file` of the package, with its read rule.
    fn tarball(
        &self,
        name: &PackageName,
        file: &str,
        reader: Option<&str>,
    ) -> DbFuture<'_, Option<TarballRow>>;
    /// Whether any version of any package still names this tarball.
    fn tarball_in_use(&self, digest: &Digest) -> DbFuture<'_, bool>;

    /// Packages matching every term, best first (exact name, name prefix, name, text),
    /// public ones and the reader's own private ones only. `turn` is kept until the query
    /// has ended, even if the returned future is dropped first.
    fn search(&self, query: &SearchQuery<'_>, turn: Option<SearchTurn>)
    -> DbFuture<'_, SearchPage>;
    /// The packages `user` has starred, by name.
    fn starred_by(&self, user: &str) -> DbFuture<'_, Vec<String>>;
    /// The packages `user` maintains, by name (in an organisation's scope, only while a
    /// member of it).
    fn maintained_by(&self, user: &str) -> DbFuture<'_, Vec<Maintained>>;

    /// The package's trusted publishers, oldest first.
    fn trusted_publishers(&self, name: &PackageName) -> DbFuture<'_, Vec<StoredPublisher>>;
    /// Adds `publishers` to the package, all or none: none when it would then have more
    /// than `max` (counted in the same transaction, so two nodes cannot both add the last).
    fn add_trusted_publishers(
        &self,
        name: &PackageName,
        publishers: &[StoredPublisher],
        max: usize,
    ) -> DbFuture<'_, PublishersAdded>;
    /// Removes the package's publisher `id`; whether there was one.
    fn remove_trusted_publisher(&self, name: &PackageName, id: &str) -> DbFuture<'_, bool>;
    /// Pins ids on the package's publisher `id` if it has none pinned yet; whether it did
    /// (`false` when it was pinned meanwhile, or removed).
    fn pin_trusted_publisher(
        &self,
        name: &PackageName,
        id: &str,
        pin: &Value,
    ) -> DbFuture<'_, bool>;

    /// Stages a release, in one transaction that first drops the expired stages and then
    /// reserves the version: nothing is written when the package is gone, the version is
    /// published, or another stage holds it (on any node).
    fn add_stage(&self, stage: &StoredStage) -> DbFuture<'_, StageAdded>;
    /// The stage `id`, expired or not.
    fn stage(&self, id: &str) -> DbFuture<'_, Option<StoredStage>>;
    /// A page of the stages a listing shows, oldest first, and how many there are in all.
    fn stages(&self, query: &StageQuery<'_>) -> DbFuture<'_, (Vec<StoredStage>, u64)>;
    /// The stage `id` of the package's version, if one holds it.
    fn stage_of(&self, name: &PackageName, version: &str) -> DbFuture<'_, Option<String>>;
    /// Approves the stage `id`: removes it and writes the packument that publishes it, in
    /// one transaction. `false`, with nothing written, when the stage is gone (rejected or
    /// approved meanwhile); a conflict when the package changed since `read`.
    fn approve_stage(
        &self,
        id: &str,
        name: &PackageName,
        packument: &Value,
        read: i64,
    ) -> DbFuture<'_, bool>;
    /// Removes the stage `id`, returning it; `None` when it was gone already.
    fn remove_stage(&self, id: &str) -> DbFuture<'_, Option<StoredStage>>;
    /// Removes every stage expired at `now` (milliseconds), returning them (their tarball
    /// files are the caller's).
    fn remove_expired_stages(&self, now: i64) -> DbFuture<'_, Vec<StoredStage>>;
    /// Whether every release of the package must be staged (no direct publish).
    fn requires_staging(&self, name: &PackageName) -> DbFuture<'_, bool>;
    /// Requires staging for the package's releases, or stops requiring it; `false` when
    /// there is no such package.
    fn set_requires_staging(&self, name: &PackageName, required: bool) -> DbFuture<'_, bool>;
}
