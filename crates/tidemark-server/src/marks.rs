//! Export and import of high-water marks.
//!
//! The interchange document is JSON:
//!
//! ```json
//! {"format": "tidemark-marks-v1",
//!  "objects": [{"object": "consensus/chain/key/cometbft", "version": 3,
//!               "mark": [["height", 5], ["round", 0], ["step", 3]]}]}
//! ```
//!
//! Import only ever raises a mark: an object whose stored mark is at or
//! above the imported one is left alone. An imported mark carries no
//! payload, so its own exact position can never be replayed: the policy
//! refuses any request there (better a missed vote than a double sign).
//! CometBFT's `priv_validator_state.json` carries its sign bytes and
//! signature, so an identical request at that position replays them.

use serde::{Deserialize, Serialize};
use tidemark_consensus::cometbft::import as comet_import;
use tidemark_consensus::{
    COMETBFT_KIND, CometPolicy, CometState, HEIGHT_KIND, HeightPolicy, HeightState, Step,
    TezosPolicy, TezosState, Watermark,
};
use tidemark_core::{ChainId, ClientId, Domain, KeyId, Mark, ObjectId, Signature, StateStore};
use tidemark_signer::{SignError, Signer};

/// The interchange format name.
pub const FORMAT: &str = "tidemark-marks-v1";

/// An import or export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MarksError {
    /// The document is not valid.
    #[error("invalid marks document: {0}")]
    Document(String),
    /// An object in the document is not importable.
    #[error("object {object}: {reason}")]
    Object {
        /// The object as written.
        object: String,
        /// Why.
        reason: String,
    },
    /// The store or pipeline failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// The interchange document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarksDocument {
    /// Always [`FORMAT`].
    pub format: String,
    /// The objects.
    pub objects: Vec<ObjectMarkEntry>,
}

/// One object's mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectMarkEntry {
    /// `domain/chain/key/kind`.
    pub object: String,
    /// The stored version (informational on import).
    #[serde(default)]
    pub version: u64,
    /// The mark.
    pub mark: Mark,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Objects whose mark was raised.
    pub raised: Vec<String>,
    /// Objects already at or above the imported mark.
    pub unchanged: Vec<String>,
}

/// The document for every object in `store`.
pub fn export(store: &dyn StateStore) -> Result<MarksDocument, SignError> {
    let objects = store
        .objects()?
        .into_iter()
        .map(|(object, stored)| ObjectMarkEntry {
            object: object.to_string(),
            version: stored.version,
            mark: stored.mark,
        })
        .collect();
    Ok(MarksDocument {
        format: FORMAT.into(),
        objects,
    })
}

/// Imports a Tidemark marks document.
pub fn import_document(
    signer: &Signer,
    client: &ClientId,
    json: &str,
) -> Result<ImportReport, MarksError> {
    let doc: MarksDocument =
        serde_json::from_str(json).map_err(|e| MarksError::Document(e.to_string()))?;
    if doc.format != FORMAT {
        return Err(MarksError::Document(format!(
            "format is {:?}, expected {FORMAT:?}",
            doc.format
        )));
    }
    let mut report = ImportReport::default();
    for entry in &doc.objects {
        let object: ObjectId =
            entry
                .object
                .parse()
                .map_err(|e: tidemark_core::IdError| MarksError::Object {
                    object: entry.object.clone(),
                    reason: e.to_string(),
                })?;
        let raised = import_bare_mark(signer, client, &object, &entry.mark)?;
        if raised {
            report.raised.push(entry.object.clone());
        } else {
            report.unchanged.push(entry.object.clone());
        }
    }
    Ok(report)
}

fn field(object: &ObjectId, mark: &Mark, name: &str) -> Result<u64, MarksError> {
    mark.get(name).ok_or_else(|| MarksError::Object {
        object: object.to_string(),
        reason: format!("mark has no field {name}"),
    })
}

fn out_of_range(object: &ObjectId, name: &str) -> MarksError {
    MarksError::Object {
        object: object.to_string(),
        reason: format!("mark field {name} is out of range"),
    }
}

/// Raises one object's mark to `mark` (without a payload). True if raised.
fn import_bare_mark(
    signer: &Signer,
    client: &ClientId,
    object: &ObjectId,
    mark: &Mark,
) -> Result<bool, MarksError> {
    let unsupported = || MarksError::Object {
        object: object.to_string(),
        reason: "only consensus marks can be imported".into(),
    };
    if object.domain() != Domain::Consensus {
        return Err(unsupported());
    }
    let updated = match object.kind() {
        COMETBFT_KIND => {
            let height = i64::try_from(field(object, mark, "height")?)
                .map_err(|_| out_of_range(object, "height"))?;
            let round = i32::try_from(field(object, mark, "round")?)
                .map_err(|_| out_of_range(object, "round"))?;
            let step = u8::try_from(field(object, mark, "step")?)
                .ok()
                .and_then(|s| Step::try_from(s).ok())
                .ok_or_else(|| out_of_range(object, "step"))?;
            let imported = CometState {
                height,
                round,
                step,
                sign_bytes: Vec::new(),
            };
            signer
                .update_state(&CometPolicy, client, object, |current| {
                    comet_import::raise(current, &imported).map(|s| (s, Vec::new()))
                })?
                .is_some()
        }
        HEIGHT_KIND => {
            let height = field(object, mark, "height")?;
            let round = match mark.get("round") {
                Some(r) => Some(u32::try_from(r).map_err(|_| out_of_range(object, "round"))?),
                None => None,
            };
            let imported = HeightState {
                height,
                round,
                digest: Vec::new(),
            };
            signer
                .update_state(&HeightPolicy, client, object, |current| {
                    let higher = current.is_none_or(|c| c.position() < imported.position());
                    higher.then(|| (imported.clone(), Vec::new()))
                })?
                .is_some()
        }
        "block" | "preattestation" | "attestation" => {
            let watermark = Watermark {
                level: u32::try_from(field(object, mark, "level")?)
                    .map_err(|_| out_of_range(object, "level"))?,
                round: u32::try_from(field(object, mark, "round")?)
                    .map_err(|_| out_of_range(object, "round"))?,
            };
            // The all-zero digest matches no operation's BLAKE2b-256, so the
            // imported watermark itself is never replayed.
            let imported = TezosState {
                watermark: Some(watermark),
                digest: [0u8; 32],
            };
            signer
                .update_state(&TezosPolicy::default(), client, object, |current| {
                    let higher = current
                        .and_then(|c| c.watermark)
                        .is_none_or(|w| w < watermark);
                    higher.then(|| (imported.clone(), Vec::new()))
                })?
                .is_some()
        }
        _ => return Err(unsupported()),
    };
    Ok(updated)
}

/// Which other signer's state file is imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFileFormat {
    /// CometBFT's `priv_validator_state.json`.
    CometBft,
    /// tmkms's state file.
    Tmkms,
}

/// Imports another signer's state file for (chain, key).
pub fn import_state_file(
    signer: &Signer,
    client: &ClientId,
    format: StateFileFormat,
    chain: ChainId,
    key: KeyId,
    json: &[u8],
) -> Result<ImportReport, MarksError> {
    let object = ObjectId::new(Domain::Consensus, chain.clone(), key, COMETBFT_KIND)
        .map_err(|e| MarksError::Document(e.to_string()))?;
    let parsed = match format {
        StateFileFormat::CometBft => comet_import::parse_priv_validator_state(json, &chain),
        StateFileFormat::Tmkms => comet_import::parse_tmkms_state(json),
    }
    .map_err(|e| MarksError::Document(e.to_string()))?;
    let mut report = ImportReport::default();
    let Some(imported) = parsed else {
        report.unchanged.push(object.to_string());
        return Ok(report);
    };
    let signatures: Vec<Signature> = imported.signature.clone().into_iter().collect();
    let raised = signer
        .update_state(&CometPolicy, client, &object, |current| {
            comet_import::raise(current, &imported.state).map(|s| (s, signatures))
        })?
        .is_some();
    if raised {
        report.raised.push(object.to_string());
    } else {
        report.unchanged.push(object.to_string());
    }
    Ok(report)
}
