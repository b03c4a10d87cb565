//! The client identity carried by a verified certificate.
//!
//! # Rule
//!
//! The identity is read from the leaf (the first certificate of the chain):
//! 1. if the leaf has URI subject alternative names starting with
//!    `tidemark://client/`, there must be exactly one, and the rest of it,
//!    percent-decoded, is the identity;
//! 2. otherwise the subject common name is the identity (there must be
//!    exactly one);
//! 3. the identity must be a valid [`ClientId`].
//!
//! DNS names in a client certificate are never read as an identity: they
//! name hosts, not replicas.
//!
//! This module does not verify anything: call [`peer_identity`] only on a
//! chain that rustls has verified against the CA (as [`crate::TlsIncoming`]
//! does).

use rustls_pki_types::CertificateDer;
use tidemark_core::ClientId;
use x509_parser::extensions::GeneralName;

use crate::error::{IdentityError, TlsError};

/// The prefix of the URI SAN that names a client.
pub const CLIENT_URI_PREFIX: &str = "tidemark://client/";

/// The URI SAN for client `id`: `tidemark://client/<id>` with every byte
/// outside `A-Z a-z 0-9 - . _ ~` percent-encoded.
pub fn client_uri(id: &ClientId) -> String {
    let mut uri = String::with_capacity(CLIENT_URI_PREFIX.len() + id.as_str().len());
    uri.push_str(CLIENT_URI_PREFIX);
    for byte in id.as_str().bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// The client identity of a verified certificate chain, by the rule in
/// this module's documentation.
pub fn peer_identity(certs: &[CertificateDer<'_>]) -> Result<ClientId, TlsError> {
    Ok(identity_of(certs)?)
}

pub(crate) fn identity_of(certs: &[CertificateDer<'_>]) -> Result<ClientId, IdentityError> {
    let leaf = certs.first().ok_or(IdentityError::NoCertificate)?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| IdentityError::Unparseable(e.to_string()))?;

    let san = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::Unparseable(e.to_string()))?;
    let uris: Vec<&str> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(CLIENT_URI_PREFIX),
            _ => None,
        })
        .collect();
    let raw = match uris.as_slice() {
        [one] => percent_decode(one)?,
        [] => {
            let cns: Vec<_> = cert.subject().iter_common_name().collect();
            match cns.as_slice() {
                [cn] => cn
                    .as_str()
                    .map_err(|e| IdentityError::Unparseable(e.to_string()))?
                    .to_owned(),
                [] => return Err(IdentityError::Missing),
                many => return Err(IdentityError::Ambiguous(many.len())),
            }
        }
        many => return Err(IdentityError::Ambiguous(many.len())),
    };
    ClientId::new(raw).map_err(IdentityError::Invalid)
}

fn percent_decode(encoded: &str) -> Result<String, IdentityError> {
    let bad = || IdentityError::BadEncoding(encoded.to_owned());
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(bad());
            }
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
