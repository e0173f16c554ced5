//! Packuments as last sent, so that a read of an unchanged package costs one read of its
//! rule (which every read makes anyway, and which names the current revision) instead of
//! a second read, a parse and a serialisation.
//!
//! Safe across nodes and over deletions: revisions are registry-wide (a package made again
//! under an old name gets a new one), so a document kept under a revision is that
//! revision's document wherever it was rendered; an entry of another revision is never
//! served, only replaced.

use std::sync::Arc;

use bytes::Bytes;

use crate::db::Document;

/// How many bytes of rendered documents are kept, at most.
const CAPACITY_BYTES: u64 = 32 * 1024 * 1024;

/// Which document: the package, the form, and the host its tarball URLs name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    package: String,
    document: Document,
    host: String,
}

impl Key {
    fn new(package: &str, document: Document, host: &str) -> Self {
        Self {
            package: package.to_owned(),
            document,
            host: host.to_owned(),
        }
    }
}

/// A rendered document and the revision it was rendered from.
struct Rendered {
    revision: i64,
    bytes: Bytes,
}

/// The documents last sent, bounded by their size.
pub struct RenderedDocuments {
    cache: moka::sync::Cache<Key, Arc<Rendered>>,
}

impl Default for RenderedDocuments {
    fn default() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                .weigher(|key: &Key, value: &Arc<Rendered>| {
                    let size = key.package.len() + key.host.len() + value.bytes.len();
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }
}

impl RenderedDocuments {
    /// The document of `package` at `revision`, if it was rendered for `host` before.
    pub fn get(
        &self,
        package: &str,
        document: Document,
        host: &str,
        revision: i64,
    ) -> Option<Bytes> {
        self.cache
            .get(&Key::new(package, document, host))
            .filter(|rendered| rendered.revision == revision)
            .map(|rendered| rendered.bytes.clone())
    }

    /// Keeps `bytes`, the document of `package` at `revision` rendered for `host`.
    pub fn put(&self, package: &str, document: Document, host: &str, revision: i64, bytes: Bytes) {
        self.cache.insert(
            Key::new(package, document, host),
            Arc::new(Rendered { revision, bytes }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_revision_asked_for_is_served() {
        let kept = RenderedDocuments::default();
        let doc = Document::Full;
        kept.put("tool", doc, "h", 7, Bytes::from_static(b"seven"));
        assert_eq!(
            kept.get("tool", doc, "h", 7).as_deref(),
            Some(&b"seven"[..])
        );
        assert_eq!(
            kept.get("tool", doc, "h", 8),
            None,
            "a newer revision is not served"
        );
        assert_eq!(
            kept.get("tool", doc, "other", 7),
            None,
            "nor another host's URLs"
        );
        assert_eq!(kept.get("tool", Document::Abbreviated, "h", 7), None);
        kept.put("tool", doc, "h", 8, Bytes::from_static(b"eight"));
        assert_eq!(
            kept.get("tool", doc, "h", 7),
            None,
            "replaced, not kept beside"
        );
    }
}
