//! Packages: publish (`PUT /<name>`), the packument (`GET /<name>`) and tarballs
//! (`GET /<name>/-/<file>.tgz`), scoped names included.

pub mod access;
pub mod lifecycle;
pub mod owners;
pub mod scopes;

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokengate::{Action, Authenticated, RequestHead, Resource};

use crate::error::ApiError;
use crate::json_body::JsonBytes;
use crate::state::AppState;
use crate::tfa::{self, WriteRules};
use access::{PackageMfa, Visibility};

/// A validated package name: `name` or `@scope/name`, each part lower-case letters,
/// digits, `-`, `.`, `_` and `~`, not starting with `.` or `_`; 214 characters at most.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageName {
    full: String,
    base: String,
    /// `scope` of `@scope/name`, without the `@`.
    scope: Option<String>,
}

impl PackageName {
    /// Most bytes of a package's full name, its `@scope/` included (npm's limit).
    pub const MAX_LEN: usize = 214;

    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::bad_request(format!(
                "invalid package name {:?}: use lower-case letters, digits, '-', '.', '_' and \
                 '~', optionally under an @scope/",
                text.chars().take(64).collect::<String>()
            ))
        };
        if text.len() > Self::MAX_LEN {
            return Err(invalid());
        }
        let (scope, base) = match text.strip_prefix('@') {
            Some(scoped) => {
                let (scope, base) = scoped.split_once('/').ok_or_else(invalid)?;
                if !valid_part(scope) {
                    return Err(invalid());
                }
                (Some(scope), base)
            }
            None => (None, text),
        };
        if !valid_part(base) {
            return Err(invalid());
        }
        Ok(Self {
            full: text.to_owned(),
            base: base.to_owned(),
            scope: scope.map(str::to_owned),
        })
    }

    /// Whether the name has a scope.
    /// The scope, without its `@`, of a scoped name.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    pub fn is_scoped(&self) -> bool {
        self.scope.is_some()
    }

    /// Whether `scope` (without its `@`) can name a scope.
    pub fn valid_scope(scope: &str) -> bool {
        valid_part(scope)
    }

    fn scoped(scope: &str, name: &str) -> Result<Self, ApiError> {
        if !scope.starts_with('@') {
            return Err(ApiError::not_found("no such package"));
        }
        Self::parse(&format!("{scope}/{name}"))
    }

    pub fn tarball_name(&self, version: &str) -> String {
        format!("{}-{version}.tgz", self.base)
    }
}

/// The visibility a publish asks for. A new package is private with `restricted`, and
/// so is a new scoped one without `--access` (as on npm); an existing package keeps its
/// visibility, and a publish that asks for the other one is refused rather than ignored
/// (`npm access set status=…` changes it).
fn visibility_of_publish(
    name: &PackageName,
    access: Option<&str>,
    existing: Option<Visibility>,
) -> Result<Visibility, ApiError> {
    let asked = match access {
        None => None,
        Some("public") => Some(Visibility::Public),
        Some("restricted") => Some(Visibility::Private),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "access {:?} is not supported: use public or restricted",
                other.chars().take(64).collect::<String>()
            )));
        }
    };
    match (existing, asked) {
        (Some(current), Some(asked)) if asked != current => Err(ApiError::bad_request(format!(
            "{name} is {}; change that with `npm access set status={}`, not with a publish",
            if current == Visibility::Public {
                "public"
            } else {
                "private"
            },
            if asked == Visibility::Public {
                "public"
            } else {
                "private"
            },
        ))),
        (Some(current), _) => Ok(current),
        (None, Some(Visibility::Private)) if !name.is_scoped() => Err(ApiError::bad_request(
            format!("{name} is not scoped: only scoped packages can be private"),
        )),
        (None, Some(asked)) => Ok(asked),
        (None, None) if name.is_scoped() => Ok(Visibility::Private),
        (None, None) => Ok(Visibility::Public),
    }
}

/// The package a write touches, for the token gate: read from exactly the path segments
/// the router matched (axum's `MatchedPath`, which `Router::layer` puts in place before
/// the gate runs): the `{name}` segment, or `{scope}` and `{name}`, percent-decoded as the
/// router decodes them. `None` for a route that names no package, and for a name that is
/// not one (the handler refuses it too). Reads resolve to nothing here: public packages
/// are anyone's to read (a token limited to some packages must still install the others),
/// and private ones are checked by `access::readable`.
pub fn resource_of(request: &RequestHead<'_>) -> Option<Resource> {
    if Action::of_method(request.method) == Action::Read {
        return None;
    }
    let route = request.extensions.get::<axum::extract::MatchedPath>()?;
    package_in_route(route.as_str(), request.uri.path()).map(|name| Resource::new(name.full))
}

/// The package that `path` names where the route `template` has `{name}` (and maybe
/// `{scope}`); `None` when it has neither, the two do not line up, or the name is invalid.
fn package_in_route(template: &str, path: &str) -> Option<PackageName> {
    let mut scope = None;
    let mut name = None;
    let mut segments = path.split('/');
    for part in template.split('/') {
        let segment = segments.next()?;
        match part {
            "{scope}" => scope = Some(percent_decode(segment)?),
            "{name}" => name = Some(percent_decode(segment)?),
            _ => {}
        }
    }
    if segments.next().is_some() {
        return None;
    }
    match (scope, name?) {
        (Some(scope), name) => PackageName::scoped(&scope, &name).ok(),
        (None, name) => PackageName::parse(&name).ok(),
    }
}

/// `%XX` escapes decoded; `None` for a broken escape or text that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Whether `who` may write to `name`: its token's grant on the package decides, with the
/// message the gate would give (npm prints it after E403).
pub fn check_write(who: &Authenticated, name: &PackageName) -> Result<(), ApiError> {
    who.check(Action::Write, &Resource::new(name.full.clone()))
        .map_err(|rejection| ApiError::forbidden(rejection.message()))
}

impl std::fmt::Display for PackageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full)
    }
}

fn valid_part(part: &str) -> bool {
    let mut bytes = part.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'~'))
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_' | b'~')
        })
}

/// A dist-tag: a short name that is not itself a version (npm would read it as one).
pub fn valid_tag(tag: &str) -> bool {
    let looks_like_version = tag
        .trim_start_matches('v')
        .starts_with(|c: char| c.is_ascii_digit());
    !tag.is_empty()
        && tag.len() <= 64
        && !looks_like_version
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// A version as file names can carry it: starts with a digit, then letters, digits,
/// `.`, `-` and `+`; never `..`.
pub fn valid_version(version: &str) -> bool {
    version.len() <= 128
        && version.starts_with(|c: char| c.is_ascii_digit())
        && !version.contains("..")
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
}

/// A publish document as npm sends it (`libnpmpublish`): one version, one tarball. Fields
/// npm does not send are refused by name, never ignored. The tarball's base64 is borrowed
/// from the request body, not copied.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest<'a> {
    #[serde(rename = "_id")]
    _id: Option<Cow<'a, str>>,
    name: String,
    #[serde(rename = "description", default)]
    _description: Option<Value>,
    /// `public` or `restricted`; npm sends `null` when `--access` is not given.
    #[serde(default)]
    access: Option<String>,
    versions: Map<String, Value>,
    #[serde(rename = "dist-tags", default)]
    dist_tags: BTreeMap<String, String>,
    #[serde(rename = "_attachments", borrow)]
    attachments: BTreeMap<String, Attachment<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Attachment<'a> {
    #[serde(rename = "content_type", default)]
    _content_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Cow<'a, str>,
    length: Option<u64>,
}

/// What a `PUT /<name>` body is, told by its top-level fields before it is parsed whole:
/// only what is named here is looked at, the rest is skipped without being kept.
#[derive(Deserialize)]
struct PutShape {
    versions: Option<serde::de::IgnoredAny>,
    #[serde(rename = "_attachments")]
    attachments: Option<serde::de::IgnoredAny>,
    users: Option<serde::de::IgnoredAny>,
}

/// A publish that passed every check, ready to be written.
pub struct Checked {
    version: String,
    manifest: Value,
    tarball: Vec<u8>,
    /// The tags this publish puts on its version (`npm publish --tag beta`).
    tags: Vec<String>,
}

/// Everything about a publish that can be wrong, checked before anything is written.
fn check_publish(name: &PackageName, request: PublishRequest<'_>) -> Result<Checked, ApiError> {
    if request.name != name.full {
        return Err(ApiError::bad_request(
            "the package name in the body does not match the one in the URL",
        ));
    }
    let mut versions = request.versions.into_iter();
    let (version, manifest) = match (versions.next(), versions.next()) {
        (Some(only), None) => only,
        _ => {
            return Err(ApiError::bad_request(
                "publish exactly one version at a time",
            ));
        }
    };
    if !valid_version(&version) {
        return Err(ApiError::bad_request(format!(
            "invalid version {version:?}"
        )));
    }
    if !manifest.is_object() {
        return Err(ApiError::bad_request(
            "the version's manifest must be an object",
        ));
    }
    if manifest.get("dist").is_some_and(|dist| !dist.is_object()) {
        return Err(ApiError::bad_request(
            "the version's dist must be an object",
        ));
    }
    for tag in request.dist_tags.keys() {
        if !valid_tag(tag) {
            return Err(ApiError::bad_request(format!(
                "invalid dist-tag {:?}: use letters, digits, '-', '.' and '_', not a version",
                tag.chars().take(64).collect::<String>()
            )));
        }
    }
    let tags: Vec<String> = request.dist_tags.keys().cloned().collect();
    if let Some((tag, tagged)) = request.dist_tags.iter().find(|(_, v)| **v != version) {
        return Err(ApiError::bad_request(format!(
            "dist-tag {tag:?} points at {tagged:?}, which this publish does not contain"
        )));
    }
    let tarball_name = name.tarball_name(&version);
    // npm names a scoped package's attachment after the full name.
    let full_tarball_name = format!("{}-{version}.tgz", name.full);
    let mut attachments = request.attachments.into_iter();
    let attachment = match (attachments.next(), attachments.next()) {
        (Some((file, attachment)), None) if file == tarball_name || file == full_tarball_name => {
            attachment
        }
        (Some((file, _)), None) => {
            return Err(ApiError::bad_request(format!(
                "the attachment must be named {tarball_name:?}, not {:?}",
                file.chars().take(64).collect::<String>()
            )));
        }
        _ => return Err(ApiError::bad_request("attach exactly one tarball")),
    };
    let tarball = base64::engine::general_purpose::STANDARD
        .decode(attachment.data.as_bytes())
        .map_err(|_| ApiError::bad_request("the tarball is not valid base64"))?;
    if tarball.is_empty() || attachment.length.is_some_and(|n| n != tarball.len() as u64) {
        return Err(ApiError::bad_request(
            "the tarball is empty or its length is wrong",
        ));
    }
    Ok(Checked {
        version,
        manifest,
        tarball,
        tags,
    })
}

/// Largest a package's metadata (its packument, every version's manifest) may grow.
const MAX_PACKUMENT_BYTES: usize = 8 * 1024 * 1024;

/// Longest README kept in a packument.
const MAX_README_BYTES: u64 = 256 * 1024;

/// Most bytes inflated from a tarball in looking for its README: npm's tarballs are small,
/// and a gzip bomb (8 MB that inflate to 8 GiB) stops here.
pub const MAX_INFLATED_BYTES: u64 = 32 * 1024 * 1024;

/// The README at the top of an npm tarball (`package/README…`), if there is one: its file
/// name and text. A tarball that cannot be read has none, and neither has one whose
/// README lies past [`MAX_INFLATED_BYTES`] of inflated data; the publish goes on.
fn readme_of(tarball: &[u8]) -> Option<(String, String)> {
    use std::io::Read;
    let inflated = flate2::read::GzDecoder::new(tarball).take(MAX_INFLATED_BYTES);
    let mut archive = tar::Archive::new(inflated);
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.to_string_lossy().into_owned();
        let Some(file) = path.strip_prefix("package/") else {
            continue;
        };
        if file.contains('/') || !file.to_ascii_lowercase().starts_with("readme") {
            continue;
        }
        let mut text = String::new();
        entry
            .by_ref()
            .take(MAX_README_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        return Some((file.to_owned(), text));
    }
    None
}

/// Writes a changed package over the one it was read as (a 409 if it has changed since).
pub async fn save_changed(
    state: &AppState,
    name: &PackageName,
    package: &mut access::Package,
) -> Result<(), ApiError> {
    let write = package.replacing();
    save_packument(state, name, &mut package.packument, write).await
}

/// Writes the packument with a new `_rev`, which npm sends back when it changes owners. A
/// new package needs its access rules; an existing one keeps its own.
pub async fn save_packument(
    state: &AppState,
    name: &PackageName,
    packument: &mut Value,
    write: crate::db::PackageWrite,
) -> Result<(), ApiError> {
    next_rev(packument);
    Ok(state.db().put_packument(name, packument, write).await?)
}

/// Gives the packument the `_rev` after its own, which npm sends back when it changes
/// owners.
pub fn next_rev(packument: &mut Value) {
    let revision = packument["_rev"]
        .as_str()
        .and_then(|rev| rev.split_once('-'))
        .and_then(|(n, _)| n.parse::<u64>().ok())
        .unwrap_or(0);
    packument["_rev"] = json!(format!("{}-tokengate", revision + 1));
}

/// (`versions` only), or `npm star` / `npm unstar` (`users` only).
pub async fn put(
    state: State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: JsonBytes,
) -> Result<Response, ApiError> {
    put_named(state, who, &headers, PackageName::parse(&name)?, body).await
}

pub async fn put_scoped(
    state: State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path((scope, name)): Path<(String, String)>,
    body: JsonBytes,
) -> Result<Response, ApiError> {
    put_named(
        state,
        who,
        &headers,
        PackageName::scoped(&scope, &name)?,
        body,
    )
    .await
}

/// This route's gate has no second-factor check (only the body tells a star from a
/// publish), so every branch but the star checks the package's rules here.
async fn put_named(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: &HeaderMap,
    name: PackageName,
    body: JsonBytes,
) -> Result<Response, ApiError> {
    let who = who.ok_or_else(ApiError::needs_login)?;
    let shape: PutShape = body.parse()?;
    match (shape.versions, shape.attachments, shape.users) {
        (None, None, Some(_)) => {
            tfa::check_package_write(&state, &who, &name, headers, WriteRules::AccountOnly).await?;
            crate::controllers::stars::change(&state, who, &name, body.parse()?).await
        }
        (Some(_), None, None) => {
            tfa::check_package_write(&state, &who, &name, headers, WriteRules::PackageAndAccount)
                .await?;
            crate::controllers::packages::lifecycle::deprecate(&state, who, &name, body.parse()?)
                .await
        }
        (Some(_), Some(_), None) => {
            check_write(&who, &name)?;
            let (access, checked, readme) = read_release(&name, body).await?;
            tfa::check_package_write(&state, &who, &name, headers, WriteRules::PackageAndAccount)
                .await?;
            release(
                &state,
                &who,
                &name,
                access.as_deref(),
                checked,
                readme,
                Outcome::Publish,
            )
            .await
        }
        _ => Err(ApiError::bad_request(
            "invalid request body: a publish has `versions` and `_attachments`, a \
             deprecation `versions` only, and a star `users` only",
        )),
    }
}

/// What a release that passed every check does: goes live, or waits for approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `npm publish`: the version is live at once.
    Publish,
    /// `npm stage publish`: the version is reserved and kept aside until a maintainer
    /// approves it (`controllers::stage`).
    Stage,
}

/// Everything that can be wrong with a publish document, and the tarball work, before
/// a second factor is asked for and before the registry's lock is taken: the `access`
/// asked for, the checked release, and the README in its tarball.
pub async fn read_release(
    name: &PackageName,
    body: JsonBytes,
) -> Result<(Option<String>, Checked, Option<(String, String)>), ApiError> {
    let request: PublishRequest<'_> = body.parse()?;
    let access = request.access.clone();
    let checked = check_publish(name, request)?;
    drop(body);
    // The tarball moves to the blocking thread and back, never copied.
    let (checked, readme) = tokio::task::spawn_blocking(move || {
        let readme = readme_of(&checked.tarball);
        (checked, readme)
    })
    .await
    .map_err(|e| ApiError::internal("cannot read the tarball", e))?;
    Ok((access, checked, readme))
}

/// The layer has already refused read-only tokens (PUT is a write, a stage upload a
/// stage); what is left is who may release this package and whether the version is new.
/// A publish and a stage go through exactly the same checks, and differ only at the end.
pub async fn release(
    state: &AppState,
    who: &Authenticated,
    name: &PackageName,
    access: Option<&str>,
    checked: Checked,
    readme: Option<(String, String)>,
    outcome: Outcome,
) -> Result<Response, ApiError> {
    let _writing = state.write_lock().await;
    let existing = access::load(state, name, Some(who.owner())).await?;
    // A package the publisher cannot see goes through exactly the checks a package that
    // does not exist would, so that the answers do not tell the two apart.
    let hidden = existing
        .as_ref()
        .is_some_and(|package| !package.readable_by(Some(who), name));
    if existing.is_none() && who.kind() == tokengate::TokenKind::Exchanged {
        return Err(ApiError::forbidden(format!(
            "a token from trusted publishing publishes new versions of an existing package, \
             and {name} does not exist (any more): publish it with a maintainer's token"
        )));
    }
    if let Some(package) = existing.as_ref().filter(|_| !hidden) {
        if !package.publishable_by_reader() {
            return Err(ApiError::forbidden(format!(
                "you do not have permission to publish {:?}: it belongs to another user",
                name.full
            )));
        }
    }
    let visibility = visibility_of_publish(
        name,
        access,
        existing.as_ref().filter(|_| !hidden).map(|p| p.visibility),
    )?;
    // The scope's owner decides who starts packages in it; an existing package's
    // maintainers publish it wherever it lives.
    let scope = match (&name.scope, existing.is_none() || hidden) {
        (Some(scope), true) => Some((scope, scopes::check(state, scope, who.owner()).await?)),
        _ => None,
    };
    if hidden {
        // Their own scope, yet a package in it they cannot see (they left its maintainers).
        return Err(ApiError::forbidden(format!(
            "you do not have permission to publish {name}"
        )));
    }
    if outcome == Outcome::Stage && existing.is_none() {
        return Err(ApiError::bad_request(format!(
            "{name} does not exist yet: publish its first version with npm publish; later \
             versions can be staged"
        )));
    }
    if outcome == Outcome::Publish && existing.is_some() {
        crate::controllers::stage::rule::check_direct_publish(state, name).await?;
    }
    let read = existing.as_ref().map(|package| package.revision);
    let mut packument = match existing {
        Some(package) => package.packument,
        None => json!({
            "_id": name.full,
            "name": name.full,
            "versions": {},
            "dist-tags": {},
            "time": {},
            "maintainers": [crate::controllers::packages::owners::maintainer_entry(state, who.owner()).await?],
        }),
    };
    // A staged version is reserved: neither published over nor staged twice.
    if let Some(id) = state.db().stage_of(name, &checked.version).await? {
        return Err(crate::controllers::stage::reserved(
            name,
            &checked.version,
            &id,
        ));
    }
    let (tarball, digest) = tokio::task::spawn_blocking(move || {
        let digest = crate::db::Digest::of(&checked.tarball);
        (bytes::Bytes::from(checked.tarball), digest)
    })
    .await
    .map_err(|e| ApiError::internal("cannot read the tarball", e))?;
    let mut manifest = checked.manifest;
    if !manifest["dist"].is_object() {
        manifest["dist"] = json!({});
    }
    match manifest["dist"]["integrity"].as_str() {
        None => manifest["dist"]["integrity"] = json!(digest.integrity()),
        Some(stated) if crate::db::Digest::from_integrity(stated) == Some(digest) => {}
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "dist.integrity of {}@{} does not match the attached tarball (or names no \
                 sha512): the publish is refused, not corrected",
                name.full, checked.version
            )));
        }
    }
    let new_version = NewVersion {
        version: checked.version,
        manifest,
        tags: checked.tags,
        readme,
    };
    // Checked in full for a stage too, so that its approval cannot fail on size.
    let publisher =
        crate::controllers::packages::owners::maintainer_entry(state, who.owner()).await?;
    let staged = new_version.clone();
    add_version(&mut packument, name, new_version, publisher)?;
    // The tarball first: a crash between the two leaves a file nobody names, never a
    // version without its bytes.
    save_tarball(state, tarball.clone(), digest).await?;
    if outcome == Outcome::Stage {
        let kept = crate::controllers::stage::keep(state, who, name, staged, digest).await?;
        save_tarball(state, tarball, digest).await?;
        return Ok(kept);
    }
    let access = crate::db::Access {
        visibility,
        mfa: PackageMfa::None,
    };
    // A new scoped package claims its scope in the same transaction, so that two first
    // publishes into one scope (on two nodes) cannot both win.
    let org_scope = match &scope {
        Some((scope, scopes::Ownership::Org)) => Some(scope.to_string()),
        _ => None,
    };
    if let (None, Some(_)) = (read, &org_scope) {
        // A new package of the organisation's starts with no team's access but what
        // `developers` gets below: a grant left from an earlier package of the name
        // (unpublished since) is not its.
        crate::controllers::orgs::teams::take_from_every_team(state, name).await?;
    }
    let write = match (read, scope) {
        (Some(revision), _) => crate::db::PackageWrite::Replacing { revision },
        // The organisation owns its scope: nothing to claim.
        (None, Some((_, scopes::Ownership::Org))) => crate::db::PackageWrite::NewInOrg(access),
        (None, Some(_)) => crate::db::PackageWrite::NewInScope {
            access,
            publisher: who.owner().to_owned(),
        },
        (None, None) => crate::db::PackageWrite::New(access),
    };
    save_packument(state, name, &mut packument, write).await?;
    // Again, now that the version names it: see `save_tarball`.
    save_tarball(state, tarball, digest).await?;
    if let Some(org) = org_scope {
        scopes::grant_developers(state, &org, name).await?;
    }
    tracing::info!(
        package = name.full,
        version = staged.version,
        user = who.owner(),
        "published"
    );
    Ok((StatusCode::CREATED, Json(json!({ "ok": true }))).into_response())
}

/// Keeps the tarball (nothing to do when its file is there). A publish calls it before
/// its row is committed, so that a crash leaves at most a file nobody names, and again
/// after: another node may have removed the same bytes, named by nothing then, after
/// this publish found the file there and before the row was committed (see
/// [`crate::db::blobs`]).
async fn save_tarball(
    state: &AppState,
    tarball: bytes::Bytes,
    digest: crate::db::Digest,
) -> Result<(), ApiError> {
    state
        .blobs()
        .put(tarball, digest)
        .await
        .map_err(|e| ApiError::internal("cannot save the tarball", e))
}

/// A version about to join its package: checked, with its integrity set.
#[derive(Clone, Debug)]
pub struct NewVersion {
    pub version: String,
    pub manifest: Value,
    /// The tags it goes under (`npm publish --tag beta`).
    pub tags: Vec<String>,
    /// The README found in its tarball: file name and text.
    pub readme: Option<(String, String)>,
}

/// Puts `version` into `packument` as published now by `publisher` (`_npmUser`): its
/// manifest, tags (and `latest` on a first version, or when no tag is asked for), times
/// and README. Refused when the version is there already, or the metadata would grow past
/// [`MAX_PACKUMENT_BYTES`].
pub fn add_version(
    packument: &mut Value,
    name: &PackageName,
    version: NewVersion,
    publisher: Value,
) -> Result<(), ApiError> {
    let NewVersion {
        version,
        mut manifest,
        tags,
        readme,
    } = version;
    if packument["versions"].get(&version).is_some() {
        return Err(ApiError::forbidden(format!(
            "cannot publish over the previously published version {version}"
        )));
    }
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    // What `npm view` shows: who published it.
    manifest["_npmUser"] = publisher;
    if let Some((file, readme)) = readme {
        packument["readme"] = json!(readme);
        packument["readmeFilename"] = json!(file);
    }
    packument["versions"][&version] = manifest;
    if !packument["dist-tags"].is_object() {
        packument["dist-tags"] = json!({});
    }
    let first = packument["dist-tags"].get("latest").is_none();
    for tag in &tags {
        packument["dist-tags"][tag] = json!(version);
    }
    if first || tags.is_empty() {
        packument["dist-tags"]["latest"] = json!(version);
    }
    packument["time"][&version] = json!(now);
    packument["time"]["modified"] = json!(now);
    if packument["time"].get("created").is_none() {
        packument["time"]["created"] = json!(now);
    }
    // Every read of the package parses its metadata: it is bounded, and checked before
    // anything is written.
    let size = serde_json::to_vec(&packument).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_PACKUMENT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{name}'s metadata would grow past {} MiB with this version: trim the manifest \
                 (or unpublish old versions)",
                MAX_PACKUMENT_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(())
}

pub async fn packument(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    serve_packument(&state, who.as_ref(), &headers, PackageName::parse(&name)?).await
}

pub async fn packument_scoped(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    headers: HeaderMap,
    Path((scope, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let name = PackageName::scoped(&scope, &name)?;
    serve_packument(&state, who.as_ref(), &headers, name).await
}

/// npm's abbreviated install document, which `npm install` asks for.
const INSTALL_DOCUMENT: &str = "application/vnd.npm.install-v1+json";

/// The document the `Accept` header asks for: the abbreviated one when it is named
/// before (or without) plain JSON, as npm sends it.
fn document_asked(headers: &HeaderMap) -> crate::db::Document {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let first = accept
        .split(',')
        .map(|part| part.split(';').next().unwrap_or_default().trim())
        .find(|kind| *kind == INSTALL_DOCUMENT || *kind == "application/json");
    if first == Some(INSTALL_DOCUMENT) {
        crate::db::Document::Abbreviated
    } else {
        crate::db::Document::Full
    }
}

/// The packument (or its abbreviated form), with each tarball URL pointing back at this
/// server; `304` when the reader's `If-None-Match` names what it would get.
async fn serve_packument(
    state: &AppState,
    who: Option<&Authenticated>,
    headers: &HeaderMap,
    name: PackageName,
) -> Result<Response, ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
        })
        .unwrap_or("localhost");
    let which = document_asked(headers);
    let rule = state
        .db()
        .read_rule(&name, who.map(Authenticated::owner))
        .await?
        .filter(|rule| access::rule_allows(*rule, who, &name))
        .ok_or_else(|| access::not_found(&name))?;
    // The tag changes with every write to the package, and with the host the URLs name.
    let vary = [(header::VARY, "Accept, Authorization")];
    let asked = |etag: &str| {
        headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag))
    };
    let etag = entity_tag(rule.revision, which, host);
    if asked(&etag) {
        return Ok((StatusCode::NOT_MODIFIED, vary, [(header::ETAG, etag)]).into_response());
    }
    let content_type = match which {
        crate::db::Document::Abbreviated => INSTALL_DOCUMENT,
        crate::db::Document::Full => "application/json",
    };
    let send = |etag: String, bytes: bytes::Bytes| {
        (
            [(header::CONTENT_TYPE, content_type)],
            vary,
            [(header::ETAG, etag)],
            bytes,
        )
            .into_response()
    };
    if let Some(bytes) = state.rendered().get(&name.full, which, host, rule.revision) {
        return Ok(send(etag, bytes));
    }
    let Some(stored) = state.db().document(&name, which).await? else {
        return Err(access::not_found(&name));
    };
    // A write between the two reads (made private, say, or deleted and published again by
    // someone else): the document is sent only under the rule of its own revision.
    if stored.revision != rule.revision {
        let now = state
            .db()
            .read_rule(&name, who.map(Authenticated::owner))
            .await?
            .filter(|now| access::rule_allows(*now, who, &name))
            .ok_or_else(|| access::not_found(&name))?;
        if now.revision != stored.revision {
            let mut busy = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{name} is changing right now: try again"),
            );
            busy.retry_after(axum::http::HeaderValue::from(1u32));
            return Err(busy);
        }
    }
    let mut packument: Value = serde_json::from_str(&stored.json)
        .map_err(|e| ApiError::internal("a stored package is damaged", e))?;
    if let Some(versions) = packument["versions"].as_object_mut() {
        for (version, manifest) in versions.iter_mut() {
            let url = format!(
                "http://{host}/{}/-/{}",
                name.full,
                name.tarball_name(version)
            );
            // Written over whatever is there: a stored `dist` that is not an object must
            // not break every read of the package.
            if !manifest["dist"].is_object() {
                manifest["dist"] = json!({});
            }
            manifest["dist"]["tarball"] = json!(url);
        }
    }
    let bytes = bytes::Bytes::from(
        serde_json::to_vec(&packument)
            .map_err(|e| ApiError::internal("cannot write a package's document", e))?,
    );
    state
        .rendered()
        .put(&name.full, which, host, stored.revision, bytes.clone());
    Ok(send(entity_tag(stored.revision, which, host), bytes))
}

/// A packument's `ETag`: its revision, which document, and the host its URLs name. The
/// host is hashed with SHA-256 (its first 8 bytes), which every node and every build of
/// the registry computes alike, so that nodes behind one load balancer agree on ETags.
fn entity_tag(revision: i64, which: crate::db::Document, host: &str) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(host.as_bytes());
    let kind = match which {
        crate::db::Document::Full => "full",
        crate::db::Document::Abbreviated => "install",
    };
    let mut tag = format!("\"{revision}-{kind}-");
    for byte in &digest[..8] {
        // Writing to a String cannot fail.
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    tag
}

pub async fn tarball(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((name, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    serve_tarball(&state, who.as_ref(), PackageName::parse(&name)?, &file).await
}

pub async fn tarball_scoped(
    State(state): State<AppState>,
    who: Option<Authenticated>,
    Path((scope, name, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let name = PackageName::scoped(&scope, &name)?;
    serve_tarball(&state, who.as_ref(), name, &file).await
}

async fn serve_tarball(
    state: &AppState,
    who: Option<&Authenticated>,
    name: PackageName,
    file: &str,
) -> Result<Response, ApiError> {
    let found = state
        .db()
        .tarball(&name, file, who.map(Authenticated::owner))
        .await?;
    let Some(row) = found else {
        // The same answer for a package the reader may not see as for one that is not
        // there; a readable package without this file says so.
        let rule = state
            .db()
            .read_rule(&name, who.map(Authenticated::owner))
            .await?;
        return Err(match rule {
            Some(rule) if access::rule_allows(rule, who, &name) => {
                ApiError::not_found("no such tarball")
            }
            _ => access::not_found(&name),
        });
    };
    if !access::rule_allows(row.rule, who, &name) {
        return Err(access::not_found(&name));
    }
    send_tarball(state, &row.digest).await
}

/// The tarball with this digest, streamed from where it is kept.
pub async fn send_tarball(
    state: &AppState,
    digest: &crate::db::Digest,
) -> Result<Response, ApiError> {
    let blob = state
        .blobs()
        .open(digest)
        .await
        .map_err(|e| ApiError::internal("cannot read the tarball", e))?
        .ok_or_else(|| ApiError::internal("cannot read the tarball", "its file is missing"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, blob.length.to_string()),
        ],
        blob.body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_are_the_same_on_every_node_and_build() {
        // The host's part is the first 8 bytes of SHA-256("registry.example.com")
        // (`printf registry.example.com | sha256sum`): a value no process or Rust release
        // changes, so two registry nodes answer the same ETag for the same revision.
        let host = "registry.example.com";
        assert_eq!(
            entity_tag(7, crate::db::Document::Full, host),
            "\"7-full-1752fe171ea06d7a\""
        );
        assert_eq!(
            entity_tag(7, crate::db::Document::Abbreviated, host),
            "\"7-install-1752fe171ea06d7a\""
        );
        assert_eq!(
            entity_tag(7, crate::db::Document::Full, host),
            entity_tag(7, crate::db::Document::Full, host),
            "two computations agree"
        );
        assert_ne!(
            entity_tag(7, crate::db::Document::Full, host),
            entity_tag(7, crate::db::Document::Full, "other.example.com"),
            "another host, another tag"
        );
    }
}
