//! The data folder's files are the owner's only: the modes they are made with, and
//! tightening ones made before.

use std::io;

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
