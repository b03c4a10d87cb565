//! Importing marks from CometBFT's and tmkms's state files, so operators
//! migrate to Tidemark without a window in which a double sign is possible.
//!
//! - CometBFT `priv_validator_state.json` (FilePV's `LastSignState`):
//!   `{"height":"123","round":0,"step":3,"signature":"<base64>","signbytes":"<HEX>"}`
//!   (height is a string, round and step numbers; signature and signbytes
//!   are omitted while nothing was signed). Steps: 1 propose, 2 prevote,
//!   3 precommit; height 0 means nothing was signed.
//! - tmkms's state file (tendermint-rs `consensus::State`):
//!   `{"height":"123","round":"0","step":2,"block_id":{..}|null}` with
//!   steps 0 proposal, 1 prevote, 2 precommit; height 0 means nothing was
//!   signed.
//!
//! Numbers are accepted as JSON strings or numbers in both formats.
//!
//! Invariants:
//! - Import only ever raises a mark: [`raise`] returns `None` unless the
//!   imported HRS is strictly above the current one.
//! - Sign bytes are kept only together with their signature and only if
//!   they decode to the file's own height, round, step and the target
//!   chain; otherwise the file is rejected ([`ConsensusError::StateInconsistent`]).
//! - A mark without sign bytes (every tmkms import, a CometBFT file without
//!   a signature) refuses *every* request at exactly its HRS with
//!   `hwm-double-sign`: the old signer may have signed anything there, so
//!   signing anything could be a double sign, and there is no stored
//!   signature a replay could return. This is FilePV's own rule ("no
//!   SignBytes found"). The validator moves on at the next step or round.

use serde_json::Value;
use tidemark_core::{ChainId, Signature};

use super::canonical;
use super::state::{CometState, Step};
use crate::error::ConsensusError;

/// The largest state file accepted, in bytes.
pub const MAX_STATE_FILE_LEN: usize = 64 * 1024;

/// A mark read from another signer's state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedMark {
    /// The state to store. `sign_bytes` is empty unless `signature` is set.
    pub state: CometState,
    /// The signature over `state.sign_bytes`, to store as the object's
    /// signature so that an identical request replays it.
    pub signature: Option<Signature>,
}

/// Parses CometBFT's `priv_validator_state.json` for `chain_id`.
/// `Ok(None)`: the file records nothing signed (height 0).
pub fn parse_priv_validator_state(
    json: &[u8],
    chain_id: &ChainId,
) -> Result<Option<ImportedMark>, ConsensusError> {
    let obj = parse_object(json)?;
    let Some((height, round, step)) = read_hrs(&obj, 1, |step, height| {
        format!("step {step} at height {height} (expected 1, 2 or 3)")
    })?
    else {
        return Ok(None);
    };
    let sign_bytes = match optional_string(&obj, "signbytes")? {
        Some(s) => hex::decode(s)
            .map_err(|e| ConsensusError::StateFile(format!("signbytes is not hex: {e}")))?,
        None => Vec::new(),
    };
    let signature = optional_string(&obj, "signature")?
        .map(|s| {
            base64_decode(s)
                .ok_or_else(|| ConsensusError::StateFile("signature is not base64".into()))
        })
        .transpose()?;
    let mut state = CometState {
        height,
        round,
        step,
        sign_bytes: Vec::new(),
    };
    let signature = match (sign_bytes.is_empty(), signature) {
        (false, Some(sig)) => {
            check_sign_bytes(&sign_bytes, &state, chain_id)?;
            state.sign_bytes = sign_bytes;
            Some(Signature(sig))
        }
        // Sign bytes without a signature (or the reverse) cannot serve a
        // replay: keep the bare mark, which refuses this exact HRS.
        _ => None,
    };
    Ok(Some(ImportedMark { state, signature }))
}

/// Parses tmkms's state file. `Ok(None)`: nothing signed (height 0).
pub fn parse_tmkms_state(json: &[u8]) -> Result<Option<ImportedMark>, ConsensusError> {
    let obj = parse_object(json)?;
    let Some((height, round, step)) = read_hrs(&obj, 0, |step, _| {
        format!("tmkms step {step} (expected 0, 1 or 2)")
    })?
    else {
        return Ok(None);
    };
    Ok(Some(ImportedMark {
        state: CometState {
            height,
            round,
            step,
            sign_bytes: Vec::new(),
        },
        signature: None,
    }))
}

/// The height, round and step a state file records; `None` at height 0
/// (nothing signed). `propose` is the number the format gives the proposal
/// step (CometBFT 1, tmkms 0); `bad_step(step, height)` words the error.
fn read_hrs(
    obj: &serde_json::Map<String, Value>,
    propose: i64,
    bad_step: impl Fn(i64, i64) -> String,
) -> Result<Option<(i64, i32, Step)>, ConsensusError> {
    let height = int_field(obj, "height")?;
    let round = int_field(obj, "round")?;
    let step = int_field(obj, "step")?;
    if height == 0 {
        return Ok(None);
    }
    let step = match step.checked_sub(propose) {
        Some(0) => Step::Propose,
        Some(1) => Step::Prevote,
        Some(2) => Step::Precommit,
        _ => return Err(ConsensusError::StateInconsistent(bad_step(step, height))),
    };
    let (height, round) = check_height_round(height, round)?;
    Ok(Some((height, round, step)))
}

/// An optional string field: `None` when absent, null or empty.
fn optional_string<'a>(
    obj: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ConsensusError> {
    match obj.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(Value::String(_)) | Some(Value::Null) | None => Ok(None),
        Some(_) => Err(ConsensusError::StateFile(format!(
            "{name} must be a string"
        ))),
    }
}

/// The state to store after importing `imported` over `current`: `Some`
/// only if the imported HRS is strictly higher (import never lowers a mark,
/// and never replaces the sign bytes of an equal one).
pub fn raise(current: Option<&CometState>, imported: &CometState) -> Option<CometState> {
    match current {
        Some(cur) if cur.hrs() >= imported.hrs() => None,
        _ => Some(imported.clone()),
    }
}

fn parse_object(json: &[u8]) -> Result<serde_json::Map<String, Value>, ConsensusError> {
    if json.len() > MAX_STATE_FILE_LEN {
        return Err(ConsensusError::TooLarge {
            what: "state file",
            len: json.len(),
            max: MAX_STATE_FILE_LEN,
        });
    }
    match serde_json::from_slice::<Value>(json) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(ConsensusError::StateFile("expected a json object".into())),
        Err(e) => Err(ConsensusError::StateFile(e.to_string())),
    }
}

/// A required integer given as a JSON number or a decimal string.
fn int_field(obj: &serde_json::Map<String, Value>, name: &str) -> Result<i64, ConsensusError> {
    let parsed = match obj.get(name) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        Some(_) => None,
        None => return Err(ConsensusError::StateFile(format!("missing field {name}"))),
    };
    parsed.ok_or_else(|| ConsensusError::StateFile(format!("field {name} is not an integer")))
}

fn check_height_round(height: i64, round: i64) -> Result<(i64, i32), ConsensusError> {
    if height < 0 {
        return Err(ConsensusError::Height(height));
    }
    let round = i32::try_from(round)
        .map_err(|_| ConsensusError::StateFile(format!("round {round} is out of range")))?;
    if round < 0 {
        return Err(ConsensusError::Round(round));
    }
    Ok((height, round))
}

fn check_sign_bytes(
    sign_bytes: &[u8],
    state: &CometState,
    chain_id: &ChainId,
) -> Result<(), ConsensusError> {
    let summary = canonical::decode(sign_bytes).ok_or_else(|| {
        ConsensusError::StateInconsistent(
            "signbytes are not canonical vote or proposal bytes".into(),
        )
    })?;
    let found = (summary.height, summary.round, Step::of(summary.msg_type));
    let want = (state.height, i64::from(state.round), state.step);
    if found != want {
        return Err(ConsensusError::StateInconsistent(format!(
            "signbytes are for height {} round {} step {}, the file says height {} round {} step {}",
            found.0,
            found.1,
            found.2.number(),
            want.0,
            want.1,
            want.2.number()
        )));
    }
    if summary.chain_id != chain_id.as_str() {
        return Err(ConsensusError::StateInconsistent(format!(
            "signbytes are for chain {:?}, importing into chain {chain_id}",
            summary.chain_id
        )));
    }
    Ok(())
}

/// Standard base64 (RFC 4648, padded or not). `None` on any bad input.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let trimmed = s.trim_end_matches('=');
    if s.len() - trimmed.len() > 2 {
        return None;
    }
    let bytes = trimmed.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= sextet(c)? << (18 - 6 * i);
        }
        let n = chunk.len() - 1;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_decodes_standard_alphabet_with_and_without_padding() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("+/8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("a*==").is_none());
        assert!(base64_decode("a===").is_none());
    }
}
