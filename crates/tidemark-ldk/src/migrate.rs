//! Moving an LDK node from `KeysManager` to Tidemark, keeping its node id
//! and its open channels.
//!
//! Tidemark's node keys are `KeysManager`'s over the same 32-byte seed, so
//! the node id and every channel's keys stay what they were. What the
//! signer lacks is each open channel's *position*: which commitments were
//! signed and revoked. [`extract_channel`] reads it from the node's newest
//! persisted `ChannelMonitor` (bytes, as LDK's persister stores them) as a
//! [`ChannelImport`]; [`import_channels`] gives the imports to the signer,
//! once per channel.
//!
//! # Operator procedure
//!
//! 1. Stop the node, cleanly, with its channels quiescent (no update in
//!    flight: every `commitment_signed` answered by a `revoke_and_ack` on
//!    both sides; a node idle for a few seconds after its last payment is).
//!    It must stay stopped until step 5: a node that signs after its
//!    monitors were read moves its channels past the import.
//! 2. `tidemark init --seed-file SEED` (the node's seed, hex) and start
//!    the signer; the `[lightning]` node's remote key derivation must be
//!    the one the node ran with.
//! 3. Extract one import per monitor ([`extract_channels`]) from the
//!    newest persisted monitors. Extraction is pure: no network, nothing
//!    written, nothing broadcast.
//! 4. Send them with [`import_channels`] under a client identity kept for
//!    imports. An import lands only on a channel the signer has no state
//!    for; the same import again is replayed
//!    ([`ImportOutcome::AlreadyImported`]); anything else is refused
//!    (`policy-channel-already-setup`, `policy-import-inconsistent`, ...)
//!    and reported with the channel it was for.
//! 5. Restart the node from the same persisted `ChannelManager` and
//!    monitors, with [`TidemarkSigner`](crate::TidemarkSigner) as entropy
//!    source, node signer and signer provider.
//!
//! # What is read, and how
//!
//! Everything comes from a throwaway copy of the monitor, deserialized with
//! a recording `KeysManager` (its channel signer is the channel's
//! `InMemorySigner`, recording the arguments of two calls):
//!
//! - **setup and holder commitment**: `broadcast_latest_holder_commitment_txn`
//!   on the copy makes LDK sign its newest holder commitment
//!   (`sign_holder_commitment`): the channel's parameters and the commitment
//!   with the counterparty's signatures. The copy's broadcaster drops it.
//! - **revoked count and secrets**: `sign_to_local_justice_tx(.., n)`
//!   signs (`sign_justice_revoked_output` with the stored secret) exactly
//!   when the copy holds the counterparty's secret of `n`; a binary search
//!   finds how many are revoked, then the secrets of the BOLT 3 compact
//!   store's numbers are read one by one.
//! - **the newest counterparty commitment**: LDK 0.2.7 has no public
//!   getter for its number, point or txid. They are read from the fixed
//!   prefix of the monitor's serialization (`serialized`, cross-checked
//!   against the public getters), and its content is rebuilt as the mirror
//!   of the holder commitment (same fee rate and HTLCs, balances swapped),
//!   or taken from `initial_counterparty_commitment_tx` for a channel with
//!   no update yet. The rebuilt transaction's txid must be the one the
//!   monitor stored: a channel whose two newest commitments are not
//!   mirrors (not quiescent) is [`MigrateError::NotQuiescent`], never
//!   guessed.
//! - **its signatures**: `KeysManager`'s channel signer signs the rebuilt
//!   commitment again (RFC 6979: the bytes the node sent, when both builds
//!   grind signatures alike), so an identical retransmission after the
//!   restart is replayed.
//!
//! Why the txid check is the safety argument: the import stores the
//! rebuilt content with these signatures, and the signer replays them for
//! that content. A content other than what the node signed would be a
//! second commitment for the number; equal txids mean the very
//! transaction the node signed (the txid commits to every output and to
//! the obscured number).
//!
//! # Invariants
//!
//! - An import describes a quiescent channel: the counterparty revoked
//!   every commitment below the newest signed; holder secrets are
//!   released through the holder commitment's number minus one.
//! - Nothing an extraction recovers is trusted blindly: the signer checks
//!   the import again (`docs/lightning.md`, "Importing an open channel").

mod record;
mod serialized;

use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::{All, PublicKey, Secp256k1};
use bitcoin::transaction::Version;
use bitcoin::{Amount, BlockHash, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid};
use bitcoin::{Witness, absolute};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::channelmonitor::{Balance, ChannelMonitor};
use lightning::ln::chan_utils::{
    ChannelTransactionParameters, CommitmentTransaction, HTLCOutputInCommitment,
    HolderCommitmentTransaction,
};
use lightning::ln::types::ChannelId;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{ChannelSigner as _, KeysManager};
use lightning::util::logger::{Logger, Record};
use lightning::util::ser::ReadableArgs;
use tidemark_client::{Client, ClientError};
use tidemark_lightning::RemoteKeyDerivation;
use tidemark_lightning::channel::{
    ChannelImport, ChannelRequest, CommitmentNumber, CommitmentSignatures, HolderCommitment,
    ImportedCommitment, ImportedSecret, RevocationSecrets,
};
use tidemark_lightning::keys::MAX_COMMITMENT_INDEX;

use crate::convert::{self, Unsupported};
use record::{RecordingKeys, RecordingSigner};

/// One open channel's position, read from its monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigratedChannel {
    /// The channel.
    pub channel_id: ChannelId,
    /// The peer.
    pub counterparty_node_id: PublicKey,
    /// What the signer is given.
    pub import: ChannelImport,
}

/// What the signer did with one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored: the channel continues from the import.
    Imported,
    /// This very import was stored before (a re-run): nothing changed.
    AlreadyImported,
}

/// Why a channel could not be extracted or imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The bytes are not a monitor lightning 0.2.7 reads.
    #[error("the monitor does not deserialize: {0}")]
    Deserialize(String),
    /// The monitor's serialization is not laid out as lightning 0.2.7
    /// writes it, or disagrees with what the monitor says publicly.
    #[error("the monitor's serialized fields do not read as expected: {0}")]
    Layout(String),
    /// The seed (or the remote key derivation) is not the one the channel
    /// was opened with.
    #[error(
        "channel {channel_id}: its keys are not this seed's (or not this remote key derivation's)"
    )]
    ForeignSeed {
        /// The channel.
        channel_id: ChannelId,
    },
    /// The channel has an update in flight; restart the node, let it
    /// settle, stop it and extract again.
    #[error("channel {channel_id} is not quiescent: {detail}")]
    NotQuiescent {
        /// The channel.
        channel_id: ChannelId,
        /// What is in flight.
        detail: String,
    },
    /// The channel uses something the signer does not support.
    #[error("channel {channel_id}: {what} is not supported")]
    Unsupported {
        /// The channel.
        channel_id: ChannelId,
        /// What.
        what: &'static str,
    },
    /// The channel's funding output is spent on chain (or being spent):
    /// there is no open channel to import.
    #[error("channel {channel_id} is closed: its funding output is spent")]
    Closed {
        /// The channel.
        channel_id: ChannelId,
    },
    /// The monitor signed no holder commitment when asked to (a channel
    /// whose funding was never broadcast).
    #[error("channel {channel_id}: the monitor gave no holder commitment")]
    NoHolderCommitment {
        /// The channel.
        channel_id: ChannelId,
    },
    /// The signer refused or failed the import of this channel.
    #[error("channel {channel_id}: the import failed: {source}")]
    Import {
        /// The channel.
        channel_id: ChannelId,
        /// The signer's answer (a refusal carries its tag and mark).
        #[source]
        source: Box<ClientError>,
    },
}

/// The imports of every channel in `monitors` (each as LDK's persister
/// stores it), in order. See [`extract_channel`].
pub fn extract_channels<M: AsRef<[u8]>>(
    seed: &[u8; 32],
    remote_key: RemoteKeyDerivation,
    monitors: &[M],
) -> Result<Vec<MigratedChannel>, MigrateError> {
    monitors
        .iter()
        .map(|m| extract_channel(seed, remote_key, m.as_ref()))
        .collect()
}

/// The import of the channel whose newest persisted monitor is `monitor`,
/// for the node whose `KeysManager` ran over `seed` with `remote_key`.
/// Pure: no network, nothing written or broadcast.
pub fn extract_channel(
    seed: &[u8; 32],
    remote_key: RemoteKeyDerivation,
    monitor: &[u8],
) -> Result<MigratedChannel, MigrateError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let v2 = matches!(remote_key, RemoteKeyDerivation::V2);
    let keys = RecordingKeys::new(KeysManager::new(
        seed,
        now.as_secs(),
        now.subsec_nanos(),
        v2,
    ));
    let (_, copy) =
        <(BlockHash, ChannelMonitor<RecordingSigner>)>::read(&mut &monitor[..], (&keys, &keys))
            .map_err(|e| MigrateError::Deserialize(format!("{e:?}")))?;
    let prefix = serialized::read_prefix(monitor).map_err(|e| MigrateError::Layout(e.0))?;
    Extraction {
        keys,
        copy,
        prefix,
        secp: Secp256k1::new(),
    }
    .run()
}

/// Gives each channel's import to the signer, in order, as `node`. Stops
/// at the first channel the signer does not take; a re-run replays the
/// channels already imported ([`ImportOutcome::AlreadyImported`]).
pub async fn import_channels(
    client: &Client,
    node: &str,
    channels: &[MigratedChannel],
) -> Result<Vec<ImportOutcome>, MigrateError> {
    let mut outcomes = Vec::with_capacity(channels.len());
    for c in channels {
        let request = ChannelRequest::Import(Box::new(c.import.clone()));
        let answer = client
            .channel_call(node, &c.import.setup.channel_keys_id, &request, None)
            .await
            .map_err(|source| MigrateError::Import {
                channel_id: c.channel_id,
                source: Box::new(source),
            })?;
        let outcome = if answer.replayed {
            ImportOutcome::AlreadyImported
        } else {
            ImportOutcome::Imported
        };
        tracing::info!(
            node,
            channel_id = %c.channel_id,
            counterparty_signed = c.import.counterparty_signed.last().map(|s| s.commitment.number.get()),
            holder = c.import.holder.commitment.number.get(),
            ?outcome,
            "channel imported"
        );
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

struct Extraction {
    keys: RecordingKeys,
    copy: ChannelMonitor<RecordingSigner>,
    prefix: serialized::MonitorPrefix,
    secp: Secp256k1<All>,
}

impl Extraction {
    fn channel_id(&self) -> ChannelId {
        self.copy.channel_id()
    }

    fn layout<T>(&self, detail: impl Into<String>) -> Result<T, MigrateError> {
        Err(MigrateError::Layout(format!(
            "channel {}: {}",
            self.channel_id(),
            detail.into()
        )))
    }

    fn unsupported(&self, u: Unsupported) -> MigrateError {
        MigrateError::Unsupported {
            channel_id: self.channel_id(),
            what: u.0,
        }
    }

    fn not_quiescent<T>(&self, detail: String) -> Result<T, MigrateError> {
        Err(MigrateError::NotQuiescent {
            channel_id: self.channel_id(),
            detail,
        })
    }

    fn run(self) -> Result<MigratedChannel, MigrateError> {
        let channel_id = self.channel_id();
        // Until its funding is spent, a monitor reports the balance
        // claimable on close (LDK 0.2.7, `get_claimable_balances`).
        let open = self
            .copy
            .get_claimable_balances()
            .iter()
            .any(|b| matches!(b, Balance::ClaimableOnChannelClose { .. }));
        if !open {
            return Err(MigrateError::Closed { channel_id });
        }
        let Some(channel_keys_id) = self.keys.with(|r| r.channel_keys_id) else {
            return self.layout("the monitor derived no channel signer");
        };
        let p = &self.prefix;
        let funding = self.copy.get_funding_txo();
        if p.channel_keys_id != channel_keys_id
            || (p.funding_txid, p.funding_index) != (funding.txid, funding.index)
            || p.funding_script != self.copy.get_funding_script()
        {
            return self
                .layout("the channel keys id or funding read do not match the monitor's getters");
        }

        let (params, holder_tx) = self.holder_commitment()?;
        if params.channel_value_satoshis != p.channel_value_sat {
            return self.layout("the channel value read does not match the parameters");
        }
        let in_memory = self.keys.in_memory(channel_keys_id);
        if in_memory.pubkeys(&self.secp) != params.holder_pubkeys {
            return Err(MigrateError::ForeignSeed { channel_id });
        }
        let setup = convert::setup(channel_keys_id, &params).map_err(|e| self.unsupported(e))?;
        let holder = HolderCommitment {
            commitment: convert::commitment(&holder_tx).map_err(|e| self.unsupported(e))?,
            counterparty_signature: holder_tx.counterparty_sig,
            counterparty_htlc_signatures: holder_tx.counterparty_htlc_sigs.clone(),
        };

        let Some((newest_index, newest_point)) = p.newest_point() else {
            return self.layout("no counterparty commitment point");
        };
        let Some(txid) = p.current_counterparty_txid else {
            return self.layout("no counterparty commitment txid");
        };
        let newest = convert::number(newest_index).map_err(|e| self.unsupported(e))?;
        let revoked = self.revoked_count(txid, newest.get())?;
        if revoked != newest.get() {
            return self.not_quiescent(format!(
                "counterparty commitment {revoked} is not revoked yet and {newest} was signed \
                 (a revoke_and_ack is awaited)"
            ));
        }
        let counterparty_secrets = self.secrets(txid, revoked)?;
        self.check_previous_point(txid, newest)?;

        let counterparty =
            self.newest_counterparty(&params, &holder_tx, newest_index, newest_point);
        if counterparty.trust().txid() != txid {
            return self.not_quiescent(format!(
                "counterparty commitment {newest} is not the mirror of holder commitment {} \
                 (updates are in flight, or their outputs are trimmed differently)",
                holder.commitment.number
            ));
        }
        let Ok((signature, htlc_signatures)) = in_memory.sign_counterparty_commitment(
            &params,
            &counterparty,
            Vec::new(),
            Vec::new(),
            &self.secp,
        ) else {
            return self.layout("KeysManager did not sign the counterparty commitment again");
        };
        tracing::debug!(
            %channel_id,
            counterparty_signed = newest.get(),
            counterparty_revoked = revoked,
            holder = holder.commitment.number.get(),
            "channel position extracted"
        );
        let holder_revoked_through = holder
            .commitment
            .number
            .get()
            .checked_sub(1)
            .and_then(CommitmentNumber::new);
        Ok(MigratedChannel {
            channel_id,
            counterparty_node_id: self.copy.get_counterparty_node_id(),
            import: ChannelImport {
                setup,
                counterparty_signed: vec![ImportedCommitment {
                    commitment: convert::commitment(&counterparty)
                        .map_err(|e| self.unsupported(e))?,
                    signatures: Some(CommitmentSignatures {
                        signature,
                        htlc_signatures,
                    }),
                }],
                counterparty_revoked: revoked,
                counterparty_secrets,
                holder,
                holder_revoked_through,
            },
        })
    }

    /// The newest holder commitment, as the copy signs it to broadcast.
    fn holder_commitment(
        &self,
    ) -> Result<(ChannelTransactionParameters, HolderCommitmentTransaction), MigrateError> {
        self.copy
            .broadcast_latest_holder_commitment_txn(&&Dropped, &&FixedFee, &&Quiet);
        self.keys
            .with(|r| r.holder.take())
            .ok_or(MigrateError::NoHolderCommitment {
                channel_id: self.channel_id(),
            })
    }

    /// The counterparty's secret of commitment `number`, if the copy
    /// holds it: it signs a justice input spending commitment `txid` with
    /// it (`txid` only selects the funding scope).
    fn probe(&self, txid: Txid, number: u64) -> Option<[u8; 32]> {
        let index = MAX_COMMITMENT_INDEX.checked_sub(number)?;
        let justice = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint { txid, vout: 0 },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(1_000),
                script_pubkey: ScriptBuf::new(),
            }],
        };
        self.keys.with(|r| r.justice_key = None);
        self.copy
            .sign_to_local_justice_tx(justice, 0, 1_000, index)
            .ok()?;
        self.keys
            .with(|r| r.justice_key.take())
            .map(|k| k.secret_bytes())
    }

    /// How many counterparty commitments are revoked (every number below
    /// the result has its secret in the copy), at most `newest`.
    fn revoked_count(&self, txid: Txid, newest: u64) -> Result<u64, MigrateError> {
        // Invariant: probe(lo - 1) holds (or lo == 0), probe(hi) does not.
        if self.probe(txid, newest).is_some() {
            return self.layout(format!(
                "the newest counterparty commitment {newest} is revoked"
            ));
        }
        let (mut lo, mut hi) = (0u64, newest);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.probe(txid, mid).is_some() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The compact store's entries for `revoked`.
    fn secrets(&self, txid: Txid, revoked: u64) -> Result<Vec<ImportedSecret>, MigrateError> {
        let Some(numbers) = RevocationSecrets::compact_numbers(revoked) else {
            return self.layout(format!("{revoked} revoked commitments"));
        };
        let mut secrets = Vec::with_capacity(numbers.len());
        for n in numbers {
            let (Some(number), Some(secret)) = (CommitmentNumber::new(n), self.probe(txid, n))
            else {
                return self.layout(format!("no secret of revoked counterparty commitment {n}"));
            };
            secrets.push(ImportedSecret { number, secret });
        }
        Ok(secrets)
    }

    /// The point read for the commitment before the newest, if any, must
    /// be the one its secret gives (it checks the serialized read).
    fn check_previous_point(
        &self,
        txid: Txid,
        newest: CommitmentNumber,
    ) -> Result<(), MigrateError> {
        let Some(previous) = newest.get().checked_sub(1) else {
            return Ok(());
        };
        let Some(point) = self.prefix.point(newest.ldk_index() + 1) else {
            return Ok(());
        };
        let derived = self
            .probe(txid, previous)
            .and_then(|s| bitcoin::secp256k1::SecretKey::from_slice(&s).ok())
            .map(|k| PublicKey::from_secret_key(&self.secp, &k));
        if derived != Some(point) {
            return self.layout(format!(
                "the point read for counterparty commitment {previous} is not its secret's"
            ));
        }
        Ok(())
    }

    /// The newest counterparty commitment: the monitor's initial one if
    /// that is it, else the mirror of the holder commitment.
    fn newest_counterparty(
        &self,
        params: &ChannelTransactionParameters,
        holder: &CommitmentTransaction,
        index: u64,
        point: PublicKey,
    ) -> CommitmentTransaction {
        if let Some(initial) = self.copy.initial_counterparty_commitment_tx()
            && initial.commitment_number() == index
        {
            return initial;
        }
        let htlcs = holder
            .nondust_htlcs()
            .iter()
            .map(|h| HTLCOutputInCommitment {
                offered: !h.offered,
                transaction_output_index: None,
                ..h.clone()
            })
            .collect();
        CommitmentTransaction::new(
            index,
            &point,
            holder.to_countersignatory_value_sat(),
            holder.to_broadcaster_value_sat(),
            holder.negotiated_feerate_per_kw(),
            htlcs,
            &params.as_counterparty_broadcastable(),
            &self.secp,
        )
    }
}

/// The copy's broadcaster: drops everything.
struct Dropped;

impl BroadcasterInterface for Dropped {
    fn broadcast_transactions(&self, _: &[&Transaction]) {}
}

/// The copy's fee estimator (its claims are never broadcast).
struct FixedFee;

impl FeeEstimator for FixedFee {
    fn get_est_sat_per_1000_weight(&self, _: ConfirmationTarget) -> u32 {
        253
    }
}

/// The copy's logger: LDK's records at trace level.
struct Quiet;

impl Logger for Quiet {
    fn log(&self, record: Record) {
        tracing::trace!(target: "tidemark_ldk::migrate::ldk", "{}", record.args);
    }
}
