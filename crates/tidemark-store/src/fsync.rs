//! The raw fdatasync latency of a disk, measured beside a benchmark so its
//! figures can be read as ratios on a noisy machine.

use std::fs::{self, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Removes the probe file however the measurement ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Writes a 4 KiB block into a temporary file in `dir` and fdatasyncs it,
/// `samples` times; returns the time of each write + fdatasync. The file
/// is preallocated and synced first, so each sample overwrites allocated
/// space and flushes data only, as SQLite's WAL does once it is reused:
/// the cheapest durable write the disk offers. The file is removed
/// afterwards.
pub fn fdatasync_latency(dir: &Path, samples: usize) -> io::Result<Vec<Duration>> {
    const BLOCK: usize = 4096;
    const BLOCKS: u64 = 64;
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path = dir.join(format!(
        ".tidemark-fdatasync-probe-{}-{nonce}",
        std::process::id()
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let _guard = RemoveOnDrop(path);
    let block = [0x5au8; BLOCK];
    for _ in 0..BLOCKS {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = Instant::now();
        file.seek(SeekFrom::Start((i as u64 % BLOCKS) * BLOCK as u64))?;
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_each_sample_and_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let latencies = fdatasync_latency(dir.path(), 5).unwrap();
        assert_eq!(latencies.len(), 5);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
