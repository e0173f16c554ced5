//! Opening a data folder written before the database: its JSON files (users, scopes,
//! packuments and access rules) become rows, in one transaction, and its tarballs are
//! copied into the content-addressed folder first. The JSON files are left as they were
//! and never read again.

use std::path::Path;

use serde_json::Value;

use super::blobs::Blobs;
use super::sqlite::{SqliteMetadata, claim_scope_row, put_package_rows, put_user_row};
use super::{Access, DbError, Digest, PackageWrite, User, Visibility};
use crate::controllers::packages::PackageName;

/// What an import found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub users: usize,
    pub packages: usize,
}

#[derive(serde::Deserialize)]
struct ScopeRecord {
    owner: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, DbError> {
    let doing = "import the data folder's JSON files";
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| DbError::new(doing, format!("{} is damaged: {e}", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(DbError::new(
            doing,
            format!("cannot read {}: {error}", path.display()),
        )),
    }
}

fn entries(folder: &Path) -> Result<Vec<std::path::PathBuf>, DbError> {
    let mut found = match std::fs::read_dir(folder) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .collect::<Vec<_>>(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => {
            return Err(DbError::new(
                "import the data folder's JSON files",
                format!("cannot list {}: {error}", folder.display()),
            ));
        }
    };
    found.sort();
    Ok(found)
}

/// Imports `folder`'s JSON files into `db` if the database has no users and no packages
/// yet and the folder has some; `None` when there was nothing to import.
pub async fn import_json_folder(
    db: &SqliteMetadata,
    blobs: &Blobs,
    folder: &Path,
) -> Result<Option<Imported>, DbError> {
    let doing = "import the data folder's JSON files";
    if !folder.join("users").is_dir() && !folder.join("packages").is_dir() {
        return Ok(None);
    }
    if !db.is_empty().await? {
        return Ok(None);
    }
    let mut users: Vec<User> = Vec::new();
    for path in entries(&folder.join("users"))? {
        if path.extension().is_some_and(|e| e == "json") {
            users.extend(read_json::<User>(&path)?);
        }
    }
    let mut scopes: Vec<(String, String)> = Vec::new();
    for path in entries(&folder.join("scopes"))? {
        let scope = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned);
        if let (Some(scope), Some(record)) = (scope, read_json::<ScopeRecord>(&path)?) {
            scopes.push((scope, record.owner));
        }
    }
    let mut packages: Vec<(PackageName, Value, Access)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for dir in entries(&folder.join("packages"))? {
        let Some(mut packument) = read_json::<Value>(&dir.join("packument.json"))? else {
            continue;
        };
        let shown = dir.display().to_string();
        let name = packument["name"]
            .as_str()
            .and_then(|name| PackageName::parse(name).ok())
            .ok_or_else(|| {
                DbError::new(doing, format!("{shown}: the packument has no valid name"))
            })?;
        // Packages from before visibility existed are public.
        let access = read_json::<Access>(&dir.join("access.json"))?.unwrap_or(Access {
            visibility: Visibility::Public,
            mfa: Default::default(),
        });
        let versions: Vec<String> = packument["versions"]
            .as_object()
            .map(|all| all.keys().cloned().collect())
            .unwrap_or_default();
        // What handlers index into must be objects (a stored string there would make the
        // next publish of the package fail).
        for field in ["time", "dist-tags", "versions"] {
            if !packument[field].is_object() {
                packument[field] = serde_json::json!({});
            }
        }
        for version in versions {
            if !crate::controllers::packages::valid_version(&version) {
                return Err(DbError::new(
                    doing,
                    format!(
                        "{shown}: the packument names the version {:?}, which is not a version",
                        version.chars().take(64).collect::<String>()
                    ),
                ));
            }
            let file = dir.join(name.tarball_name(&version));
            let bytes = std::fs::read(&file).map_err(|e| {
                DbError::new(
                    doing,
                    format!(
                        "{shown}: version {version}'s tarball {}: {e}",
                        file.display()
                    ),
                )
            })?;
            let digest = Digest::of(&bytes);
            blobs
                .put(bytes.into(), digest)
                .await
                .map_err(|e| DbError::new(doing, format!("cannot copy {}: {e}", file.display())))?;
            let manifest = &mut packument["versions"][&version];
            let stated = manifest["dist"]["integrity"]
                .as_str()
                .and_then(Digest::from_integrity);
            if stated != Some(digest) {
                // The bytes are what npm will check: the packument says what they are.
                if stated.is_some() {
                    tracing::warn!(package = %name, version, "integrity did not match the tarball; corrected");
                }
                if !manifest["dist"].is_object() {
                    manifest["dist"] = serde_json::json!({});
                }
                manifest["dist"]["integrity"] = Value::String(digest.integrity());
            }
        }
        if !seen.insert(name.to_string()) {
            return Err(DbError::new(
                doing,
                format!("{shown}: a second folder holds the package {name}"),
            ));
        }
        packages.push((name, packument, access));
    }
    let imported = Imported {
        users: users.len(),
        packages: packages.len(),
    };
    db.transaction(doing, move |transaction| {
        for user in &users {
            put_user_row(transaction, user)?;
        }
        for (scope, owner) in &scopes {
            claim_scope_row(transaction, scope, owner)?;
        }
        for (name, packument, access) in &packages {
            put_package_rows(transaction, name, packument, PackageWrite::New(*access))?;
        }
        Ok(())
    })
    .await?;
    Ok(Some(imported))
}
