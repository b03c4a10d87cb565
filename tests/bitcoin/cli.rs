//! `tidemark wallet descriptors|intents|release`, the binary run beside a
//! running signer on the same config, store and keystore.

use std::process::Command;

use super::*;

/// Runs `tidemark wallet <args> -c <config>`; returns (success, stdout,
/// stderr).
fn wallet_cli(signer: &Embedded, args: &[&str]) -> (bool, String, String) {
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .arg("wallet")
            .args(args)
            .arg("-c")
            .arg(signer.layout.config())
            .output()
            .expect("run tidemark wallet")
    });
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn ok(signer: &Embedded, args: &[&str]) -> String {
    let (success, stdout, stderr) = wallet_cli(signer, args);
    assert!(
        success,
        "tidemark wallet {args:?} failed: {stderr}\n{stdout}"
    );
    stdout
}

fn fails(signer: &Embedded, args: &[&str]) -> String {
    let (success, stdout, stderr) = wallet_cli(signer, args);
    assert!(!success, "tidemark wallet {args:?} succeeded: {stdout}");
    stderr
}

/// The line of `intent` in `wallet intents` output, split on whitespace.
fn intent_line(output: &str, intent: &str) -> Vec<String> {
    output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(intent))
        .unwrap_or_else(|| panic!("no intent {intent} in:\n{output}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wallet_commands_show_descriptors_list_and_release_beside_the_signer() {
    let signer = support::signer(1).await;
    let wallet = signer.wallet(WPKH_WALLET).unwrap();
    let client = signer.client("replica-1").unwrap();

    let out = ok(&signer, &["descriptors", WPKH_WALLET]);
    let info = client.get_wallet(WPKH_WALLET).await.unwrap();
    assert!(
        out.contains(&format!("receive {}", info.receive_descriptor)),
        "{out}"
    );
    assert!(
        out.contains(&format!("change  {}", info.change_descriptor)),
        "{out}"
    );

    let first = psbt(&wallet, &[0, 1], 0);
    let signed = client
        .sign_psbt(request(WPKH_WALLET, "payout-1", &first))
        .await
        .unwrap();
    let out = ok(&signer, &["intents", WPKH_WALLET]);
    let line = intent_line(&out, "payout-1");
    assert_eq!(line[1], "live", "{out}");
    assert_eq!(line[5], signed.intent.unwrap().txid, "{out}");
    assert!(out.contains("1 intents"), "{out}");

    // Released offline; the running signer sees coin 1 free at once.
    let err = fails(&signer, &["release", WPKH_WALLET, "payout-1"]);
    assert!(err.contains("--confirmed"), "{err}");
    let out = ok(
        &signer,
        &["release", WPKH_WALLET, "payout-1", "--abandoned"],
    );
    assert_eq!(intent_line(&out, "payout-1")[1], "abandoned", "{out}");
    let again = client
        .sign_psbt(request(WPKH_WALLET, "payout-2", &psbt(&wallet, &[1, 2], 1)))
        .await
        .unwrap();
    assert_eq!(again.outcome, v1::Outcome::Signed as i32);
    let records = audit(&signer);
    let released = records
        .iter()
        .find(|r| r.entry.outcome == AuditOutcome::Released)
        .expect("the release is audited");
    assert_eq!(released.entry.client, "operator-cli");

    let err = fails(&signer, &["intents", "no-such-wallet"]);
    assert!(err.contains("no-such-wallet"), "{err}");
    let err = fails(
        &signer,
        &["release", WPKH_WALLET, "payout-9", "--confirmed"],
    );
    assert!(err.contains("unknown intent payout-9"), "{err}");
    signer.stop().await;
}
