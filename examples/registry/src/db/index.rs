//! What the database keeps beside a packument, derived from it as it is written: the rows
//! that queries read instead of parsing packuments, and the abbreviated install document.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::controllers::packages::PackageName;

/// A tarball's SHA-512, which names its file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 64]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha512::digest(bytes).into())
    }

    /// The SHA-512 named in an npm `integrity` string (`sha512-<base64>`, perhaps among
    /// other hashes).
    pub fn from_integrity(integrity: &str) -> Option<Self> {
        integrity
            .split_ascii_whitespace()
            .filter_map(|hash| hash.strip_prefix("sha512-"))
            .find_map(|encoded| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()?;
                bytes.try_into().ok().map(Self)
            })
    }

    /// npm's `integrity` string for this digest.
    pub fn integrity(&self) -> String {
        format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }

    /// Lower-case hex, as files and rows name it.
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The digest a row names, if it is one.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 128 {
            return None;
        }
        let mut bytes = [0u8; 64];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({})", &self.to_hex()[..16])
    }
}

/// One published version, as the tarball route finds it.
pub struct VersionRow {
    pub version: String,
    pub tarball: String,
    pub digest: Digest,
}

/// Everything the database keeps about a package besides its packument.
pub struct PackageIndex {
    pub description: String,
    /// Space-separated, lower-case.
    pub keywords: String,
    pub latest: String,
    pub modified: String,
    pub maintainers: Vec<String>,
    pub stars: Vec<String>,
    pub versions: Vec<VersionRow>,
    pub dist_tags: Vec<(String, String)>,
    /// The abbreviated install document, serialized.
    pub abbreviated: String,
    /// What a search shows besides name, version, description and keywords, serialized.
    pub summary: String,
}

/// What npm reads of a version when it installs (its "corgi" document).
const INSTALL_FIELDS: &[&str] = &[
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "acceptDependencies",
    "bin",
    "directories",
    "dist",
    "engines",
    "cpu",
    "os",
    "libc",
    "_hasShrinkwrap",
    "hasInstallScript",
];

impl PackageIndex {
    /// The index of `packument`. A version whose tarball digest is unknown cannot be
    /// served, so it is an error here, never a row without one.
    pub fn of(name: &PackageName, packument: &Value) -> Result<Self, String> {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        let latest = text(&packument["dist-tags"]["latest"]);
        let newest = &packument["versions"][&latest];
        let description = match newest["description"].as_str() {
            Some(description) => description.to_owned(),
            None => text(&packument["description"]),
        };
        let keywords = newest["keywords"]
            .as_array()
            .or_else(|| packument["keywords"].as_array())
            .map(|all| {
                all.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let maintainers = crate::controllers::packages::access::maintainer_names(packument)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let stars = packument["users"]
            .as_object()
            .map(|users| {
                users
                    .iter()
                    .filter(|(_, starred)| starred.as_bool() == Some(true))
                    .map(|(user, _)| user.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut versions = Vec::new();
        let mut abbreviated_versions = Map::new();
        if let Some(all) = packument["versions"].as_object() {
            for (version, manifest) in all {
                let digest = manifest["dist"]["integrity"]
                    .as_str()
                    .and_then(Digest::from_integrity)
                    .ok_or_else(|| {
                        format!("version {version} of {name} has no sha512 integrity")
                    })?;
                versions.push(VersionRow {
                    version: version.clone(),
                    tarball: name.tarball_name(version),
                    digest,
                });
                let kept: Map<String, Value> = INSTALL_FIELDS
                    .iter()
                    .filter_map(|field| Some(((*field).to_owned(), manifest.get(*field)?.clone())))
                    .collect();
                abbreviated_versions.insert(version.clone(), Value::Object(kept));
            }
        }
        let dist_tags = packument["dist-tags"]
            .as_object()
            .map(|tags| {
                tags.iter()
                    .filter_map(|(tag, version)| Some((tag.clone(), version.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let modified = text(&packument["time"]["modified"]);
        let abbreviated = json!({
            "name": name.to_string(),
            "modified": modified,
            "dist-tags": packument["dist-tags"],
            "versions": abbreviated_versions,
        })
        .to_string();
        let publisher = &newest["_npmUser"];
        let summary = json!({
            "date": packument["time"][&latest],
            "publisher": { "username": publisher["name"], "email": publisher["email"] },
            "maintainers": packument["maintainers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| json!({ "username": m["name"], "email": m["email"] }))
                .collect::<Vec<_>>(),
        })
        .to_string();
        Ok(Self {
            summary,
            description,
            keywords,
            latest,
            modified,
            maintainers,
            stars,
            versions,
            dist_tags,
            abbreviated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integrity_string_names_its_sha512() {
        let digest = Digest::of(b"hello");
        struct Case {
            name: &'static str,
            integrity: String,
            found: bool,
        }
        let cases = [
            Case {
                name: "sha512 alone",
                integrity: digest.integrity(),
                found: true,
            },
            Case {
                name: "sha512 after sha1",
                integrity: format!("sha1-AAAA {}", digest.integrity()),
                found: true,
            },
            Case {
                name: "sha1 only",
                integrity: "sha1-qvTGHdzF6KLavt4PO0gs2a6pQ00=".into(),
                found: false,
            },
            Case {
                name: "sha512 of the wrong length",
                integrity: "sha512-aGVsbG8=".into(),
                found: false,
            },
        ];
        for case in cases {
            let found = Digest::from_integrity(&case.integrity);
            assert_eq!(found.is_some(), case.found, "{}", case.name);
            if let Some(found) = found {
                assert!(found == digest, "{}", case.name);
            }
        }
        assert!(Digest::from_hex(&digest.to_hex()) == Some(digest));
    }

    #[test]
    fn the_abbreviated_document_keeps_what_install_reads_only() {
        let name = PackageName::parse("tool").unwrap();
        let integrity = Digest::of(b"x").integrity();
        let packument = json!({
            "name": "tool",
            "dist-tags": { "latest": "1.0.0" },
            "time": { "modified": "2026-12-02T00:00:00.000Z" },
            "readme": "long text",
            "versions": { "1.0.0": {
                "name": "tool", "version": "1.0.0", "description": "d",
                "dependencies": { "a": "^1" }, "scripts": { "test": "x" },
                "dist": { "integrity": integrity },
            }},
        });
        let index = PackageIndex::of(&name, &packument).unwrap();
        let abbreviated: Value = serde_json::from_str(&index.abbreviated).unwrap();
        assert_eq!(abbreviated["modified"], "2026-12-02T00:00:00.000Z");
        assert!(abbreviated.get("readme").is_none());
        let version = &abbreviated["versions"]["1.0.0"];
        assert_eq!(version["dependencies"]["a"], "^1");
        assert!(version.get("scripts").is_none() && version.get("description").is_none());
        assert_eq!(index.versions[0].tarball, "tool-1.0.0.tgz");
    }
}
