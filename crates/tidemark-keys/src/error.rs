//! The crate's one error type.
//!
//! No variant carries secret material: messages from parsers that may echo
//! their input (serde_json, base64) are never forwarded for inputs that hold
//! secrets; only the kind of failure and its position are kept.

use std::io;
use std::path::PathBuf;

use tidemark_core::KeyId;

/// Why a keystore operation failed. Every variant means the operation did
/// not take effect: the file on disk and the keys in memory are unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// An I/O operation on the keystore file or its directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. `open`, `fsync`, `rename`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The keystore file grants permissions to its group or to others.
    #[error(
        "keystore {path} has mode {mode:04o}, which grants access to group or others; \
         run `chmod 600` on it"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The keystore path is not a regular file.
    #[error("keystore {path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The keystore file is larger than any keystore can be.
    #[error("keystore {path} is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// `create` refuses to overwrite an existing file.
    #[error("keystore {path} already exists; refusing to overwrite it")]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a keystore envelope (bad JSON, field, hex or length).
    #[error("keystore file is malformed: {0}")]
    Malformed(String),
    /// The file is a keystore of a format this version does not read.
    #[error("unsupported keystore format {found:?} (this version reads {expected:?})")]
    UnsupportedFormat {
        /// The format string found in the file.
        found: String,
        /// The format this version reads.
        expected: &'static str,
    },
    /// The key derivation parameters are out of the accepted range.
    #[error("invalid key derivation parameters: {0}")]
    InvalidKdfParams(String),
    /// Authenticated decryption failed: the passphrase is wrong, or the
    /// header, nonce or ciphertext was changed. The two cannot be told apart.
    #[error("wrong passphrase, or the keystore file was tampered with")]
    WrongPassphraseOrTampered,
    /// The file decrypted, but its contents are not a valid key list. This
    /// means a bug or someone who knows the passphrase wrote it.
    #[error("keystore contents are invalid: {0}")]
    InvalidContents(String),
    /// The passphrase is empty.
    #[error("the passphrase must not be empty")]
    EmptyPassphrase,
    /// A seed must be 16 to 64 bytes long (BIP32).
    #[error("a BIP32 seed must be 16 to 64 bytes long, got {0}")]
    InvalidSeedLength(usize),
    /// A key by that name exists already.
    #[error("a key named {0} exists already")]
    DuplicateKey(KeyId),
    /// A key name read from the file is not a valid [`KeyId`].
    #[error("invalid key name in keystore: {0}")]
    InvalidKeyName(#[source] tidemark_core::IdError),
    /// BIP32 derivation failed (path too deep, or an invalid child key,
    /// which has probability below 2^-127).
    #[error("bip32 derivation of {path} failed: {reason}")]
    Derivation {
        /// The derivation path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A CometBFT `priv_validator_key.json` could not be imported.
    #[error("cannot import cometbft key: {0}")]
    CometBftKey(String),
    /// The operating system's random number generator failed.
    #[error("the os random number generator failed: {0}")]
    Random(String),
}

impl KeystoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        KeystoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// A description of a serde_json error that never quotes the input: its
/// category and position only.
pub(crate) fn json_error_position(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "i/o error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected structure",
        serde_json::error::Category::Eof => "unexpected end of input",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}
