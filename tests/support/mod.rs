//! Shared helpers of the end-to-end tests: an embedded signer over real
//! mutual TLS on 127.0.0.1 and request builders.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tidemark_cli::embedded::{DEMO_CHAIN, Embedded, VALIDATOR_KEY};
use tidemark_client::v1;

/// Starts a signer with `replicas` client certificates in a temp dir.
pub async fn signer(replicas: u32) -> Embedded {
    Embedded::start_temp(replicas, None)
        .await
        .expect("embedded signer starts")
}

/// A vote request on the demo chain with the validator key.
pub fn vote(
    vote_type: v1::VoteType,
    height: i64,
    round: i32,
    block: Option<u8>,
    seconds: i64,
) -> v1::SignVoteRequest {
    v1::SignVoteRequest {
        chain_id: DEMO_CHAIN.into(),
        key_id: VALIDATOR_KEY.into(),
        vote: Some(v1::Vote {
            r#type: vote_type as i32,
            height,
            round,
            block_id: block.map(|b| v1::BlockId {
                hash: vec![b; 32],
                part_set_header: Some(v1::PartSetHeader {
                    total: 1,
                    hash: vec![b ^ 0xff; 32],
                }),
            }),
            timestamp: Some(v1::Timestamp { seconds, nanos: 0 }),
            extension: Vec::new(),
        }),
    }
}

/// True when running in CI, where a missing component must fail a test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A free TCP port on 127.0.0.1: bound to port 0, read, released. Another
/// process could take it before the caller binds it; tests that use it
/// are written to tolerate that only by failing loudly.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("bound socket has an address")
        .port()
}

/// A tmpfs of a fixed size mounted on a fresh temporary directory, and
/// unmounted (lazily, so a file still open cannot keep it) on drop.
pub struct Tmpfs {
    dir: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"4m"`). When mounting is not
    /// permitted: panics under `CI=true` (a fault test must not silently
    /// skip there), otherwise prints why and returns `None`.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("tidemark-tmpfs-")
            .tempdir()
            .expect("create a mount point");
        let result = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match result {
            Ok(out) if out.status.success() => Some(Tmpfs { dir: Some(dir) }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    !in_ci(),
                    "CI=true and mounting a {size} tmpfs failed ({why}): this fault test needs root"
                );
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs ({why}); run as root to test a real full disk"
                );
                None
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &std::path::Path {
        self.dir.as_ref().expect("mounted until dropped").path()
    }

    /// Writes zeros to `name` on the tmpfs until the file system is full,
    /// then gives `leave` bytes back. Returns the filler's path.
    pub fn fill(&self, name: &str, leave: u64) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.path().join(name);
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // Byte-granular writes: fill the last partial chunk too.
        while let Ok(n) = f.write(&[0u8; 512]) {
            if n == 0 {
                break;
            }
        }
        let len = f.metadata().expect("filler metadata").len();
        f.set_len(len.saturating_sub(leave))
            .expect("shrink the filler");
        f.sync_all().expect("sync the filler");
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(dir.path())
                .status();
            drop(dir);
        }
    }
}

/// Deterministic garbage bytes (xorshift64).
pub fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
