//! Errors: [`OpenError`] for creating and opening a store, and the one
//! place where SQLite's result codes become a [`StoreError`].
//!
//! Invariant: every SQLite failure maps to exactly one of `Full`, `Corrupt`
//! or `Io`; a value read back that does not decode is always `Corrupt`.

use std::path::PathBuf;

use rusqlite::ffi;
use tidemark_core::{ChainError, StoreError};

/// Why a store could not be created or opened. Nothing was served: a store
/// that fails to open never answers with empty state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// `open` was given a path with no file: a missing state file must be
    /// restored or explicitly created, never silently replaced by an empty
    /// one (that would forget every high-water mark).
    #[error("state store {path} does not exist: restore it, or create a new store explicitly")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// `create` was given a path that already exists (or a leftover WAL or
    /// journal of an earlier store sits next to it).
    #[error("{path} already exists: refusing to create a store over it")]
    Exists {
        /// The file that is in the way.
        path: PathBuf,
    },
    /// The file is a valid SQLite database, but not a Tidemark store.
    #[error("{path} is not a tidemark state store (application id {found:#010x})")]
    Foreign {
        /// The path.
        path: PathBuf,
        /// The application id found in its header.
        found: i32,
    },
    /// The store was written by a newer Tidemark: this build cannot know
    /// what the newer schema means, so it does not touch it.
    #[error("{path} has schema version {found}, newer than version {supported} this build knows")]
    NewerSchema {
        /// The path.
        path: PathBuf,
        /// The schema version in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The audit log's hash chain does not verify: a record was edited,
    /// deleted or reordered.
    #[error("audit chain of {path} does not verify: {source}")]
    AuditChain {
        /// The path.
        path: PathBuf,
        /// What the check found.
        #[source]
        source: ChainError,
    },
    /// The file is corrupt, the disk is full or an I/O error happened.
    #[error("state store {path}: {source}")]
    Store {
        /// The path.
        path: PathBuf,
        /// The store error (`Corrupt`, `Full` or `Io`).
        #[source]
        source: StoreError,
    },
}

impl OpenError {
    /// The underlying [`StoreError`], for the `Store` variant.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            OpenError::Store { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<OpenError> for StoreError {
    /// Folds an open failure into the port's error: a missing, foreign,
    /// newer or tampered store is `Corrupt` from the pipeline's view (it
    /// cannot be used and must not be replaced by an empty one).
    fn from(e: OpenError) -> StoreError {
        match e {
            OpenError::Store { source, .. } => source,
            OpenError::Missing { .. } | OpenError::Exists { .. } => StoreError::Io(e.to_string()),
            other => StoreError::Corrupt(other.to_string()),
        }
    }
}

/// `SQLITE_IOERR_SHMSIZE`: the shared-memory file could not be extended,
/// in practice because the disk is full.
const SQLITE_IOERR_SHMSIZE: i32 = ffi::SQLITE_IOERR | (19 << 8);
/// `SQLITE_IOERR_CORRUPTFS`: the file system reported corruption.
const SQLITE_IOERR_CORRUPTFS: i32 = ffi::SQLITE_IOERR | (33 << 8);

/// Maps a rusqlite error to the port's error.
pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(err, msg) => {
            let detail = match msg {
                Some(m) => format!("{m} (sqlite code {})", err.extended_code),
                None => format!("{err} (sqlite code {})", err.extended_code),
            };
            match err.code {
                ffi::ErrorCode::DiskFull => StoreError::Full(detail),
                ffi::ErrorCode::DatabaseCorrupt | ffi::ErrorCode::NotADatabase => {
                    StoreError::Corrupt(detail)
                }
                ffi::ErrorCode::SystemIoFailure if err.extended_code == SQLITE_IOERR_SHMSIZE => {
                    StoreError::Full(detail)
                }
                ffi::ErrorCode::SystemIoFailure if err.extended_code == SQLITE_IOERR_CORRUPTFS => {
                    StoreError::Corrupt(detail)
                }
                _ => StoreError::Io(detail),
            }
        }
        // A value of the wrong type or range came back from a row.
        e @ (rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(..)) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Io(other.to_string()),
    }
}

/// True for the failures that make the store unhealthy until a later write
/// succeeds.
pub(crate) fn is_fatal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Full(_) | StoreError::Corrupt(_) | StoreError::Io(_)
    )
}
