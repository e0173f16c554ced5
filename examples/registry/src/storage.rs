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

    /// Writes the whole value or nothing: on disk, a temporary file renamed into place.
    pub async fn write(&self, key: &str, bytes: Vec<u8>) -> io::Result<()> {
        match self {
            Storage::Disk(root) => {
                let path = root.join(key);
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                let temporary = path.with_extension("partial");
                tokio::fs::write(&temporary, &bytes).await?;
                tokio::fs::rename(&temporary, &path).await
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
