//! Shared helpers of the end-to-end tests: an embedded signer over real
//! mutual TLS on 127.0.0.1 and request builders.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod wire;

use tidemark_cli::embedded::{DEMO_CHAIN, Embedded, VALIDATOR_KEY};
use tidemark_client::v1;
use tidemark_core::{AuditOutcome, AuditRecord, StateStore as _};

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

// --- A signer run as a separate `tidemark serve` process (kill tests). ---

/// Kills the child (SIGKILL) if it is still running when dropped, so a
/// failing test leaves no signer behind.
pub struct ServeProcess(Option<std::process::Child>);

impl ServeProcess {
    /// The process id (for signals).
    pub fn pid(&self) -> i32 {
        self.0.as_ref().expect("child is running").id() as i32
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait(&mut self, timeout: std::time::Duration) -> std::process::ExitStatus {
        let child = self.0.as_mut().expect("child is running");
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait on the signer") {
                self.0 = None;
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the signer did not exit within {timeout:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A directory `tidemark init` wrote, and how to run `tidemark serve` on
/// it as a separate process and reach it.
pub struct SignerDir {
    /// The init directory.
    pub dir: std::path::PathBuf,
    /// Where every `serve` started here appends its stderr.
    pub log: std::path::PathBuf,
    /// The validator public key `init` printed.
    pub validator_public_key: Vec<u8>,
}

impl SignerDir {
    /// Runs `tidemark init --insecure-fast-kdf --replicas N` into
    /// `parent/signer` (the serve log goes to `parent/serve.log`).
    pub fn init(parent: &std::path::Path, replicas: usize) -> SignerDir {
        SignerDir::init_with(parent, replicas, &[])
    }

    /// [`SignerDir::init`] with more arguments for `init` (`--seed-file`).
    pub fn init_with(
        parent: &std::path::Path,
        replicas: usize,
        more: &[&std::ffi::OsStr],
    ) -> SignerDir {
        let dir = parent.join("signer");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["init", "--insecure-fast-kdf", "--replicas"])
            .arg(replicas.to_string())
            .arg("--dir")
            .arg(&dir)
            .args(more)
            .output()
            .expect("run tidemark init");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tidemark init failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hex_key = stdout
            .split("ed25519 ")
            .nth(1)
            .and_then(|rest| rest.get(..64))
            .unwrap_or_else(|| panic!("no ed25519 public key in init's output:\n{stdout}"));
        SignerDir {
            dir,
            log: parent.join("serve.log"),
            validator_public_key: hex::decode(hex_key).unwrap(),
        }
    }

    /// `tidemark.toml`.
    pub fn config(&self) -> std::path::PathBuf {
        self.dir.join("tidemark.toml")
    }

    /// Points `[server] listen` and `[metrics] listen` at fresh free ports
    /// and returns the gRPC address.
    pub fn rewrite_ports(&self) -> String {
        let text = std::fs::read_to_string(self.config()).unwrap();
        let grpc = format!("127.0.0.1:{}", free_port());
        let mut section = String::new();
        let mut out = String::new();
        for line in text.lines() {
            if line.starts_with('[') {
                section = line.trim().to_owned();
            }
            if line.trim_start().starts_with("listen") {
                let addr = match section.as_str() {
                    "[server]" => grpc.clone(),
                    "[metrics]" => format!("127.0.0.1:{}", free_port()),
                    other => panic!("unexpected listen in section {other}"),
                };
                out.push_str(&format!("listen = {addr:?}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        std::fs::write(self.config(), out).unwrap();
        grpc
    }

    /// Spawns `tidemark serve` (RUST_LOG=warn, stderr to the log).
    pub fn spawn(&self) -> ServeProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .arg("serve")
            .arg("-c")
            .arg(self.config())
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tidemark serve");
        ServeProcess(Some(child))
    }

    /// A client of `identity` (a certificate `init` issued) for `addr`.
    pub fn client(
        &self,
        addr: &str,
        identity: &str,
        deadline: std::time::Duration,
    ) -> tidemark_client::Client {
        let tls = self.dir.join("tls");
        let options = tidemark_client::ClientOptions::from_files(
            addr,
            "localhost",
            &tls.join("ca.crt"),
            &tls.join(format!("{identity}.crt")),
            &tls.join(format!("{identity}.key")),
        )
        .unwrap()
        .with_deadline(deadline);
        tidemark_client::Client::connect_lazy(options).unwrap()
    }

    /// The last 40 lines of the serve log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Starts the signer on fresh ports and returns once it answers an
    /// admin `Status` (fails after `ready_timeout`), with its gRPC address
    /// and how long start-up took.
    pub async fn start(
        &self,
        ready_timeout: std::time::Duration,
    ) -> (ServeProcess, String, std::time::Duration) {
        let addr = self.rewrite_ports();
        let started = std::time::Instant::now();
        let child = self.restart(&addr, ready_timeout).await;
        (child, addr, started.elapsed())
    }

    /// Starts the signer again on the ports of its config (`addr`, the
    /// gRPC address [`SignerDir::start`] returned) and returns once it
    /// answers an admin `Status` (fails after `ready_timeout`).
    pub async fn restart(&self, addr: &str, ready_timeout: std::time::Duration) -> ServeProcess {
        let started = std::time::Instant::now();
        let mut child = self.spawn();
        let admin = self.client(addr, "admin", std::time::Duration::from_millis(300));
        loop {
            if let Some(status) = child.exited() {
                panic!(
                    "tidemark serve exited by itself ({status}) during start-up:\n{}",
                    self.log_tail()
                );
            }
            if admin.status().await.is_ok() {
                return child;
            }
            assert!(
                started.elapsed() < ready_timeout,
                "tidemark serve did not answer within {ready_timeout:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Every audit record of `signer`'s store.
pub fn audit(signer: &Embedded) -> Vec<AuditRecord> {
    signer.store.audit_records(1, 100_000).unwrap()
}

/// Waits (refusals and denials are audited asynchronously: the answer may
/// leave before its record is written) until at least `n` records match
/// `outcome` and `tag`, and returns them.
pub async fn audited(
    signer: &Embedded,
    outcome: AuditOutcome,
    tag: Option<&str>,
    n: usize,
) -> Vec<AuditRecord> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found: Vec<AuditRecord> = audit(signer)
            .into_iter()
            .filter(|r| r.entry.outcome == outcome)
            .filter(|r| tag.is_none() || r.entry.tag.as_deref() == tag)
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} {outcome:?} {tag:?} records: {:#?}",
            found.len(),
            audit(signer)
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Initializes a signer with three replicas in `parent/signer`, replaces
/// the grant of each named replica (`(identity, keys, domains)`, the TOML
/// arrays' contents) and starts it in-process.
pub async fn signer_with_grants(
    parent: &std::path::Path,
    grants: &[(&str, &str, &str)],
) -> Embedded {
    use tidemark_cli::commands::init::{InitArgs, init};
    let dir = parent.join("signer");
    let args = InitArgs {
        dir: dir.clone(),
        replicas: 3,
        listen: "127.0.0.1:0".into(),
        metrics_listen: "127.0.0.1:0".into(),
        server_names: vec!["localhost".into(), "127.0.0.1".into()],
        key: tidemark_cli::embedded::VALIDATOR_KEY.into(),
        insecure_fast_kdf: true,
        seed_file: None,
    };
    let made = tokio::task::block_in_place(|| init(&args)).unwrap();
    let config = made.layout.config();
    let mut text = std::fs::read_to_string(&config).unwrap();
    for (identity, keys, domains) in grants {
        let default = format!(
            "identity = \"{identity}\"\nkeys = [\"validator\", \"wallet-wpkh\", \"wallet-tr\", \"ln-node\"]\ndomains = [\"consensus\", \"bitcoin\", \"lightning\"]"
        );
        assert!(text.contains(&default), "{text}");
        text = text.replace(
            &default,
            &format!("identity = \"{identity}\"\nkeys = [{keys}]\ndomains = [{domains}]"),
        );
    }
    std::fs::write(&config, text).unwrap();
    Embedded::start_existing(&dir).await.unwrap()
}
