//! Tidemark decision pipeline: lock, load, decide, sign in memory, commit durably, release.
