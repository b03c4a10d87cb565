//! The first fields of a serialized `ChannelMonitor` (lightning 0.2.7,
//! serialization version 1), read where LDK has no public getter: the
//! txids of the two newest counterparty commitments and the counterparty's
//! per-commitment points of the two newest.
//!
//! Only the fixed prefix is read, field by field as
//! `write_chanmon_internal` writes it, up to the points; nothing after
//! them. The caller cross-checks what is read against the public getters
//! (channel keys id, funding outpoint and script, channel value) and
//! against what the monitor signs (the txid of the rebuilt counterparty
//! commitment, the points of revoked commitments against their secrets),
//! so a layout change is an error, never a wrong import.

use bitcoin::secp256k1::PublicKey;
use bitcoin::{ScriptBuf, Txid};
use lightning::util::ser::{BigSize, Readable};

/// What the prefix holds that the public API does not give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MonitorPrefix {
    pub(crate) channel_keys_id: [u8; 32],
    pub(crate) funding_txid: Txid,
    pub(crate) funding_index: u16,
    pub(crate) funding_script: ScriptBuf,
    pub(crate) channel_value_sat: u64,
    /// The newest counterparty commitment's txid.
    pub(crate) current_counterparty_txid: Option<Txid>,
    /// The one before it.
    pub(crate) previous_counterparty_txid: Option<Txid>,
    /// LDK's `their_cur_per_commitment_points`: the older commitment's
    /// index (counting down) and point, and the point of the index below
    /// it if the counterparty was sent a commitment since.
    pub(crate) points: Option<(u64, PublicKey, Option<PublicKey>)>,
}

impl MonitorPrefix {
    /// The newest counterparty commitment (LDK index) and its point.
    pub(crate) fn newest_point(&self) -> Option<(u64, PublicKey)> {
        match self.points? {
            (index, _, Some(newer)) => Some((index.checked_sub(1)?, newer)),
            (index, point, None) => Some((index, point)),
        }
    }

    /// The point of counterparty commitment `index` (LDK), if the prefix
    /// holds it.
    pub(crate) fn point(&self, index: u64) -> Option<PublicKey> {
        match self.points? {
            (i, point, _) if i == index => Some(point),
            (i, _, Some(newer)) if i.checked_sub(1) == Some(index) => Some(newer),
            _ => None,
        }
    }
}

/// Where the prefix does not read as lightning 0.2.7 writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrefixError(pub(crate) String);

/// The serialization version lightning 0.2.7 writes and reads.
const SERIALIZATION_VERSION: u8 = 1;

fn field<T: Readable>(r: &mut &[u8], what: &str) -> Result<T, PrefixError> {
    T::read(r).map_err(|e| PrefixError(format!("cannot read {what}: {e:?}")))
}

fn bytes<'a>(r: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], PrefixError> {
    if r.len() < n {
        return Err(PrefixError(format!("truncated at {what}")));
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Ok(head)
}

fn u48(r: &mut &[u8], what: &str) -> Result<u64, PrefixError> {
    let b = bytes(r, 6, what)?;
    Ok(b.iter()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)))
}

/// Reads the prefix of `monitor` (the bytes LDK's persister stores for a
/// monitor: `ChannelMonitor::write`).
pub(crate) fn read_prefix(monitor: &[u8]) -> Result<MonitorPrefix, PrefixError> {
    let r = &mut &monitor[..];
    let version: u8 = field(r, "the version")?;
    let min_version: u8 = field(r, "the minimum version")?;
    if min_version > SERIALIZATION_VERSION || version < SERIALIZATION_VERSION {
        return Err(PrefixError(format!(
            "serialization version {version} (minimum {min_version}); lightning 0.2.7 writes \
             {SERIALIZATION_VERSION}"
        )));
    }
    let _latest_update_id: u64 = field(r, "the latest update id")?;
    let _obscure_factor = u48(r, "the obscure factor")?;
    let _destination: ScriptBuf = field(r, "the destination script")?;
    match field::<u8>(r, "the revokable script flag")? {
        0 => {
            let _script: ScriptBuf = field(r, "the revokable script")?;
            bytes(r, 33, "the revokable point")?;
            bytes(r, 33, "the revocation key")?;
        }
        1 => {}
        other => {
            return Err(PrefixError(format!(
                "revokable script flag {other} (0 or 1)"
            )));
        }
    }
    let _counterparty_payment_script: ScriptBuf = field(r, "the counterparty payment script")?;
    let _shutdown: ScriptBuf = field(r, "the shutdown script")?;
    let channel_keys_id: [u8; 32] = field(r, "the channel keys id")?;
    bytes(r, 33, "the holder revocation basepoint")?;
    let funding_txid: Txid = field(r, "the funding txid")?;
    let funding_index: u16 = field(r, "the funding index")?;
    let funding_script: ScriptBuf = field(r, "the funding script")?;
    let current_counterparty_txid: Option<Txid> = field(r, "the counterparty txid")?;
    let previous_counterparty_txid: Option<Txid> = field(r, "the previous counterparty txid")?;
    // CounterpartyCommitmentParameters: a legacy count (0 since 0.0.100),
    // then a length-prefixed TLV stream.
    let legacy: u64 = field(r, "the counterparty parameters")?;
    if legacy != 0 {
        return Err(PrefixError(format!(
            "counterparty parameters with {legacy} legacy entries (written before LDK 0.0.100)"
        )));
    }
    let BigSize(len) = field(r, "the counterparty parameters' length")?;
    let len = usize::try_from(len)
        .map_err(|_| PrefixError("counterparty parameters' length overflows".into()))?;
    bytes(r, len, "the counterparty parameters")?;
    let _redeem_script: ScriptBuf = field(r, "the funding redeem script")?;
    let channel_value_sat: u64 = field(r, "the channel value")?;
    let index = u48(r, "the counterparty commitment index")?;
    let points = if index == 0 {
        None
    } else {
        let point: PublicKey = field(r, "the counterparty point")?;
        let second = bytes(r, 33, "the second counterparty point")?;
        let second = if second.iter().all(|b| *b == 0) {
            None
        } else {
            Some(
                PublicKey::from_slice(second)
                    .map_err(|e| PrefixError(format!("the second counterparty point: {e}")))?,
            )
        };
        Some((index, point, second))
    };
    Ok(MonitorPrefix {
        channel_keys_id,
        funding_txid,
        funding_index,
        funding_script,
        channel_value_sat,
        current_counterparty_txid,
        previous_counterparty_txid,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_foreign_buffer_is_an_error_not_a_panic() {
        assert!(read_prefix(&[]).is_err());
        assert!(read_prefix(&[2, 2, 0, 0]).is_err());
        assert!(read_prefix(&[1, 1, 0, 0, 0]).is_err());
        assert!(read_prefix(&[0xff; 64]).is_err());
    }

    #[test]
    fn the_newest_point_is_the_second_when_there_are_two() {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let key = |b: u8| {
            let sk = bitcoin::secp256k1::SecretKey::from_slice(&[b; 32]).unwrap();
            PublicKey::from_secret_key(&secp, &sk)
        };
        let mut p = MonitorPrefix {
            channel_keys_id: [0; 32],
            funding_txid: Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
            funding_index: 0,
            funding_script: ScriptBuf::new(),
            channel_value_sat: 0,
            current_counterparty_txid: None,
            previous_counterparty_txid: None,
            points: Some((100, key(1), Some(key(2)))),
        };
        assert_eq!(p.newest_point(), Some((99, key(2))));
        assert_eq!(p.point(100), Some(key(1)));
        assert_eq!(p.point(99), Some(key(2)));
        assert_eq!(p.point(98), None);
        p.points = Some((100, key(1), None));
        assert_eq!(p.newest_point(), Some((100, key(1))));
        assert_eq!(p.point(99), None);
        p.points = None;
        assert_eq!(p.newest_point(), None);
    }
}
