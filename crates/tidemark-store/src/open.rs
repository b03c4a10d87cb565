//! Creating and opening a store file, failing closed.
//!
//! Invariants:
//! - `create` never touches an existing file, and `open` never creates
//!   one: SQLite is opened without `SQLITE_OPEN_CREATE`, so a missing file
//!   cannot silently become an empty store that has forgotten every mark.
//! - `open` reads the file's header itself before SQLite does (an empty or
//!   truncated file is refused; SQLite would take an empty file for a new
//!   database; a leftover WAL with a garbled header is refused, SQLite
//!   would drop its commits), then checks the application id and schema version before
//!   writing anything, then runs `PRAGMA quick_check` and verifies the
//!   audit log. Any failure refuses the store.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tidemark_core::{ChainError, GENESIS_HASH, StoreError, verify_chain};

use crate::codec::{AUDIT_COLUMNS, decode_audit};
use crate::error::{OpenError, store_error};
use crate::options::StoreOptions;
use crate::schema::{self, APPLICATION_ID};

/// `path` with `suffix` appended (`store.db` -> `store.db-wal`).
pub(crate) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn flags() -> OpenFlags {
    // No SQLITE_OPEN_CREATE: the file must already exist.
    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Opens a SQLite connection on an existing file.
pub(crate) fn connect(path: &Path) -> Result<Connection, StoreError> {
    Connection::open_with_flags(path, flags()).map_err(store_error)
}

fn io_error(what: &str, e: &io::Error) -> StoreError {
    if e.raw_os_error() == Some(28) {
        // ENOSPC
        StoreError::Full(format!("{what}: {e}"))
    } else {
        StoreError::Io(format!("{what}: {e}"))
    }
}

/// Creates a new store at `path`; fails if anything is in the way.
pub(crate) fn create(path: &Path, options: &StoreOptions) -> Result<Connection, OpenError> {
    let fail = |source: StoreError| OpenError::Store {
        path: path.to_owned(),
        source,
    };
    for suffix in ["-wal", "-journal"] {
        let leftover = sidecar(path, suffix);
        if fs::metadata(&leftover).is_ok_and(|m| m.len() > 0) {
            // A stale WAL would be replayed into the new database.
            return Err(OpenError::Exists { path: leftover });
        }
    }
    let mut new_file = OpenOptions::new();
    new_file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut new_file, 0o600);
    match new_file.open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(OpenError::Exists {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(fail(io_error("cannot create the store file", &e))),
    }
    let initialise = || -> Result<Connection, StoreError> {
        let conn = connect(path)?;
        schema::configure_writer(&conn, options.busy_timeout, options.max_page_count)?;
        schema::migrate(&conn, 0)?;
        sync_parent_dir(path)?;
        Ok(conn)
    };
    match initialise() {
        Ok(conn) => {
            tracing::info!(path = %path.display(), "created state store");
            Ok(conn)
        }
        Err(e) => {
            // The file is ours and half made: leave nothing that `open`
            // would have to refuse later.
            for p in [
                path.to_owned(),
                sidecar(path, "-wal"),
                sidecar(path, "-shm"),
            ] {
                let _ = fs::remove_file(p);
            }
            Err(fail(e))
        }
    }
}

/// Makes the new file's directory entry durable.
fn sync_parent_dir(path: &Path) -> Result<(), StoreError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io_error("cannot sync the store's directory", &e))
}

/// Opens the existing store at `path` and checks it.
pub(crate) fn open(path: &Path, options: &StoreOptions) -> Result<Connection, OpenError> {
    let fail = |source: StoreError| OpenError::Store {
        path: path.to_owned(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(OpenError::Missing {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(fail(io_error("cannot stat the store file", &e))),
    };
    if !meta.is_file() {
        return Err(fail(StoreError::Corrupt("not a regular file".to_owned())));
    }
    check_header(path, meta.len()).map_err(fail)?;

    let conn = connect(path).map_err(fail)?;
    let (app, version) = schema::identity(&conn).map_err(fail)?;
    if app != APPLICATION_ID {
        return Err(OpenError::Foreign {
            path: path.to_owned(),
            found: app,
        });
    }
    let supported = schema::supported_version();
    if version > supported {
        return Err(OpenError::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported,
        });
    }
    if version == 0 {
        return Err(fail(StoreError::Corrupt(
            "the file carries tidemark's id but no schema".to_owned(),
        )));
    }
    schema::configure_writer(&conn, options.busy_timeout, options.max_page_count).map_err(fail)?;
    schema::quick_check(&conn).map_err(fail)?;
    schema::migrate(&conn, version).map_err(fail)?;
    match verify_audit(&conn, options.audit_tail_check).map_err(fail)? {
        Ok(last) => {
            tracing::info!(path = %path.display(), audit_records = last, "opened state store");
            Ok(conn)
        }
        Err(source) => Err(OpenError::AuditChain {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Which file a path names: (device, inode). A store whose file was
/// deleted or replaced while it ran must stop: its commits would land in
/// a file nobody will ever open again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

impl FileIdentity {
    /// The identity of the file at `path`.
    pub(crate) fn of(path: &Path) -> Result<Self, StoreError> {
        let meta = fs::metadata(path).map_err(|e| {
            StoreError::Io(format!(
                "the store file {} is gone or unreadable: {e}",
                path.display()
            ))
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(FileIdentity {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            Ok(FileIdentity {})
        }
    }

    /// Ok if `path` still names this file.
    pub(crate) fn check(&self, path: &Path) -> Result<(), StoreError> {
        if FileIdentity::of(path)? == *self {
            Ok(())
        } else {
            Err(StoreError::Io(format!(
                "the store file {} was replaced while the store was open",
                path.display()
            )))
        }
    }
}

/// The magic string a SQLite file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn be_u32(header: &[u8; 100], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&header[at..at + 4]);
    u32::from_be_bytes(b)
}

/// Refuses a file that is empty, is not SQLite, or is shorter than its
/// own header says (when no WAL could make up the difference).
pub(crate) fn check_header(path: &Path, len: u64) -> Result<(), StoreError> {
    if len == 0 {
        return Err(StoreError::Corrupt(
            "the file is empty (a state store is never empty)".to_owned(),
        ));
    }
    if len < 100 {
        return Err(StoreError::Corrupt(format!(
            "the file is {len} bytes, shorter than a database header"
        )));
    }
    let mut header = [0u8; 100];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| io_error("cannot read the store header", &e))?;
    if &header[..16] != SQLITE_MAGIC {
        return Err(StoreError::Corrupt(
            "not a SQLite database (bad header magic)".to_owned(),
        ));
    }
    let page_size = match u32::from(u16::from_be_bytes([header[16], header[17]])) {
        1 => 65536,
        n if n.is_power_of_two() && (512..=32768).contains(&n) => n,
        n => {
            return Err(StoreError::Corrupt(format!("invalid page size {n}")));
        }
    };
    if !len.is_multiple_of(u64::from(page_size)) {
        return Err(StoreError::Corrupt(format!(
            "file size {len} is not a multiple of the page size {page_size}: truncated?"
        )));
    }
    let wal_len = check_wal_header(path)?;
    let pages = be_u32(&header, 28);
    let size_valid = be_u32(&header, 24) == be_u32(&header, 92);
    let expected = u64::from(pages) * u64::from(page_size);
    if wal_len == 0 && size_valid && pages > 0 && len < expected {
        return Err(StoreError::Corrupt(format!(
            "truncated: the header says {pages} pages of {page_size} bytes, the file has {len} bytes"
        )));
    }
    Ok(())
}

/// The length of the store's WAL (0 if none). A WAL left by a crash holds
/// committed transactions; SQLite silently ignores one whose header is
/// not valid, which would serve older marks, so such a WAL is refused.
/// (A WAL shorter than its header holds no frames: a crash while creating
/// it.)
fn check_wal_header(path: &Path) -> Result<u64, StoreError> {
    const WAL_MAGIC: [u32; 2] = [0x377f_0682, 0x377f_0683];
    let wal = sidecar(path, "-wal");
    let len = fs::metadata(&wal).map_or(0, |m| m.len());
    if len < 32 {
        return Ok(len);
    }
    let mut magic = [0u8; 4];
    File::open(&wal)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| io_error("cannot read the store's WAL", &e))?;
    if !WAL_MAGIC.contains(&u32::from_be_bytes(magic)) {
        return Err(StoreError::Corrupt(format!(
            "{} is not a valid WAL: its committed transactions would be lost",
            wal.display()
        )));
    }
    Ok(len)
}

/// Checks the audit log: sequence numbers from 1 without gaps, and the
/// hash chain of the newest `tail` records. The outer error means the log
/// could not be read, the inner one that it does not verify. Returns the
/// last sequence number.
pub(crate) fn verify_audit(
    conn: &Connection,
    tail: usize,
) -> Result<Result<u64, ChainError>, StoreError> {
    let (count, min, max): (i64, Option<i64>, Option<i64>) = conn
        .query_row("SELECT COUNT(*), MIN(seq), MAX(seq) FROM audit", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(store_error)?;
    let (Some(min), Some(max)) = (min, max) else {
        return Ok(Ok(0));
    };
    let as_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
    if min != 1 {
        return Ok(Err(ChainError::Gap {
            previous: 0,
            found: as_u64(min),
        }));
    }
    if max - min + 1 != count {
        // Some record is missing: find the first one after the hole.
        let (previous, found): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT MAX(b.seq) FROM audit b WHERE b.seq < a.seq), a.seq \
                 FROM audit a WHERE a.seq > 1 \
                 AND NOT EXISTS (SELECT 1 FROM audit c WHERE c.seq = a.seq - 1) \
                 ORDER BY a.seq LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(store_error)?;
        return Ok(Err(ChainError::Gap {
            previous: as_u64(previous),
            found: as_u64(found),
        }));
    }
    if tail == 0 {
        return Ok(Ok(as_u64(max)));
    }
    let from = max.saturating_sub(i64::try_from(tail).unwrap_or(i64::MAX)) + 1;
    let records = read_audit(conn, from.max(1), i64::try_from(tail).unwrap_or(i64::MAX))?;
    let Some(first) = records.first() else {
        return Ok(Ok(as_u64(max)));
    };
    let start = if first.seq == 1 {
        GENESIS_HASH
    } else {
        first.prev_hash
    };
    Ok(verify_chain(&records, first.seq - 1, start).map(|(seq, _)| seq))
}

/// Up to `limit` audit records from `from` on.
pub(crate) fn read_audit(
    conn: &Connection,
    from: i64,
    limit: i64,
) -> Result<Vec<tidemark_core::AuditRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
        ))
        .map_err(store_error)?;
    let mut rows = stmt.query([from, limit]).map_err(store_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(store_error)? {
        out.push(decode_audit(row)?);
    }
    Ok(out)
}
