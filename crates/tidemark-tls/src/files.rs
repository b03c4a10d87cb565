//! PEM parsing and PEM files on disk.
//!
//! Invariants:
//! - certificates are written 0644 and private keys 0600, each through a
//!   temporary file in the same directory that is fsync'd and then renamed
//!   over the target, so a crash leaves the old file or the new one, never
//!   a torn one, and a key is never readable by others even for an instant;
//! - a private key file is refused at load when group or others may read or
//!   write it (on Unix);
//! - every error names the file, or what an in-memory input should hold.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{PemOrigin, TlsError};
use crate::pki::IssuedCert;

/// Permission bits of a certificate file.
const CERT_MODE: u32 = 0o644;
/// Permission bits of a private key file.
const KEY_MODE: u32 = 0o600;

/// The paths [`write_pem_files`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemPaths {
    /// The certificate, `<dir>/<stem>.crt`, mode 0644.
    pub cert: PathBuf,
    /// The private key, `<dir>/<stem>.key`, mode 0600.
    pub key: PathBuf,
}

/// Writes `cert` to `<dir>/<stem>.crt` (0644) and its private key to
/// `<dir>/<stem>.key` (0600), each atomically; existing files are replaced.
///
/// `stem` is a plain file name stem such as `ca`, `server` or `replica-1`.
pub fn write_pem_files(dir: &Path, stem: &str, cert: &IssuedCert) -> Result<PemPaths, TlsError> {
    if stem.is_empty() || stem.starts_with('.') || stem.contains(['/', '\\']) {
        return Err(TlsError::InvalidName {
            name: stem.to_owned(),
            reason:
                "a file stem must be non-empty, not start with '.' and contain no path separator"
                    .to_owned(),
        });
    }
    let paths = PemPaths {
        cert: dir.join(format!("{stem}.crt")),
        key: dir.join(format!("{stem}.key")),
    };
    write_key_file(&paths.key, cert.key_pem())?;
    write_cert_file(&paths.cert, cert.cert_pem())?;
    Ok(paths)
}

/// Writes a PEM certificate (or chain) to `path` atomically, mode 0644.
pub fn write_cert_file(path: &Path, cert_pem: &str) -> Result<(), TlsError> {
    write_atomic(path, cert_pem.as_bytes(), CERT_MODE)
}

/// Writes a PEM private key to `path` atomically, mode 0600.
pub fn write_key_file(path: &Path, key_pem: &SecretString) -> Result<(), TlsError> {
    write_atomic(path, key_pem.expose_secret().as_bytes(), KEY_MODE)
}

/// Reads a PEM certificate file and checks that it holds at least one
/// certificate.
pub fn read_cert_file(path: &Path) -> Result<String, TlsError> {
    let pem = fs::read_to_string(path).map_err(|source| TlsError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })?;
    certs(
        pem.as_bytes(),
        "certificate",
        PemOrigin::File(path.to_owned()),
    )?;
    Ok(pem)
}

/// Reads a PEM private key file, refusing it (on Unix) when group or
/// others have any permission on it, and checks that it holds a key.
pub fn read_key_file(path: &Path) -> Result<SecretString, TlsError> {
    check_key_mode(path)?;
    let pem = SecretString::from(fs::read_to_string(path).map_err(|source| TlsError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })?);
    private_key(
        pem.expose_secret().as_bytes(),
        "private key",
        PemOrigin::File(path.to_owned()),
    )?;
    Ok(pem)
}

#[cfg(unix)]
fn check_key_mode(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|source| TlsError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyFileMode {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_mode(_path: &Path) -> Result<(), TlsError> {
    Ok(())
}

/// Parses every certificate in `pem`; at least one is required.
pub(crate) fn certs(
    pem: &[u8],
    what: &'static str,
    origin: PemOrigin,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    let source = match parsed {
        Ok(certs) if !certs.is_empty() => return Ok(certs),
        Ok(_) => rustls_pki_types::pem::Error::NoItemsFound,
        Err(e) => e,
    };
    Err(TlsError::Pem {
        what,
        origin,
        source,
    })
}

/// Parses the first private key (PKCS#8, PKCS#1 or SEC1) in `pem`.
pub(crate) fn private_key(
    pem: &[u8],
    what: &'static str,
    origin: PemOrigin,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|source| TlsError::Pem {
        what,
        origin,
        source,
    })
}

/// Reads a file for [`crate::server_config_from_files`] and friends.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })
}

/// Reads a private key file for [`crate::server_config_from_files`] and
/// friends, checking its mode first.
pub(crate) fn read_key_bytes(path: &Path) -> Result<SecretString, TlsError> {
    check_key_mode(path)?;
    let text = fs::read_to_string(path).map_err(|source| TlsError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })?;
    Ok(SecretString::from(text))
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io_err = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { op, path, source }
    };
    let file_name = path.file_name().ok_or_else(|| TlsError::InvalidName {
        name: path.display().to_string(),
        reason: "the path names no file".to_owned(),
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut file = options.open(&tmp).map_err(io_err("create", &tmp))?;
        // The umask may have narrowed the mode; set it exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io_err("set permissions on", &tmp))?;
        }
        file.write_all(bytes).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename into place", path))
    })();
    if result.is_err() {
        // Best effort: the temporary file is useless now.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
