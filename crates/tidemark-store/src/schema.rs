//! The schema, its migrations and the connection settings.
//!
//! Invariants:
//! - The schema version is SQLite's `user_version`; step `i` of
//!   [`MIGRATIONS`] takes version `i` to `i + 1`, inside one transaction
//!   together with the version bump, so a crash leaves either version.
//! - A file whose version is newer than [`MIGRATIONS`] knows is never
//!   written to; a file without Tidemark's `application_id` is not ours.
//! - The writer runs with `journal_mode=WAL` and `synchronous=FULL`: a
//!   `COMMIT` returns only after the WAL is fsync'd.

use std::time::Duration;

use rusqlite::Connection;
use tidemark_core::StoreError;

use crate::error::store_error;

/// `PRAGMA application_id` of a Tidemark store: "TDMK".
pub(crate) const APPLICATION_ID: i32 = 0x5444_4d4b;

/// The ordered migration steps; the schema version is their count.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: objects, the audit log and a small key-value table.
    "CREATE TABLE objects (
        object      TEXT PRIMARY KEY NOT NULL,
        version     INTEGER NOT NULL,
        state       BLOB NOT NULL,
        mark        TEXT NOT NULL,
        digest      BLOB NOT NULL,
        signatures  TEXT NOT NULL,
        updated_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE audit (
        seq         INTEGER PRIMARY KEY,
        time_ms     INTEGER NOT NULL,
        client      TEXT NOT NULL,
        object      TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        tag         TEXT,
        mark        TEXT NOT NULL,
        digest      BLOB,
        prev_hash   BLOB NOT NULL,
        hash        BLOB NOT NULL
    ) STRICT;
    CREATE TABLE meta (
        key         TEXT PRIMARY KEY NOT NULL,
        value       TEXT NOT NULL
    ) STRICT;",
];

/// The schema version this build writes.
pub(crate) fn supported_version() -> u32 {
    // The list is a compile-time constant of a handful of entries.
    MIGRATIONS.len() as u32
}

/// Settings every connection gets.
fn configure_common(conn: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    conn.busy_timeout(busy_timeout).map_err(store_error)?;
    conn.execute_batch(
        "PRAGMA trusted_schema = OFF;
         PRAGMA cell_size_check = ON;",
    )
    .map_err(store_error)
}

/// Settings of the writer connection: WAL, `synchronous=FULL`, no
/// automatic checkpoint inside a commit (the writer checkpoints after it
/// has answered its callers), and an optional page limit.
pub(crate) fn configure_writer(
    conn: &Connection,
    busy_timeout: Duration,
    max_page_count: Option<u64>,
) -> Result<(), StoreError> {
    configure_common(conn, busy_timeout)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(store_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io(format!(
            "cannot switch to WAL journal mode (got {mode:?})"
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(store_error)?;
    if let Some(pages) = max_page_count {
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(store_error)?;
    }
    Ok(())
}

/// Settings of a reader connection: it cannot write.
pub(crate) fn configure_reader(
    conn: &Connection,
    busy_timeout: Duration,
) -> Result<(), StoreError> {
    configure_common(conn, busy_timeout)?;
    conn.execute_batch("PRAGMA query_only = ON;")
        .map_err(store_error)
}

/// The (application id, schema version) in the file's header.
pub(crate) fn identity(conn: &Connection) -> Result<(i32, u32), StoreError> {
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(store_error)?;
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(store_error)?;
    Ok((app, version))
}

/// Runs the migration steps after `from` and stamps the identity, all in
/// one transaction.
pub(crate) fn migrate(conn: &Connection, from: u32) -> Result<(), StoreError> {
    let target = supported_version();
    if from >= target {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(store_error)?;
    let run = || -> rusqlite::Result<()> {
        for sql in MIGRATIONS.iter().skip(from as usize) {
            conn.execute_batch(sql)?;
        }
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {target};"
        ))?;
        conn.execute_batch("COMMIT")
    };
    if let Err(e) = run() {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(store_error(e));
    }
    tracing::info!(from, to = target, "state store schema migrated");
    Ok(())
}

/// `PRAGMA quick_check`: Ok only if SQLite answers exactly `ok`.
pub(crate) fn quick_check(conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("PRAGMA quick_check").map_err(store_error)?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(store_error)?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        let shown: Vec<&str> = rows.iter().take(5).map(String::as_str).collect();
        Err(StoreError::Corrupt(format!(
            "quick_check found {} problem(s): {}",
            rows.len(),
            shown.join("; ")
        )))
    }
}
