//! The shape of BOLT 3's commitment and HTLC transaction vectors
//! (Appendices C and F) and the channel every case shares.
//!
//! Only data lives here: the rows are in `appendix_c.rs` and
//! `appendix_f.rs`, the checker in `../bolt3_transactions.rs`.
//!
//! Sources. The case list, names, balances, feerates, dust limits and HTLCs
//! come from BOLT 3 itself (`lightning/bolts`, `03-transactions.md`,
//! Appendix C and Appendix F's JSON). The hex (signatures and signed
//! transactions) is the BOLT's, ported from LDK's own copy of these vectors
//! (`lightning-0.2.7/src/ln/channel.rs`, `outbound_commitment_test`) except
//! Appendix F's "commitment tx with seven outputs untrimmed", which LDK
//! does not port and which is transcribed from the BOLT's JSON. Every hex
//! string is checked against a transaction rebuilt from the parameters, so
//! a transcription error fails a test rather than passing silently.

/// One named case of Appendix C or F: the parameters, and what the
/// appendix says the signed transactions are.
pub(crate) struct CommitmentVector {
    /// The case's name, exactly as the appendix spells it.
    pub(crate) name: &'static str,
    /// The appendix's `to_local_msat`: local's balance before the fee and
    /// the anchors are taken from it, HTLCs already excluded. Local is the
    /// opener, so it pays both.
    pub(crate) to_local_msat: u64,
    /// The appendix's `to_remote_msat`.
    pub(crate) to_remote_msat: u64,
    /// `local_feerate_per_kw`.
    pub(crate) feerate_per_kw: u32,
    /// Local's `dust_limit_satoshis` (the owner of the commitment).
    pub(crate) dust_limit_sat: u64,
    /// Which HTLCs the case offers to the commitment, trimmed or not.
    pub(crate) htlcs: HtlcSet,
    /// `remote_signature` (DER, no sighash byte).
    pub(crate) remote_sig: &'static str,
    /// `output commit_tx`: the fully signed commitment transaction.
    pub(crate) commit_tx: &'static str,
    /// One entry per untrimmed HTLC, in commitment output order.
    pub(crate) htlc_txs: &'static [HtlcTxVector],
}

/// One HTLC-success or HTLC-timeout transaction of a case.
pub(crate) struct HtlcTxVector {
    /// `remote_htlc_signature` (DER, no sighash byte).
    pub(crate) remote_sig: &'static str,
    /// The fully signed HTLC transaction.
    pub(crate) tx: &'static str,
}

/// The HTLC sets the appendices use.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HtlcSet {
    /// "the HTLCs are not used for the first 'simple commitment tx with no
    /// HTLCs' test" (and, in Appendix F, for the single-anchor one).
    None,
    /// HTLCs 0 to 4 of the appendix's common parameters.
    Five,
    /// HTLCs 1, 5 and 6: 5 and 6 are offered with the same amount (in
    /// satoshis) and payment hash, so their outputs are identical and only
    /// the CLTV orders them.
    SameAmountAndPreimage,
}

/// One HTLC as the appendix lists it, from local's point of view.
pub(crate) struct HtlcVector {
    /// The appendix's HTLC number.
    pub(crate) number: u8,
    /// `local->remote` (offered by local); `remote->local` is received.
    pub(crate) offered: bool,
    pub(crate) amount_msat: u64,
    pub(crate) cltv_expiry: u32,
    pub(crate) payment_preimage: [u8; 32],
}

const fn htlc(
    number: u8,
    offered: bool,
    amount_msat: u64,
    cltv_expiry: u32,
    preimage_byte: u8,
) -> HtlcVector {
    HtlcVector {
        number,
        offered,
        amount_msat,
        cltv_expiry,
        payment_preimage: [preimage_byte; 32],
    }
}

/// Appendix C's `htlc 0` to `htlc 4`.
const FIVE_HTLCS: &[HtlcVector] = &[
    htlc(0, false, 1_000_000, 500, 0x00),
    htlc(1, false, 2_000_000, 501, 0x01),
    htlc(2, true, 2_000_000, 502, 0x02),
    htlc(3, true, 3_000_000, 503, 0x03),
    htlc(4, false, 4_000_000, 504, 0x04),
];

/// The same-amount case: "HTLC #5 and #6 have CLTV 506 and 505,
/// respectively, and preimage 0505...05"; one of them carries one extra
/// millisatoshi (`to_local_msat` is 6987999999), which rounds away. They
/// are listed highest CLTV first so that the builder has to reorder them.
const SAME_AMOUNT_HTLCS: &[HtlcVector] = &[
    htlc(1, false, 2_000_000, 501, 0x01),
    htlc(5, true, 5_000_001, 506, 0x05),
    htlc(6, true, 5_000_000, 505, 0x05),
];

impl HtlcSet {
    pub(crate) fn htlcs(self) -> &'static [HtlcVector] {
        match self {
            HtlcSet::None => &[],
            HtlcSet::Five => FIVE_HTLCS,
            HtlcSet::SameAmountAndPreimage => SAME_AMOUNT_HTLCS,
        }
    }
}

// The channel every case of both appendices shares (Appendix C's
// "common basic parameters"). Local is the opener and the broadcaster of
// every commitment; keys are 32-byte hex without the compression suffix.

pub(crate) const FUNDING_TXID: &str =
    "8984484a580b825b9972d7adb15050b3ab624ccd731946b3eeddb92f4e7ef6be";
pub(crate) const FUNDING_OUTPUT_INDEX: u16 = 0;
pub(crate) const FUNDING_AMOUNT_SAT: u64 = 10_000_000;
pub(crate) const COMMITMENT_NUMBER: u64 = 42;
/// `local_delay`: the `to_self_delay` remote imposes on local's outputs.
pub(crate) const LOCAL_DELAY: u16 = 144;
/// "obscured commitment number = 0x2bb038521914 ^ 42".
pub(crate) const OBSCURING_FACTOR: u64 = 0x2bb0_3852_1914;

pub(crate) const LOCAL_FUNDING_PRIVKEY: &str =
    "30ff4956bbdd3222d44cc5e8a1261dab1e07957bdac5ae88fe3261ef321f3749";
/// `INTERNAL: remote_funding_privkey`.
pub(crate) const REMOTE_FUNDING_PRIVKEY: &str =
    "1552dfba4f6cf29a62a0af13c8d6981d36d0ef8d61ba10fb0fe90da7634d7e13";
/// `INTERNAL: local_payment_basepoint_secret`; the vectors derive local's
/// HTLC key from the payment basepoint too.
pub(crate) const LOCAL_PAYMENT_BASEPOINT_SECRET: &str =
    "1111111111111111111111111111111111111111111111111111111111111111";
/// `INTERNAL: remote_revocation_basepoint_secret`.
pub(crate) const REMOTE_REVOCATION_BASEPOINT_SECRET: &str =
    "2222222222222222222222222222222222222222222222222222222222222222";
/// `INTERNAL: local_delayed_payment_basepoint_secret`.
pub(crate) const LOCAL_DELAYED_PAYMENT_BASEPOINT_SECRET: &str =
    "3333333333333333333333333333333333333333333333333333333333333333";
/// `INTERNAL: remote_payment_basepoint_secret`; also remote's HTLC
/// basepoint secret.
pub(crate) const REMOTE_PAYMENT_BASEPOINT_SECRET: &str =
    "4444444444444444444444444444444444444444444444444444444444444444";
/// `x_local_per_commitment_secret`.
pub(crate) const LOCAL_PER_COMMITMENT_SECRET: &str =
    "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

// Not given by the appendices and not used by local's commitment or HTLC
// transactions (local's revocation basepoint only enters remote's
// commitments, remote's delayed basepoint only remote's `to_local`): any
// valid keys do. These are LDK's choices in its port.
pub(crate) const LOCAL_REVOCATION_BASEPOINT_SECRET: &str =
    "0fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
pub(crate) const REMOTE_DELAYED_PAYMENT_BASEPOINT_SECRET: &str = REMOTE_FUNDING_PRIVKEY;

// What the appendix publishes as derived from the secrets above; the keys
// test checks LDK derives exactly these.

pub(crate) const LOCAL_FUNDING_PUBKEY: &str =
    "023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb";
pub(crate) const REMOTE_FUNDING_PUBKEY: &str =
    "030e9f7b623d2ccc7c9bd44d66d5ce21ce504c0acf6385a132cec6d3c39fa711c1";
pub(crate) const FUNDING_WITNESS_SCRIPT: &str = "5221023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb21030e9f7b623d2ccc7c9bd44d66d5ce21ce504c0acf6385a132cec6d3c39fa711c152ae";
pub(crate) const LOCAL_PAYMENT_BASEPOINT: &str =
    "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa";
pub(crate) const REMOTE_PAYMENT_BASEPOINT: &str =
    "032c0b7cf95324a07d05398b240174dc0c2be444d96b159aa6c7f7b1e668680991";
pub(crate) const REMOTE_REVOCATION_BASEPOINT: &str =
    "02466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27";
pub(crate) const LOCAL_DELAYED_PAYMENT_BASEPOINT: &str =
    "023c72addb4fdf09af94f0c94d7fe92a386a7e70cf8a1d85916386bb2535c7b1b1";
pub(crate) const LOCAL_PER_COMMITMENT_POINT: &str =
    "025f7117a78150fe2ef97db7cfc83bd57b2e2c0d0dd25eaf467a4a1c2a45ce1486";
/// `local_privkey`: local's HTLC key for this commitment.
pub(crate) const LOCAL_HTLC_PRIVKEY: &str =
    "bb13b121cdc357cd2e608b0aea294afca36e2b34cf958e2e6451a2f274694491";
/// `localpubkey` (`local_htlcpubkey` in the HTLC scripts).
pub(crate) const LOCAL_HTLC_PUBKEY: &str =
    "030d417a46946384f88d5f3337267c5e579765875dc4daca813e21734b140639e7";
/// `INTERNAL: remote_privkey`: remote's HTLC key for this commitment.
pub(crate) const REMOTE_HTLC_PRIVKEY: &str =
    "8deba327a7cc6d638ab0eb025770400a6184afcba6713c210d8d10e199ff2fda";
/// `remote_htlcpubkey` in the HTLC scripts.
pub(crate) const REMOTE_HTLC_PUBKEY: &str =
    "0394854aa6eab5b2a8122cc726e9dded053a2184d88256816826d6231c068d4a5b";
pub(crate) const LOCAL_DELAYED_PRIVKEY: &str =
    "adf3464ce9c2f230fd2582fda4c6965e4993ca5524e8c9580e3df0cf226981ad";
pub(crate) const LOCAL_DELAYED_PUBKEY: &str =
    "03fd5960528dc152014952efdb702a88f71e3c1653b2314431701ec77e57fde83c";
pub(crate) const LOCAL_REVOCATION_PUBKEY: &str =
    "0212a140cd0c6539d07cd08dfe09984dec3251ea808b892efeac3ede9402bf2b19";
