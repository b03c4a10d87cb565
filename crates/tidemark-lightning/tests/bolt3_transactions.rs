//! BOLT 3 Appendices C and F, rebuilt the way Tidemark's channel signer
//! rebuilds what it signs: from the channel's parameters alone, with LDK's
//! `chan_utils` (`ChannelTransactionParameters`,
//! `CommitmentTransaction::new` and `verify`, `HTLCOutputInCommitment`,
//! `build_htlc_transaction`, `get_htlc_redeemscript`,
//! `build_htlc_input_witness`, keyed anchors), and signed with the
//! channel's keys.
//!
//! # What each case proves
//!
//! For every case listed in Appendix C (`option_static_remotekey`) and in
//! Appendix F (`option_anchors` with zero-fee HTLC transactions), named as
//! the appendix names it (data in `bolt3/`):
//!
//! 1. **Rebuild.** From the vector's parameters only (keys, funding
//!    outpoint, balances, feerate, dust limit, HTLC list), the fee and the
//!    trimming are computed as BOLT 3 specifies (`CommitmentInputs` in
//!    `bolt3/channel.rs`: LDK's builder takes them from its caller), the
//!    commitment is built with `CommitmentTransaction::new` and passed
//!    through `CommitmentTransaction::verify` (LDK's check that a
//!    commitment matches the channel parameters), and every HTLC-timeout
//!    and HTLC-success transaction is built with `build_htlc_transaction`.
//!    Each unsigned transaction equals the appendix's with its witness
//!    removed, byte for byte: same txid, outputs, output order (including
//!    the CLTV tie-break of identical HTLC outputs), trimming, anchors,
//!    fees, locktimes and sequences.
//! 2. **The appendix's signatures verify** against the appendix's public
//!    keys over the sighash of the rebuilt transaction: `SIGHASH_ALL`, and
//!    for remote's HTLC signatures under anchors
//!    `SIGHASH_SINGLE|ANYONECANPAY` (the sighash byte in the appendix's
//!    witness is checked too).
//! 3. **Byte for byte, without grinding.** Signing those sighashes with the
//!    appendix's private keys by plain `Secp256k1::sign_ecdsa` (RFC 6979,
//!    no extra entropy: how the vectors were made) reproduces every local
//!    and remote commitment signature and every local and remote HTLC
//!    signature, and the fully signed commitment and HTLC transactions
//!    (HTLC witnesses assembled by LDK's `build_htlc_input_witness`) equal
//!    the appendix's hex.
//! 4. **By verification, LDK's own signing.** The crate is built with
//!    `grind_signatures`, so LDK's signing grinds for a low R and cannot
//!    reproduce the appendix's bytes in general:
//!    `BuiltCommitmentTransaction::sign_holder_commitment` and
//!    `TrustedCommitmentTransaction::get_htlc_sigs` add fresh entropy per
//!    attempt; `BuiltCommitmentTransaction::sign_counterparty_commitment`
//!    grinds deterministically (its first attempt is plain RFC 6979). Their
//!    signatures are checked to be low-R and to verify against the
//!    appendix's keys and sighashes; the counterparty signature is in
//!    addition equal to the appendix's exactly when the appendix's is
//!    already low-R, and different otherwise.
//! 5. **Bitcoin Core accepts the spends.** libbitcoinconsensus (Core 26.0,
//!    all pre-taproot flags: witness, NULLDUMMY, CSV, CLTV, strict DER)
//!    accepts the signed commitment transaction, both the appendix's and
//!    the one carrying LDK's ground signatures, as a spend of the funding
//!    output, and every signed HTLC transaction, both variants, as a spend
//!    of its commitment output; each check also runs on a copy with one
//!    output value changed, which must be refused, so the check can fail.
//!
//! # Byte for byte, or by verification
//!
//! | What | Compared |
//! |------|----------|
//! | unsigned commitment and HTLC transactions from LDK's builders | byte for byte |
//! | every local and remote signature (commitment and HTLC) made with `sign_ecdsa`, no grinding | byte for byte |
//! | the fully signed commitment and HTLC transactions carrying those | byte for byte |
//! | the appendix's own signatures | by verification |
//! | LDK's `sign_holder_commitment` and `get_htlc_sigs` (ground, random entropy) | by verification, low-R, Core |
//! | LDK's `sign_counterparty_commitment` (ground, deterministic) | byte for byte where the appendix's signature is low-R, by verification where it is not |
//! | transactions carrying LDK's ground signatures | same txid, Core |
//!
//! Remote's HTLC signatures have no LDK entry point outside
//! `InMemorySigner::sign_counterparty_commitment`, whose constructor is
//! test-only in LDK 0.2.7; they are produced as Tidemark will produce them
//! (sighash of the rebuilt HTLC transaction, signed by the derived HTLC
//! key) and compared byte for byte (point 3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "bolt3/appendix_c.rs"]
mod appendix_c;
#[path = "bolt3/appendix_f.rs"]
mod appendix_f;
#[path = "bolt3/channel.rs"]
mod channel;
#[path = "bolt3/transactions.rs"]
mod transactions;
#[path = "bolt3/vectors.rs"]
mod vectors;

use std::collections::HashSet;
use std::panic;

use bitcoin::secp256k1::PublicKey;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, TxOut};
use lightning::ln::chan_utils::{
    CommitmentTransaction, DirectedChannelTransactionParameters, TrustedCommitmentTransaction,
    TxCreationKeys, build_htlc_input_witness, build_htlc_transaction, derive_private_key,
    get_commitment_transaction_number_obscure_factor, get_htlc_redeemscript,
    make_funding_redeemscript,
};
use lightning::sign::RandomBytes;
use lightning::types::features::ChannelTypeFeatures;

use appendix_c::APPENDIX_C;
use appendix_f::APPENDIX_F;
use channel::{
    Channel, CommitmentInputs, INITIAL_COMMITMENT_NUMBER, appendix_htlc, preimage, public, secret,
};
use transactions::*;
use vectors::*;

#[derive(Clone, Copy, Debug)]
enum Appendix {
    C,
    F,
}

impl Appendix {
    fn cases(self) -> &'static [CommitmentVector] {
        match self {
            Appendix::C => APPENDIX_C,
            Appendix::F => APPENDIX_F,
        }
    }

    fn channel_type(self) -> ChannelTypeFeatures {
        match self {
            Appendix::C => ChannelTypeFeatures::only_static_remote_key(),
            Appendix::F => ChannelTypeFeatures::anchors_zero_htlc_fee_and_dependencies(),
        }
    }
}

/// One case being checked: the channel, its parameters, and the entropy
/// LDK's grinding signers draw from.
struct Check<'a> {
    case: &'a CommitmentVector,
    channel: Channel,
    channel_type: ChannelTypeFeatures,
    entropy: RandomBytes,
}

/// What a passing case showed, for the summary line.
struct CaseReport {
    htlc_txs: usize,
    /// LDK's deterministic (ground) counterparty signature equals the
    /// appendix's, which it does exactly when the appendix's is low-R.
    ldk_counterparty_sig_equal: bool,
}

/// Points 1 to 5 of the module docs for one case; panics with the case's
/// name and the failing comparison.
fn check_case(appendix: Appendix, case: &CommitmentVector) -> CaseReport {
    let check = Check {
        case,
        channel: Channel::new(),
        channel_type: appendix.channel_type(),
        entropy: RandomBytes::new([42; 32]),
    };
    let parameters = check.channel.parameters(check.channel_type.clone());
    let directed = parameters.as_holder_broadcastable();

    // 1. Rebuild the commitment from the parameters alone.
    let inputs = CommitmentInputs::new(case, &check.channel_type);
    let commitment = CommitmentTransaction::new(
        INITIAL_COMMITMENT_NUMBER - COMMITMENT_NUMBER,
        &check.channel.per_commitment_point,
        inputs.to_local_sat,
        inputs.to_remote_sat,
        case.feerate_per_kw,
        inputs.nondust_htlcs,
        &directed,
        &check.channel.secp,
    );
    let trusted = commitment
        .verify(&directed, &check.channel.secp)
        .unwrap_or_else(|()| panic!("{}: LDK's verify refuses the rebuilt commitment", case.name));

    let ldk_counterparty_sig_equal = check.commitment(&trusted);
    check.htlc_transactions(&trusted, &directed);
    CaseReport {
        htlc_txs: case.htlc_txs.len(),
        ldk_counterparty_sig_equal,
    }
}

impl Check<'_> {
    /// Points 1 to 5 for the commitment transaction; returns whether LDK's
    /// counterparty signature equals the appendix's.
    fn commitment(&self, trusted: &TrustedCommitmentTransaction<'_>) -> bool {
        let name = self.case.name;
        let secp = &self.channel.secp;
        let built = trusted.built_transaction();

        // 1. The rebuilt transaction is the appendix's, unsigned.
        let expected = transaction(self.case.commit_tx);
        assert_eq!(
            tx_hex(&built.transaction),
            tx_hex(&unsigned(&expected)),
            "{name}: unsigned commitment transaction"
        );

        // 2. The appendix's signatures verify over the rebuilt sighash.
        let (local_funding, remote_funding) = self.channel.funding_pubkeys();
        let local_first = local_funding.serialize() < remote_funding.serialize();
        let funding_script = make_funding_redeemscript(&local_funding, &remote_funding);
        let sighash = built.get_sighash_all(&funding_script, FUNDING_AMOUNT_SAT);
        let (local_index, remote_index) = if local_first { (1, 2) } else { (2, 1) };
        let what = format!("{name}: commitment");
        let vector_local = witness_signature(&expected, local_index, EcdsaSighashType::All, &what);
        let vector_remote =
            witness_signature(&expected, remote_index, EcdsaSighashType::All, &what);
        assert_eq!(
            der_hex(&vector_remote),
            self.case.remote_sig,
            "{what}: remote_signature is the one in the transaction"
        );
        for (sig, key, who) in [
            (&vector_local, &local_funding, "local"),
            (&vector_remote, &remote_funding, "remote"),
        ] {
            secp.verify_ecdsa(&sighash, sig, key)
                .unwrap_or_else(|e| panic!("{what}: the appendix's {who} signature: {e}"));
        }

        // 3. Non-grinding signatures and the signed transaction, byte for
        // byte.
        let local_sig = secp.sign_ecdsa(&sighash, &self.channel.local.funding);
        let remote_sig = secp.sign_ecdsa(&sighash, &self.channel.remote.funding);
        assert_eq!(
            der_hex(&local_sig),
            der_hex(&vector_local),
            "{what}: local signature"
        );
        assert_eq!(
            der_hex(&remote_sig),
            self.case.remote_sig,
            "{what}: remote signature"
        );
        let signed = with_funding_witness(
            &built.transaction,
            &local_sig,
            &remote_sig,
            local_first,
            &funding_script,
        );
        assert_eq!(
            tx_hex(&signed),
            self.case.commit_tx,
            "{what}: signed transaction"
        );

        // 5. Bitcoin Core accepts it as a spend of the funding output.
        let funding_output = TxOut {
            value: Amount::from_sat(FUNDING_AMOUNT_SAT),
            script_pubkey: funding_script.to_p2wsh(),
        };
        assert_spends(&signed, &funding_output, &what);

        // 4. LDK's grinding signers: low-R, verified, and spendable.
        let ldk_local = built.sign_holder_commitment(
            &self.channel.local.funding,
            &funding_script,
            FUNDING_AMOUNT_SAT,
            &&self.entropy,
            secp,
        );
        let ldk_remote = built.sign_counterparty_commitment(
            &self.channel.remote.funding,
            &funding_script,
            FUNDING_AMOUNT_SAT,
            secp,
        );
        for (sig, key, who) in [
            (&ldk_local, &local_funding, "holder"),
            (&ldk_remote, &remote_funding, "counterparty"),
        ] {
            assert!(is_low_r(sig), "{what}: LDK's {who} signature is not low-R");
            secp.verify_ecdsa(&sighash, sig, key)
                .unwrap_or_else(|e| panic!("{what}: LDK's {who} signature: {e}"));
        }
        let ldk_counterparty_sig_equal = der_hex(&ldk_remote) == self.case.remote_sig;
        assert_eq!(
            ldk_counterparty_sig_equal,
            is_low_r(&vector_remote),
            "{what}: LDK's counterparty signature equals the appendix's exactly when that is low-R"
        );
        let ldk_signed = with_funding_witness(
            &built.transaction,
            &ldk_local,
            &ldk_remote,
            local_first,
            &funding_script,
        );
        assert_eq!(
            ldk_signed.compute_txid(),
            signed.compute_txid(),
            "{what}: txid"
        );
        assert_spends(&ldk_signed, &funding_output, &format!("{what}, LDK-signed"));
        ldk_counterparty_sig_equal
    }

    /// Points 1 to 5 for every HTLC-timeout and HTLC-success transaction,
    /// one per untrimmed HTLC in commitment output order.
    fn htlc_transactions(
        &self,
        trusted: &TrustedCommitmentTransaction<'_>,
        directed: &DirectedChannelTransactionParameters<'_>,
    ) {
        let name = self.case.name;
        let secp = &self.channel.secp;
        let channel_type = &self.channel_type;
        let keys = trusted.keys();
        let htlcs = trusted.nondust_htlcs();
        assert_eq!(
            htlcs.len(),
            self.case.htlc_txs.len(),
            "{name}: untrimmed HTLCs"
        );

        let point = &self.channel.per_commitment_point;
        let local_key = derive_private_key(secp, point, &self.channel.local.payment_base);
        let remote_key = derive_private_key(secp, point, &self.channel.remote.payment_base);
        let local_pubkey = keys.broadcaster_htlc_key.to_public_key();
        let remote_pubkey = keys.countersignatory_htlc_key.to_public_key();
        assert_eq!(PublicKey::from_secret_key(secp, &local_key), local_pubkey);
        assert_eq!(PublicKey::from_secret_key(secp, &remote_key), remote_pubkey);
        let remote_sighash_type = if channel_type.supports_anchors_zero_fee_htlc_tx() {
            EcdsaSighashType::SinglePlusAnyoneCanPay
        } else {
            EcdsaSighashType::All
        };
        let ldk_local_sigs: Vec<Signature> = trusted
            .get_htlc_sigs(
                &self.channel.local.payment_base,
                directed,
                &&self.entropy,
                secp,
            )
            .unwrap_or_else(|()| panic!("{name}: LDK's get_htlc_sigs"));

        for (((output, htlc), vector), ldk_local_sig) in htlcs
            .iter()
            .enumerate()
            .zip(self.case.htlc_txs)
            .zip(&ldk_local_sigs)
        {
            let number = appendix_htlc(self.case, htlc).number;
            let kind = if htlc.offered { "timeout" } else { "success" };
            let what = format!("{name}: output {output}, HTLC-{kind} for HTLC #{number}");

            // 1. Rebuild.
            let htlc_tx = build_htlc_transaction(
                &trusted.txid(),
                self.case.feerate_per_kw,
                directed.contest_delay(),
                htlc,
                channel_type,
                &keys.broadcaster_delayed_payment_key,
                &keys.revocation_key,
            );
            let expected = transaction(vector.tx);
            assert_eq!(
                tx_hex(&htlc_tx),
                tx_hex(&unsigned(&expected)),
                "{what}: unsigned"
            );

            // 2. The appendix's signatures verify.
            let script = get_htlc_redeemscript(htlc, channel_type, keys);
            let remote_sighash = htlc_sighash(&htlc_tx, &script, htlc, remote_sighash_type);
            let local_sighash = htlc_sighash(&htlc_tx, &script, htlc, EcdsaSighashType::All);
            let vector_remote = witness_signature(&expected, 1, remote_sighash_type, &what);
            let vector_local = witness_signature(&expected, 2, EcdsaSighashType::All, &what);
            assert_eq!(
                der_hex(&vector_remote),
                vector.remote_sig,
                "{what}: remote_htlc_signature is the one in the transaction"
            );
            secp.verify_ecdsa(&remote_sighash, &vector_remote, &remote_pubkey)
                .unwrap_or_else(|e| panic!("{what}: the appendix's remote signature: {e}"));
            secp.verify_ecdsa(&local_sighash, &vector_local, &local_pubkey)
                .unwrap_or_else(|e| panic!("{what}: the appendix's local signature: {e}"));

            // 3. Non-grinding, byte for byte.
            let remote_sig = secp.sign_ecdsa(&remote_sighash, &remote_key);
            let local_sig = secp.sign_ecdsa(&local_sighash, &local_key);
            assert_eq!(
                der_hex(&remote_sig),
                vector.remote_sig,
                "{what}: remote signature"
            );
            assert_eq!(
                der_hex(&local_sig),
                der_hex(&vector_local),
                "{what}: local signature"
            );
            let preimage = preimage(self.case, htlc);
            let mut signed = htlc_tx.clone();
            signed.input[0].witness =
                build_htlc_input_witness(&local_sig, &remote_sig, &preimage, &script, channel_type);
            assert_eq!(tx_hex(&signed), vector.tx, "{what}: signed transaction");

            // 5. Bitcoin Core accepts it as a spend of the HTLC output.
            let vout = htlc.transaction_output_index.unwrap() as usize;
            let spent = &trusted.built_transaction().transaction.output[vout];
            assert_spends(&signed, spent, &what);

            // 4. LDK's grinding holder signature, beside the remote one.
            assert!(
                is_low_r(ldk_local_sig),
                "{what}: LDK's signature is not low-R"
            );
            secp.verify_ecdsa(&local_sighash, ldk_local_sig, &local_pubkey)
                .unwrap_or_else(|e| panic!("{what}: LDK's signature: {e}"));
            let mut ldk_signed = htlc_tx;
            ldk_signed.input[0].witness = build_htlc_input_witness(
                ldk_local_sig,
                &remote_sig,
                &preimage,
                &script,
                channel_type,
            );
            assert_spends(&ldk_signed, spent, &format!("{what}, LDK-signed"));
        }
    }
}

/// Runs every case of `appendix`, reporting each by name, and fails
/// listing every case that failed.
fn check_appendix(appendix: Appendix, expected_cases: usize) {
    let cases = appendix.cases();
    assert_eq!(
        cases.len(),
        expected_cases,
        "Appendix {appendix:?}: cases listed"
    );
    let names: HashSet<&str> = cases.iter().map(|c| c.name).collect();
    assert_eq!(
        names.len(),
        cases.len(),
        "Appendix {appendix:?}: case names are unique"
    );
    let mut failed = Vec::new();
    for case in cases {
        match panic::catch_unwind(|| check_case(appendix, case)) {
            Ok(report) => println!(
                "Appendix {appendix:?}: {:?} passes: commitment and {} HTLC transactions \
                 rebuilt, signed byte for byte and verified; LDK's counterparty signature {}",
                case.name,
                report.htlc_txs,
                if report.ldk_counterparty_sig_equal {
                    "equals the appendix's (low-R)"
                } else {
                    "differs from the appendix's (high-R) and verifies"
                },
            ),
            Err(_) => failed.push(case.name),
        }
    }
    assert!(
        failed.is_empty(),
        "Appendix {appendix:?}: {} of {} cases fail: {failed:#?}",
        failed.len(),
        cases.len()
    );
}

/// Every case of Appendix C passes points 1 to 5 of the module docs: all
/// 16, that is the commitment with no HTLCs, all five HTLCs untrimmed at
/// the minimum feerate, the maximum and minimum feerate of each step at
/// which another output is trimmed down to one output, the fee greater
/// than the funder's amount, and the two offered HTLCs with the same
/// amount and payment hash, ordered by CLTV.
#[test]
fn appendix_c_commitment_and_htlc_transactions() {
    check_appendix(Appendix::C, 16);
}

/// Every case of Appendix F passes points 1 to 5 of the module docs under
/// `option_anchors` (zero-fee HTLC transactions): all 9, that is no HTLCs
/// with both anchors and with a single anchor, seven outputs untrimmed,
/// the minimum dust limit of each step at which HTLCs are trimmed down to
/// one output, and the same-amount, same-payment-hash HTLCs.
#[test]
fn appendix_f_commitment_and_htlc_transactions_with_anchors() {
    check_appendix(Appendix::F, 9);
}

/// The keys every case relies on are the appendix's: from the appendix's
/// secrets LDK derives exactly the published funding script, basepoints,
/// per-commitment point, commitment number obscuring factor and
/// per-commitment keys (the public ones, and the private ones the appendix
/// lists), so a case passing is not an artefact of a different key set.
#[test]
fn appendix_c_keys_derive_as_published() {
    let channel = Channel::new();
    let secp = &channel.secp;
    let local = channel.local.pubkeys(secp);
    let remote = channel.remote.pubkeys(secp);
    assert_eq!(local.funding_pubkey, public(LOCAL_FUNDING_PUBKEY));
    assert_eq!(remote.funding_pubkey, public(REMOTE_FUNDING_PUBKEY));
    let funding_script = make_funding_redeemscript(&local.funding_pubkey, &remote.funding_pubkey);
    assert_eq!(
        hex::encode(funding_script.as_bytes()),
        FUNDING_WITNESS_SCRIPT
    );
    assert_eq!(local.payment_point, public(LOCAL_PAYMENT_BASEPOINT));
    assert_eq!(remote.payment_point, public(REMOTE_PAYMENT_BASEPOINT));
    assert_eq!(
        remote.revocation_basepoint.to_public_key(),
        public(REMOTE_REVOCATION_BASEPOINT)
    );
    assert_eq!(
        local.delayed_payment_basepoint.to_public_key(),
        public(LOCAL_DELAYED_PAYMENT_BASEPOINT)
    );
    assert_eq!(
        channel.per_commitment_point,
        public(LOCAL_PER_COMMITMENT_POINT)
    );
    let factor = get_commitment_transaction_number_obscure_factor(
        &local.payment_point,
        &remote.payment_point,
        true,
    );
    assert_eq!(factor, OBSCURING_FACTOR);

    let point = &channel.per_commitment_point;
    let keys = TxCreationKeys::from_channel_static_keys(point, &local, &remote, secp);
    assert_eq!(
        keys.broadcaster_htlc_key.to_public_key(),
        public(LOCAL_HTLC_PUBKEY)
    );
    assert_eq!(
        keys.countersignatory_htlc_key.to_public_key(),
        public(REMOTE_HTLC_PUBKEY)
    );
    assert_eq!(
        keys.broadcaster_delayed_payment_key.to_public_key(),
        public(LOCAL_DELAYED_PUBKEY)
    );
    assert_eq!(
        keys.revocation_key.to_public_key(),
        public(LOCAL_REVOCATION_PUBKEY)
    );
    for (base, published) in [
        (&channel.local.payment_base, LOCAL_HTLC_PRIVKEY),
        (&channel.remote.payment_base, REMOTE_HTLC_PRIVKEY),
        (&channel.local.delayed_payment_base, LOCAL_DELAYED_PRIVKEY),
    ] {
        assert_eq!(derive_private_key(secp, point, base), secret(published));
    }
}

/// The checker can fail: "commitment tx with seven outputs untrimmed
/// (maximum feerate)" built one feerate step higher trims HTLC #0 (the
/// next case's boundary) and no longer matches its vector.
#[test]
fn a_case_built_one_feerate_step_off_fails() {
    let case = &APPENDIX_C[2];
    assert_eq!(
        case.name,
        "commitment tx with seven outputs untrimmed (maximum feerate)"
    );
    let off_by_one = CommitmentVector {
        feerate_per_kw: case.feerate_per_kw + 1,
        ..*case
    };
    let outcome = panic::catch_unwind(|| check_case(Appendix::C, &off_by_one));
    assert!(
        outcome.is_err(),
        "a feerate one above the case's still matches its vector"
    );
}
