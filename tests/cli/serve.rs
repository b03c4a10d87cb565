//! A real `tidemark serve` process: signs, answers health and metrics,
//! stops on SIGTERM, and replays after a restart.

use std::fs::File;
use std::process::{Child, ExitStatus, Stdio};
use std::time::Instant;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tidemark_client::{Client, ClientOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

/// A `tidemark serve` child, killed if the test ends without stopping it.
struct Serve {
    child: Option<Child>,
    log: PathBuf,
}

impl Serve {
    fn start(config: &str, log: PathBuf) -> Serve {
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = command(&["serve", "-c", config])
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn tidemark serve");
        Serve {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit status.
    fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve did not exit within {limit:?} of SIGTERM\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn client_for(dir: &Path, addr: &str, identity: &str) -> Client {
    let tls = dir.join("tls");
    let options = ClientOptions::from_files(
        addr,
        "localhost",
        &tls.join("ca.crt"),
        &tls.join(format!("{identity}.crt")),
        &tls.join(format!("{identity}.key")),
    )
    .unwrap()
    .with_deadline(Duration::from_secs(2));
    Client::connect_lazy(options).unwrap()
}

/// Waits (at most 10 s) until the signer answers an admin call.
async fn wait_until_serving(serve: &mut Serve, admin: &Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match admin.status().await {
            Ok(status) => {
                assert!(status.store_healthy, "{status:?}");
                return;
            }
            Err(e) => {
                if let Some(status) = serve.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("serve exited with {status}:\n{}", serve.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "serve not answering after 10 s ({e}):\n{}",
                    serve.log()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A plain HTTP GET; returns (status code, whole response).
async fn http_get(port: u16, path: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        text(&response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} timed out"));
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {response:?}"));
    (code, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_signs_reports_ready_and_metrics_stops_on_sigterm_and_replays_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    init(&dir, &[]);
    let cfg = config(&dir);

    // Rewrite both listen addresses to ports that are free now.
    let grpc = support::free_port();
    let ops = std::iter::repeat_with(support::free_port)
        .find(|p| *p != grpc)
        .unwrap();
    let original = std::fs::read_to_string(&cfg).unwrap();
    let rewritten = original
        .replace(
            "listen = \"127.0.0.1:7443\"",
            &format!("listen = \"127.0.0.1:{grpc}\""),
        )
        .replace(
            "listen = \"127.0.0.1:9464\"",
            &format!("listen = \"127.0.0.1:{ops}\""),
        );
    assert_eq!(rewritten.matches(&format!(":{grpc}\"")).count(), 1);
    assert_eq!(rewritten.matches(&format!(":{ops}\"")).count(), 1);
    std::fs::write(&cfg, rewritten).unwrap();
    let addr = format!("127.0.0.1:{grpc}");

    let mut serve = Serve::start(&cfg, tmp.path().join("serve.log"));
    let admin = client_for(&dir, &addr, "admin");
    wait_until_serving(&mut serve, &admin).await;

    let vote = support::vote(v1::VoteType::Prevote, 12, 0, Some(4), 1_700_000_012);
    assert_eq!(vote.chain_id, DEMO_CHAIN);
    let replica = client_for(&dir, &addr, "replica-1");
    let first = replica.sign_vote(vote.clone()).await.unwrap();
    assert_eq!(first.outcome, v1::Outcome::Signed as i32);

    let (code, body) = http_get(ops, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_get(ops, "/livez").await;
    assert_eq!(code, 200, "{body}");
    let (code, metrics) = http_get(ops, "/metrics").await;
    assert_eq!(code, 200, "{metrics}");
    let signed_line = metrics
        .lines()
        .find(|l| l.starts_with("tidemark_decisions_total{") && l.contains("outcome=\"signed\""))
        .unwrap_or_else(|| panic!("no signed decision counted:\n{metrics}"));
    assert!(signed_line.ends_with(" 1"), "{signed_line}");
    assert!(
        signed_line.contains("client=\"replica-1\""),
        "the decision metric names the client: {signed_line}"
    );

    let status = serve.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}\n{}", serve.log());

    // Restarted on the same store: the identical vote is a replay of the
    // very same signature.
    let mut serve = Serve::start(&cfg, tmp.path().join("serve-2.log"));
    wait_until_serving(&mut serve, &admin).await;
    let again = replica.sign_vote(vote).await.unwrap();
    assert_eq!(again.outcome, v1::Outcome::Replayed as i32);
    assert_eq!(again.signature, first.signature);
    assert_eq!(again.sign_bytes, first.sign_bytes);
    let status = serve.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}\n{}", serve.log());
}
