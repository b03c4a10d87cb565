//! Synthetic PSBTs for tests, benchmarks and examples: previous
//! transactions that pay the wallet, spent by a transaction with the key
//! origins a wallet such as BDK would attach. No chain is involved.

use bitcoin::absolute::LockTime;
use bitcoin::psbt::{Input, Output, Psbt};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use crate::error::BitcoinError;
use crate::wallet::{Branch, Wallet, WalletKind};

/// A previous transaction paying `amount_sat` to the wallet at
/// `branch`/`index` in output 0; `nonce` makes its txid unique.
pub fn funding(
    wallet: &Wallet,
    branch: Branch,
    index: u32,
    amount_sat: u64,
    nonce: u32,
) -> Result<Transaction, BitcoinError> {
    Ok(Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
                vout: nonce,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(amount_sat),
            script_pubkey: wallet.script_at(branch, index)?,
        }],
    })
}

struct Spend {
    prev: Transaction,
    branch: Branch,
    index: u32,
}

/// Builds a PSBT that spends wallet outputs.
pub struct PsbtBuilder<'w> {
    wallet: &'w Wallet,
    spends: Vec<Spend>,
    outputs: Vec<(TxOut, Option<(Branch, u32)>)>,
}

impl<'w> PsbtBuilder<'w> {
    /// An empty transaction of `wallet`.
    pub fn new(wallet: &'w Wallet) -> Self {
        PsbtBuilder {
            wallet,
            spends: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Spends output 0 of `prev` (from [`funding`]), the wallet's key at
    /// `branch`/`index`.
    pub fn spend(mut self, prev: Transaction, branch: Branch, index: u32) -> Self {
        self.spends.push(Spend {
            prev,
            branch,
            index,
        });
        self
    }

    /// Pays `amount_sat` to `script`.
    pub fn pay(mut self, script: ScriptBuf, amount_sat: u64) -> Self {
        self.outputs.push((
            TxOut {
                value: Amount::from_sat(amount_sat),
                script_pubkey: script,
            },
            None,
        ));
        self
    }

    /// Pays `amount_sat` of change to the wallet's change key `index`,
    /// with its key origin.
    pub fn change(mut self, index: u32, amount_sat: u64) -> Result<Self, BitcoinError> {
        self.outputs.push((
            TxOut {
                value: Amount::from_sat(amount_sat),
                script_pubkey: self.wallet.script_at(Branch::Change, index)?,
            },
            Some((Branch::Change, index)),
        ));
        Ok(self)
    }

    /// The PSBT: every input with its previous transaction and
    /// `witness_utxo` and its key origin, every change output with its
    /// key origin.
    pub fn build(mut self) -> Result<Psbt, BitcoinError> {
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: self
                .spends
                .iter()
                .map(|s| TxIn {
                    previous_output: OutPoint {
                        txid: s.prev.compute_txid(),
                        vout: 0,
                    },
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output: self.outputs.iter().map(|(o, _)| o.clone()).collect(),
        };
        let mut psbt =
            Psbt::from_unsigned_tx(tx).map_err(|e| BitcoinError::MalformedPsbt(e.to_string()))?;
        let spends = std::mem::take(&mut self.spends);
        for (input, spend) in psbt.inputs.iter_mut().zip(spends) {
            *input = Input {
                witness_utxo: spend.prev.output.first().cloned(),
                non_witness_utxo: Some(spend.prev),
                ..Input::default()
            };
            self.describe_input(input, spend.branch, spend.index)?;
        }
        for (output, (_, change)) in psbt.outputs.iter_mut().zip(&self.outputs) {
            if let Some((branch, index)) = change {
                self.describe_output(output, *branch, *index)?;
            }
        }
        Ok(psbt)
    }

    fn describe_input(
        &self,
        input: &mut Input,
        branch: Branch,
        index: u32,
    ) -> Result<(), BitcoinError> {
        let (key, origin) = self.key_origin(branch, index)?;
        match self.wallet.kind() {
            WalletKind::Wpkh => {
                input.bip32_derivation.insert(key, origin);
            }
            WalletKind::Tr => {
                let xonly = key.x_only_public_key().0;
                input.tap_internal_key = Some(xonly);
                input.tap_key_origins.insert(xonly, (Vec::new(), origin));
            }
        }
        Ok(())
    }

    fn describe_output(
        &self,
        output: &mut Output,
        branch: Branch,
        index: u32,
    ) -> Result<(), BitcoinError> {
        let (key, origin) = self.key_origin(branch, index)?;
        if self.wallet.kind() == WalletKind::Wpkh {
            output.bip32_derivation.insert(key, origin);
        } else {
            let xonly = key.x_only_public_key().0;
            output.tap_internal_key = Some(xonly);
            output.tap_key_origins.insert(xonly, (Vec::new(), origin));
        }
        Ok(())
    }

    fn key_origin(
        &self,
        branch: Branch,
        index: u32,
    ) -> Result<(bitcoin::secp256k1::PublicKey, bitcoin::bip32::KeySource), BitcoinError> {
        Ok((
            self.wallet.public_key_at(branch, index)?,
            self.wallet.origin(branch, index),
        ))
    }
}
