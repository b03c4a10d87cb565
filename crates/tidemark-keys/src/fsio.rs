//! Reading and writing the keystore file (Unix).
//!
//! Invariants:
//!
//! - A keystore file is only ever created with mode 0600: a temporary file
//!   in the same directory is created with `O_EXCL` and mode 0600 (then
//!   `fchmod`ed to exactly 0600, whatever the umask), written, fsync'd, and
//!   moved into place; then the directory is fsync'd. A crash leaves either
//!   the old file or the new one, never a torn one.
//! - Creating never overwrites: the new file is linked into place with
//!   `link(2)`, which fails if the name exists.
//! - Reading checks the opened file itself (no race between check and use):
//!   it must be a regular file, no larger than [`MAX_FILE_LEN`], and grant
//!   nothing to group or others (`mode & 0o077 == 0`).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::error::KeystoreError;
use crate::keys::fill_random;

/// No keystore is larger than this.
pub(crate) const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;

/// Reads a keystore file after checking its type, size and mode.
pub(crate) fn read_private_file(path: &Path) -> Result<Vec<u8>, KeystoreError> {
    let file = File::open(path).map_err(|e| KeystoreError::io("open", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| KeystoreError::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(KeystoreError::NotAFile { path: path.into() });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeystoreError::InsecurePermissions {
            path: path.into(),
            mode,
        });
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(KeystoreError::TooLarge {
            path: path.into(),
            len: meta.len(),
            limit: MAX_FILE_LEN,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| KeystoreError::io("read", path, e))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(KeystoreError::TooLarge {
            path: path.into(),
            len: bytes.len() as u64,
            limit: MAX_FILE_LEN,
        });
    }
    Ok(bytes)
}

/// Whether [`write_private_file`] may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overwrite {
    /// Fail with [`KeystoreError::AlreadyExists`] if the file exists.
    Never,
    /// Replace the file atomically.
    Replace,
}

/// Writes `bytes` to `path` atomically and durably with mode 0600.
pub(crate) fn write_private_file(
    path: &Path,
    bytes: &[u8],
    overwrite: Overwrite,
) -> Result<(), KeystoreError> {
    let name = path
        .file_name()
        .ok_or_else(|| KeystoreError::NotAFile { path: path.into() })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if overwrite == Overwrite::Never && fs::symlink_metadata(path).is_ok() {
        return Err(KeystoreError::AlreadyExists { path: path.into() });
    }

    let mut suffix = [0u8; 8];
    fill_random(&mut suffix)?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", hex::encode(suffix)));
    let tmp = dir.join(tmp_name);

    let result = write_tmp(&tmp, bytes).and_then(|()| match overwrite {
        Overwrite::Replace => {
            fs::rename(&tmp, path).map_err(|e| KeystoreError::io("rename", path, e))
        }
        Overwrite::Never => {
            let linked = fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => KeystoreError::AlreadyExists { path: path.into() },
                _ => KeystoreError::io("link", path, e),
            });
            // The temporary name goes away whether or not the link was made.
            let _ = fs::remove_file(&tmp);
            linked
        }
    });
    if result.is_err() {
        // Best effort: a failed write must not leave a temporary file behind.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeystoreError::io("fsync directory", &dir, e))
}

fn write_tmp(tmp: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| KeystoreError::io("create", tmp, e))?;
    file.set_permissions(Permissions::from_mode(0o600))
        .map_err(|e| KeystoreError::io("chmod", tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| KeystoreError::io("write", tmp, e))?;
    file.sync_all()
        .map_err(|e| KeystoreError::io("fsync", tmp, e))
}
