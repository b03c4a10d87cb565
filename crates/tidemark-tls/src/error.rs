//! The crate's one error type, [`TlsError`], and its typed sub-enums.
//!
//! Every variant that concerns a file names the file; every variant that
//! concerns an in-memory input names what the input was meant to be
//! ("CA certificate", "client private key", ...). Messages are lower case
//! and carry their cause in [`std::error::Error::source`].

use std::fmt;
use std::path::PathBuf;

use tidemark_core::IdError;

/// Where a PEM input came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemOrigin {
    /// A string handed over by the caller.
    Memory,
    /// A file.
    File(PathBuf),
}

impl fmt::Display for PemOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemOrigin::Memory => f.write_str("memory"),
            PemOrigin::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Why no client identity could be read from a certificate chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The peer presented no certificate.
    #[error("the peer presented no certificate")]
    NoCertificate,
    /// The leaf certificate is not parseable X.509.
    #[error("the leaf certificate does not parse as X.509: {0}")]
    Unparseable(String),
    /// The leaf names no identity: no `tidemark://client/` URI and no
    /// subject common name.
    #[error("the leaf certificate names no client identity (no tidemark://client/ URI SAN, no CN)")]
    Missing,
    /// The leaf carries more than one `tidemark://client/` URI.
    #[error("the leaf certificate carries {0} tidemark://client/ URI SANs, expected one")]
    Ambiguous(usize),
    /// The identity in the URI is not correctly percent-encoded.
    #[error("the identity {0:?} is not correctly percent-encoded")]
    BadEncoding(String),
    /// The identity is not a valid client id.
    #[error("the certificate identity is not a valid client id: {0}")]
    Invalid(#[source] IdError),
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading, writing or renaming a file failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done: "read", "write", "create", "rename", ...
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A private key file is readable or writable by group or others.
    #[error("private key file {} has mode {mode:04o}; it must be 0600 (chmod 600 it)", path.display())]
    KeyFileMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A PEM input is malformed or holds no item of the expected kind.
    #[error("{what} from {origin}: {source}")]
    Pem {
        /// What the input should have held, e.g. "CA certificate".
        what: &'static str,
        /// Where it came from.
        origin: PemOrigin,
        /// The PEM parser's complaint (`NoItemsFound` when the input holds
        /// no section of the expected kind).
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate is unusable for its role (not X.509, not a CA, ...).
    #[error("{what} from {origin}: {reason}")]
    BadCertificate {
        /// What the certificate should have been, e.g. "CA certificate".
        what: &'static str,
        /// Where it came from.
        origin: PemOrigin,
        /// Why it is unusable.
        reason: String,
    },
    /// A validity window is empty.
    #[error("invalid validity window: not_before must be earlier than not_after")]
    EmptyValidity,
    /// A key pair does not match its certificate.
    #[error("{what}: the private key does not match the certificate")]
    KeyMismatch {
        /// Which pair, e.g. "CA".
        what: &'static str,
    },
    /// Generating a key or a certificate, or loading a CA for issuing,
    /// failed.
    #[error("cannot {what}: {source}")]
    Generate {
        /// What was being done, e.g. "issue the client certificate".
        what: &'static str,
        /// The cause.
        source: rcgen::Error,
    },
    /// A name given for a certificate is not usable.
    #[error("invalid certificate name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// rustls refused the configuration (bad certificate, key or CA).
    #[error("cannot build the {what}: {source}")]
    Config {
        /// Which configuration, e.g. "server TLS configuration".
        what: &'static str,
        /// The cause.
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built (e.g. no usable
    /// CA certificate).
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// No client identity could be read from a verified certificate.
    #[error("no usable client identity: {0}")]
    Identity(#[from] IdentityError),
    /// The server name is neither a DNS name nor an IP address.
    #[error("invalid server name {name:?}: {source}")]
    ServerName {
        /// The name.
        name: String,
        /// The cause.
        source: rustls_pki_types::InvalidDnsNameError,
    },
    /// The address cannot be used as a gRPC endpoint.
    #[error("invalid endpoint address {addr:?}: {source}")]
    Endpoint {
        /// The address.
        addr: String,
        /// The cause.
        source: tonic::transport::Error,
    },
    /// Connecting to the server failed (TCP, TLS or HTTP/2).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The cause.
        source: tonic::transport::Error,
    },
}
