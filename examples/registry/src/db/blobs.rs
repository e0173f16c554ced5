//! Tarballs: files named by their SHA-512 under `<data>/tarballs/`, or memory.
//!
//! A tarball is written (and synced) before the row that names it is committed, so a
//! crash leaves at most a file nobody names, never a version without its bytes. Two
//! processes can share the folder: a file's name is its content, so writing one twice
//! writes the same bytes, and each write goes to a file of its own, renamed into place.
//!
//! A file that one node removes can be one that another node is about to name (the same
//! bytes published as another package's version): [`Blobs::remove_unused`] moves the file
//! aside, asks again whether anything names it, and puts it back if something does; a
//! publisher calls [`Blobs::put`] again once its row is committed, which writes the file
//! anew if it was removed in between.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Body;

use super::{DbError, Digest};

/// Where tarballs are kept.
pub enum Blobs {
    Disk(PathBuf),
    Memory(Mutex<HashMap<Digest, bytes::Bytes>>),
}

/// A tarball ready to be sent: its length and a body that streams it.
pub struct BlobBody {
    pub length: u64,
    pub body: Body,
}

impl Blobs {
    /// Tarballs under `folder` (made when missing, readable by its owner only).
    pub fn disk(folder: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&folder)?;
        crate::storage::make_private(&folder, crate::storage::PRIVATE_DIR)?;
        Ok(Self::Disk(folder))
    }

    pub fn memory() -> Self {
        Self::Memory(Mutex::new(HashMap::new()))
    }

    fn path(root: &std::path::Path, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        root.join(&hex[..2]).join(hex)
    }

    /// Keeps `bytes`, whose SHA-512 the caller has computed as `digest` (nothing to do when
    /// the file is there already).
    pub async fn put(&self, bytes: bytes::Bytes, digest: Digest) -> io::Result<()> {
        match self {
            Blobs::Disk(root) => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || {
                    let path = Self::path(&root, &digest);
                    if path.exists() {
                        return Ok(());
                    }
                    let folder = path.parent().expect("a tarball's path has a folder");
                    let mut builder = std::fs::DirBuilder::new();
                    builder.recursive(true);
                    #[cfg(unix)]
                    std::os::unix::fs::DirBuilderExt::mode(
                        &mut builder,
                        crate::storage::PRIVATE_DIR,
                    );
                    builder.create(folder)?;
                    let mut suffix = [0u8; 8];
                    getrandom::fill(&mut suffix).map_err(|e| io::Error::other(e.to_string()))?;
                    let partial = folder.join(format!(
                        ".{}.{:016x}.partial",
                        digest.to_hex(),
                        u64::from_le_bytes(suffix)
                    ));
                    let written = (|| {
                        let mut options = std::fs::OpenOptions::new();
                        options.write(true).create_new(true);
                        #[cfg(unix)]
                        std::os::unix::fs::OpenOptionsExt::mode(
                            &mut options,
                            crate::storage::PRIVATE_FILE,
                        );
                        let mut file = options.open(&partial)?;
                        std::io::Write::write_all(&mut file, &bytes)?;
                        file.sync_all()?;
                        std::fs::rename(&partial, &path)?;
                        // The rename (and a folder just made) last only once their folder
                        // is synced: the row naming this file may be committed next.
                        std::fs::File::open(folder)?.sync_all()?;
                        if let Some(root) = folder.parent() {
                            std::fs::File::open(root)?.sync_all()?;
                        }
                        Ok(())
                    })();
                    if written.is_err() {
                        let _ = std::fs::remove_file(&partial);
                    }
                    written
                })
                .await
                .map_err(io::Error::other)?
            }
            Blobs::Memory(map) => {
                map.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(digest, bytes);
                Ok(())
            }
        }
    }

    /// The tarball, streamed from disk; `None` if its file is gone.
    pub async fn open(&self, digest: &Digest) -> io::Result<Option<BlobBody>> {
        match self {
            Blobs::Disk(root) => {
                let file = match tokio::fs::File::open(Self::path(root, digest)).await {
                    Ok(file) => file,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(error) => return Err(error),
                };
                let length = file.metadata().await?.len();
                let stream = tokio_util::io::ReaderStream::new(file);
                Ok(Some(BlobBody {
                    length,
                    body: Body::from_stream(stream),
                }))
            }
            Blobs::Memory(map) => Ok(map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(digest)
                .map(|bytes| BlobBody {
                    length: bytes.len() as u64,
                    body: Body::from(bytes.clone()),
                })),
        }
    }

    /// Removes the tarball unless `in_use` (asked before and again after the file is moved
    /// aside) says that a version or a stage names it; a file already gone is not an
    /// error. Whether it was removed.
    pub async fn remove_unused<F, Fut>(&self, digest: &Digest, in_use: F) -> Result<bool, DbError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool, DbError>>,
    {
        let doing = "remove a tarball";
        if in_use().await? {
            return Ok(false);
        }
        match self {
            Blobs::Disk(root) => {
                let path = Self::path(root, digest);
                let mut suffix = [0u8; 8];
                getrandom::fill(&mut suffix).map_err(|e| DbError::new(doing, e.to_string()))?;
                let aside = path.with_file_name(format!(
                    ".{}.{:016x}.removing",
                    digest.to_hex(),
                    u64::from_le_bytes(suffix)
                ));
                match tokio::fs::rename(&path, &aside).await {
                    Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
                    other => other.map_err(|e| DbError::new(doing, e))?,
                }
                // Named meanwhile (on another node): back it goes, over the same bytes if
                // their publisher has written them again.
                let named = match in_use().await {
                    Ok(named) => named,
                    Err(error) => {
                        let _ = tokio::fs::rename(&aside, &path).await;
                        return Err(error);
                    }
                };
                if named {
                    tokio::fs::rename(&aside, &path)
                        .await
                        .map_err(|e| DbError::new(doing, e))?;
                    return Ok(false);
                }
                tokio::fs::remove_file(&aside)
                    .await
                    .map_err(|e| DbError::new(doing, e))?;
                Ok(true)
            }
            // One process holds it: nothing can name it between the question and the removal.
            Blobs::Memory(map) => Ok(map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(digest)
                .is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Case {
        name: &'static str,
        /// What each question answers, in turn.
        answers: &'static [bool],
        removed: bool,
    }

    #[tokio::test]
    async fn a_tarball_named_while_it_is_being_removed_stays() {
        let cases = [
            Case {
                name: "named by nothing",
                answers: &[false, false],
                removed: true,
            },
            Case {
                name: "named already",
                answers: &[true],
                removed: false,
            },
            Case {
                name: "named by a publish committed between the two questions",
                answers: &[false, true],
                removed: false,
            },
        ];
        for case in cases {
            let folder = tempfile::tempdir().unwrap();
            let blobs = Blobs::disk(folder.path().join("tarballs")).unwrap();
            let bytes = bytes::Bytes::from_static(b"the same bytes");
            let digest = Digest::of(&bytes);
            blobs.put(bytes, digest).await.unwrap();
            let asked = AtomicUsize::new(0);
            let removed = blobs
                .remove_unused(&digest, || {
                    let turn = asked.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(Ok(case.answers[turn]))
                })
                .await
                .unwrap();
            assert_eq!(removed, case.removed, "{}", case.name);
            assert_eq!(
                blobs.open(&digest).await.unwrap().is_some(),
                !case.removed,
                "{}",
                case.name
            );
            let left: Vec<_> = walk(folder.path());
            assert!(
                left.iter().all(|name| !name.ends_with(".removing")),
                "{}: {left:?}",
                case.name
            );
        }
    }

    fn walk(folder: &std::path::Path) -> Vec<String> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                names.extend(walk(&path));
            } else {
                names.push(path.display().to_string());
            }
        }
        names
    }
}
