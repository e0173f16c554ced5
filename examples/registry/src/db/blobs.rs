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
    /// Files under `root`, the tarballs of one chunk or less also kept in memory as last
    /// read: a file's name is its content, so what is kept never goes stale (and the
    /// caller has decided from the database that someone may read it).
    Disk {
        root: PathBuf,
        small: moka::sync::Cache<Digest, bytes::Bytes>,
    },
    Memory(Mutex<HashMap<Digest, bytes::Bytes>>),
}

/// How many bytes of small tarballs are kept in memory, at most.
const SMALL_CAPACITY_BYTES: u64 = 32 * 1024 * 1024;

/// The bytes a tarball is read in: all of it in one read when it fits, at most this much
/// held at a time when it does not.
const CHUNK_BYTES: u64 = 64 * 1024;

/// A tarball file, opened.
enum Opened {
    /// One chunk or less, read.
    Whole(bytes::Bytes),
    /// Longer, to be streamed.
    Long { length: u64, file: std::fs::File },
}

/// The tarball at `path`, `None` when there is no such file.
fn open_on_disk(path: &std::path::Path) -> io::Result<Option<Opened>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let length = file.metadata()?.len();
    if length > CHUNK_BYTES {
        return Ok(Some(Opened::Long { length, file }));
    }
    let mut bytes = Vec::with_capacity(length as usize);
    io::Read::read_to_end(&mut io::Read::take(&mut file, CHUNK_BYTES + 1), &mut bytes)?;
    // Files are renamed into place whole and never written again: another length means
    // the file is damaged, and sending it under its Content-Length would be wrong.
    if bytes.len() as u64 != length {
        return Err(io::Error::other(format!(
            "{} changed while it was read",
            path.display()
        )));
    }
    Ok(Some(Opened::Whole(bytes.into())))
}

/// A tarball ready to be sent: its length and a body that streams it.
pub struct BlobBody {
    pub length: u64,
    pub body: Body,
}

impl BlobBody {
    fn whole(bytes: bytes::Bytes) -> Self {
        Self {
            length: bytes.len() as u64,
            body: Body::from(bytes),
        }
    }
}

impl Blobs {
    /// Tarballs under `folder` (made when missing, readable by its owner only).
    pub fn disk(folder: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&folder)?;
        crate::storage::make_private(&folder, crate::storage::PRIVATE_DIR)?;
        let small = moka::sync::Cache::builder()
            .max_capacity(SMALL_CAPACITY_BYTES)
            .weigher(|_: &Digest, bytes: &bytes::Bytes| {
                u32::try_from(bytes.len()).unwrap_or(u32::MAX)
            })
            .build();
        Ok(Self::Disk {
            root: folder,
            small,
        })
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
            Blobs::Disk { root, .. } => {
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
            Blobs::Disk { root, small } => {
                if let Some(bytes) = small.get(digest) {
                    return Ok(Some(BlobBody::whole(bytes)));
                }
                let path = Self::path(root, digest);
                // One hop to the blocking pool opens the file, takes its length and, when
                // it fits in one chunk (as most tarballs do), reads it: each hop costs
                // more than the read. A longer one streams a chunk per hop.
                let opened = tokio::task::spawn_blocking(move || open_on_disk(&path))
                    .await
                    .map_err(io::Error::other)??;
                Ok(opened.map(|opened| match opened {
                    Opened::Whole(bytes) => {
                        small.insert(*digest, bytes.clone());
                        BlobBody::whole(bytes)
                    }
                    Opened::Long { length, file } => BlobBody {
                        length,
                        body: Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                            tokio::fs::File::from_std(file),
                            CHUNK_BYTES as usize,
                        )),
                    },
                }))
            }
            Blobs::Memory(map) => Ok(map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(digest)
                .cloned()
                .map(BlobBody::whole)),
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
            Blobs::Disk { root, small } => {
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
                small.invalidate(digest);
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

    struct Sized {
        what: &'static str,
        bytes: usize,
    }

    #[tokio::test]
    async fn a_tarball_is_sent_whole_under_its_length() {
        let cases = [
            Sized {
                what: "one chunk, read in the hop that opens it",
                bytes: 300,
            },
            Sized {
                what: "exactly one chunk",
                bytes: CHUNK_BYTES as usize,
            },
            Sized {
                what: "longer than a chunk, streamed",
                bytes: 3 * CHUNK_BYTES as usize + 17,
            },
        ];
        let folder = tempfile::tempdir().unwrap();
        let blobs = Blobs::disk(folder.path().join("tarballs")).unwrap();
        for case in cases {
            let bytes: Vec<u8> = (0..case.bytes).map(|i| (i % 251) as u8).collect();
            let digest = Digest::of(&bytes);
            blobs.put(bytes.clone().into(), digest).await.unwrap();
            // The first read from the file, the second (of a small one) from memory.
            for read in ["first", "second"] {
                let blob = blobs.open(&digest).await.unwrap().expect(case.what);
                assert_eq!(blob.length, case.bytes as u64, "{}, {read}", case.what);
                let sent = axum::body::to_bytes(blob.body, usize::MAX).await.unwrap();
                assert!(
                    sent == bytes,
                    "{}, {read}: the bytes are the file's",
                    case.what
                );
            }
            let unused = || std::future::ready(Ok(false));
            assert!(blobs.remove_unused(&digest, unused).await.unwrap());
            assert!(
                blobs.open(&digest).await.unwrap().is_none(),
                "{}: a removed tarball is not sent from memory",
                case.what
            );
        }
        let missing = Digest::of(b"never written");
        assert!(blobs.open(&missing).await.unwrap().is_none());
    }
}
