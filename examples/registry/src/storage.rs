//! Where users and packages are kept: files under the data directory, or memory.
//!
//! Keys are relative paths built only from validated names (see `packages::PackageName`
//! and `users::valid_username`), so they never climb out of the data directory.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

pub enum Storage {
    Disk(PathBuf),
    Memory(Mutex<HashMap<String, Vec<u8>>>),
}

impl Storage {
    pub fn disk(root: PathBuf) -> Self {
        Self::Disk(root)
    }

    pub fn memory() -> Self {
        Self::Memory(Mutex::new(HashMap::new()))
    }

    pub async fn read(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        match self {
            Storage::Disk(root) => match tokio::fs::read(root.join(key)).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error),
            },
            Storage::Memory(map) => Ok(map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(key)
                .cloned()),
        }
    }

    /// The names directly under `prefix` (a folder on disk; keys `prefix/<name>/…` in
    /// memory), sorted.
    pub async fn children(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut names = match self {
            Storage::Disk(root) => {
                let mut names = Vec::new();
                let mut entries = match tokio::fs::read_dir(root.join(prefix)).await {
                    Ok(entries) => entries,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(names),
                    Err(error) => return Err(error),
                };
                while let Some(entry) = entries.next_entry().await? {
                    if let Ok(name) = entry.file_name().into_string() {
                        names.push(name);
                    }
                }
                names
            }
            Storage::Memory(map) => {
                let start = format!("{prefix}/");
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                let mut names: Vec<String> = map
                    .keys()
                    .filter_map(|key| key.strip_prefix(&start))
                    .filter_map(|rest| rest.split('/').next())
                    .map(str::to_owned)
                    .collect();
                names.dedup();
                names
            }
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Removes a value; removing one that is not there is not an error.
    pub async fn remove(&self, key: &str) -> io::Result<()> {
        match self {
            Storage::Disk(root) => match tokio::fs::remove_file(root.join(key)).await {
                Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            },
            Storage::Memory(map) => {
                map.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
                Ok(())
            }
        }
    }

    /// Writes the whole value or nothing: on disk, a temporary file renamed into place.
    pub async fn write(&self, key: &str, bytes: Vec<u8>) -> io::Result<()> {
        match self {
            Storage::Disk(root) => {
                let path = root.join(key);
                if let Some(parent) = path.parent() {
                    private_dirs(parent).await?;
                }
                let temporary = path.with_extension("partial");
                let written = write_private(&temporary, &bytes).await;
                let renamed = match written {
                    Ok(()) => tokio::fs::rename(&temporary, &path).await,
                    Err(error) => Err(error),
                };
                if renamed.is_err() {
                    // Nothing half-written is left behind.
                    let _ = tokio::fs::remove_file(&temporary).await;
                }
                renamed
            }
            Storage::Memory(map) => {
                map.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.to_owned(), bytes);
                Ok(())
            }
        }
    }
}

/// The mode of the data folder and the folders under it.
pub const PRIVATE_DIR: u32 = 0o700;
/// The mode of every file the registry keeps.
pub const PRIVATE_FILE: u32 = 0o600;

/// Gives `path` (when it exists) `mode` if its group or others may use it: whether it
/// had to. Elsewhere than on unix, nothing to do.
pub fn make_private(path: &std::path::Path, mode: u32) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = match std::fs::metadata(path) {
            Ok(metadata) => metadata.permissions().mode(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error),
        };
        if current & 0o077 == 0 {
            return Ok(false);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(false)
    }
}

/// Folders (and their missing parents) readable by their owner only: user records,
/// private tarballs and keys live under them.
pub async fn private_dirs(path: &std::path::Path) -> io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(PRIVATE_DIR);
    builder.create(path).await
}

/// A new file readable by its owner only.
async fn write_private(path: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(PRIVATE_FILE);
    let mut file = options.open(path).await?;
    file.write_all(bytes).await?;
    file.sync_all().await
}
