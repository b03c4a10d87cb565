//! Importing an open channel: the position of a channel that a node ran
//! with LDK's `KeysManager` (same seed, same keys), so that the signer
//! continues where the node stopped instead of at commitment 0.
//!
//! The import is trusted to be the node's newest persisted state (the
//! signer cannot know what the node signed before it came), but everything
//! that can be checked is:
//!
//! - it lands only on a channel with no state
//!   (`policy-channel-already-setup`; an identical repeat is replayed);
//! - the setup passes the setup rules, and the holder keys and the holder
//!   point of the imported holder commitment are the channel keys id's
//!   (`HolderKeysMismatch`, `HolderPointMismatch` errors, as for setup and
//!   validation);
//! - the counterparty's signatures of the holder commitment verify against
//!   the rebuilt transaction (`policy-counterparty-signature-invalid`);
//! - the holder's own signatures of an imported counterparty commitment,
//!   when given, verify (`policy-import-inconsistent`);
//! - the numbers are in step: one or two consecutive counterparty
//!   commitments, at most two unrevoked (and the unrevoked previous one
//!   given, so its revocation can be checked), the holder revocation below
//!   the holder commitment and at most two behind it
//!   (`policy-import-inconsistent`);
//! - the revocation secrets are exactly the compact store's entries
//!   (`policy-import-inconsistent`), consistent with one another and with
//!   the point of the previous counterparty commitment when it is revoked
//!   (`policy-revocation-mismatch`).
//!
//! The resulting state is an ordinary [`ChannelState`]: every later request
//! runs the ordinary rules on it. The import's commitments are not held to
//! the policy's ranges, which govern new commitments.

use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use lightning::ln::chan_utils::ChannelTransactionParameters;

use crate::channel::build::{self, Broadcaster};
use crate::channel::decide::{Rules, Stop, check_new_setup, kind, refuse};
use crate::channel::number::CommitmentNumber;
use crate::channel::request::{ChannelImport, ImportedCommitment, ImportedSecret};
use crate::channel::secrets::RevocationSecrets;
use crate::channel::state::{
    ChannelKind, ChannelState, CounterpartyLedger, HolderLedger, HolderRecord, SignedCommitment,
};
use crate::channel::verdict::{Operation, Output, Verdict};
use crate::tags;

fn inconsistent<T>(detail: String) -> Result<T, Stop> {
    refuse(&tags::IMPORT_INCONSISTENT, detail)
}

/// Decides the import of an open channel onto `state` (which must be
/// `None`, or the state this very import made).
pub(crate) fn import(
    mut rules: Rules<'_>,
    state: Option<&ChannelState>,
    import: &ChannelImport,
) -> Result<Verdict, Stop> {
    let setup = &import.setup;
    if let Some(current) = state {
        let same = current.setup == *setup
            && imported_state(import, &setup.transaction_parameters(), rules.ctx.secp)
                .is_ok_and(|s| s == *current);
        if same {
            return Ok(Verdict::Replay {
                output: Output::Done,
            });
        }
        return refuse(
            &tags::CHANNEL_ALREADY_SETUP,
            "an import lands only on a channel with no state; this channel has one".into(),
        );
    }
    check_new_setup(&mut rules, setup)?;
    let params = setup.transaction_parameters();
    let next = imported_state(import, &params, rules.ctx.secp)?;
    rules.params = Some(params);
    let operation = Operation::VerifyImport {
        channel_keys_id: setup.channel_keys_id,
        holder: setup.holder,
        number: import.holder.commitment.number,
        point: import.holder.commitment.per_commitment_point,
    };
    Ok(rules.sign(Some(next), operation))
}

/// The state the import describes, after every check that needs no key.
fn imported_state(
    import: &ChannelImport,
    params: &ChannelTransactionParameters,
    secp: &Secp256k1<All>,
) -> Result<ChannelState, Stop> {
    let mut state = ChannelState::new(import.setup.clone());
    let kind = kind(&state)?;
    state.counterparty = counterparty_ledger(&state, kind, params, import, secp)?;
    state.holder = holder_ledger(&state, kind, params, import, secp)?;
    Ok(state)
}

fn counterparty_ledger(
    state: &ChannelState,
    kind: ChannelKind,
    params: &ChannelTransactionParameters,
    import: &ChannelImport,
    secp: &Secp256k1<All>,
) -> Result<CounterpartyLedger, Stop> {
    let imported = &import.counterparty_signed;
    let (Some(newest), 1..=2) = (imported.last(), imported.len()) else {
        return inconsistent(format!(
            "{} counterparty commitments; an import gives the newest signed and at most the \
             one before it",
            imported.len()
        ));
    };
    let numbers: Vec<u64> = imported.iter().map(|c| c.commitment.number.get()).collect();
    if numbers
        .windows(2)
        .any(|w| w[0].checked_add(1) != Some(w[1]))
    {
        return inconsistent(format!(
            "counterparty commitments {numbers:?} are not consecutive, oldest first"
        ));
    }
    let newest = newest.commitment.number.get();
    let revoked = import.counterparty_revoked;
    // Every commitment below the newest's predecessor is revoked; the
    // predecessor, if unrevoked, is given (its revocation is checked
    // against its point).
    if !(revoked == newest || (revoked.checked_add(1) == Some(newest) && imported.len() == 2)) {
        return inconsistent(format!(
            "counterparty commitments below {revoked} are revoked, the newest signed is \
             {newest} and {} commitments are given: a commitment would be unrevoked and \
             unknown",
            imported.len()
        ));
    }
    let mut signed = Vec::with_capacity(imported.len());
    for c in imported {
        signed.push(signed_commitment(state, kind, params, c, secp)?);
    }
    let secrets = secrets(revoked, &import.counterparty_secrets)?;
    if let Some(previous) = signed.first().filter(|c| c.number.get() < revoked) {
        let n = previous.number;
        let point = secrets
            .get(n.ldk_index())
            .and_then(|s| SecretKey::from_slice(&s).ok())
            .map(|key| PublicKey::from_secret_key(secp, &key));
        if point != Some(previous.per_commitment_point) {
            return refuse(
                &tags::REVOCATION_MISMATCH,
                format!(
                    "the imported secret of counterparty commitment {n} does not match the \
                     point it was signed with"
                ),
            );
        }
    }
    Ok(CounterpartyLedger {
        signed,
        revoked,
        secrets,
    })
}

fn signed_commitment(
    state: &ChannelState,
    kind: ChannelKind,
    params: &ChannelTransactionParameters,
    imported: &ImportedCommitment,
    secp: &Secp256k1<All>,
) -> Result<SignedCommitment, Stop> {
    let data = &imported.commitment;
    let n = data.number;
    let tx = build::commitment(
        &state.setup,
        kind,
        params,
        data,
        Broadcaster::Counterparty,
        secp,
    )?;
    if let Some(sigs) = &imported.signatures
        && let Err(detail) = build::verify_holder_signatures(
            &state.setup,
            params,
            &tx,
            &sigs.signature,
            &sigs.htlc_signatures,
            secp,
        )
    {
        return inconsistent(format!("imported counterparty commitment {n}: {detail}"));
    }
    Ok(SignedCommitment {
        number: n,
        per_commitment_point: data.per_commitment_point,
        txid: tx.trust().txid(),
        digest: build::commitment_digest(&tx),
        to_holder_sat: data.to_countersignatory_sat,
        htlc_count: u32::try_from(tx.nondust_htlcs().len()).unwrap_or(u32::MAX),
        released: imported.signatures.clone(),
    })
}

/// Rebuilds the compact store from its entries: exactly the numbers a
/// store that received every secret below `revoked` keeps, each consistent
/// with the ones before.
fn secrets(revoked: u64, given: &[ImportedSecret]) -> Result<RevocationSecrets, Stop> {
    let mut given: Vec<ImportedSecret> = given.to_vec();
    given.sort_by_key(|s| s.number);
    let numbers: Vec<u64> = given.iter().map(|s| s.number.get()).collect();
    let expected = RevocationSecrets::compact_numbers(revoked).unwrap_or_default();
    if numbers != expected {
        return inconsistent(format!(
            "revocation secrets of commitments {numbers:?}; with {revoked} revoked the compact \
             store holds those of {expected:?}"
        ));
    }
    let mut secrets = RevocationSecrets::new();
    for s in &given {
        if secrets.provide(s.number.ldk_index(), s.secret).is_err() {
            return refuse(
                &tags::REVOCATION_MISMATCH,
                format!(
                    "the imported secret of counterparty commitment {} contradicts the \
                     secrets of older commitments",
                    s.number
                ),
            );
        }
    }
    Ok(secrets)
}

fn holder_ledger(
    state: &ChannelState,
    kind: ChannelKind,
    params: &ChannelTransactionParameters,
    import: &ChannelImport,
    secp: &Secp256k1<All>,
) -> Result<HolderLedger, Stop> {
    let holder = &import.holder;
    let n = holder.commitment.number;
    let tx = build::commitment(
        &state.setup,
        kind,
        params,
        &holder.commitment,
        Broadcaster::Holder,
        secp,
    )?;
    if let Err(detail) =
        build::verify_counterparty_signatures(&state.setup, params, &tx, holder, secp)
    {
        return refuse(
            &tags::COUNTERPARTY_SIGNATURE_INVALID,
            format!("imported holder commitment {n}: {detail}"),
        );
    }
    // The secret of n-1 is released once n is validated; the peer never
    // signs n+1 before it has it. So n-1 or n-2 is the highest revoked.
    let revoked_through = import.holder_revoked_through;
    let in_step = match revoked_through.map(CommitmentNumber::get) {
        Some(r) => r < n.get() && r.saturating_add(2) >= n.get(),
        None => n.get() <= 1,
    };
    if !in_step {
        return inconsistent(format!(
            "holder secrets released through {:?} do not fit holder commitment {n} \
             (the secret of {n} minus one or minus two is the highest released)",
            revoked_through.map(|r| r.get())
        ));
    }
    Ok(HolderLedger {
        current: Some(HolderRecord {
            commitment: holder.commitment.clone(),
            txid: tx.trust().txid(),
            digest: build::holder_digest(&tx, holder),
            counterparty_signature: holder.counterparty_signature,
            counterparty_htlc_signatures: holder.counterparty_htlc_signatures.clone(),
        }),
        previous: None,
        revoked_through,
    })
}
