//! Tidemark durable state store: SQLite with WAL, synchronous=FULL, group commit and a hash-chained audit log.
