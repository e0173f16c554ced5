//! Tarballs: files named by their SHA-512 under `<data>/tarballs/`, or memory.
//!
//! A tarball is written (and synced) before the row that names it is committed, so a
//! crash leaves at most a file nobody names, never a version without its bytes. Two
//! processes can share the folder: a file's name is its content, so writing one twice
//! writes the same bytes, and each write goes to a file of its own, renamed into place.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Body;

use super::Digest;

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

    /// Keeps `bytes`, whose SHA-512 the caller has computed as `digest`.
    pub async fn put(&self, bytes: Vec<u8>, digest: Digest) -> io::Result<()> {
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
                    .insert(digest, bytes.into());
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

    /// Removes a tarball nobody names any more; one already gone is not an error.
    pub async fn remove(&self, digest: &Digest) -> io::Result<()> {
        match self {
            Blobs::Disk(root) => match tokio::fs::remove_file(Self::path(root, digest)).await {
                Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            },
            Blobs::Memory(map) => {
                map.lock().unwrap_or_else(|p| p.into_inner()).remove(digest);
                Ok(())
            }
        }
    }
}
