//! A development certificate authority.
//!
//! [`DevCa`] issues the certificates a Tidemark deployment needs: one server
//! certificate (extended key usage `serverAuth` only) and one client
//! certificate per replica (`clientAuth` only), all ECDSA P-256. Because the
//! usages are disjoint, a leaked server key cannot be used to authenticate
//! as a client, and a client key cannot impersonate the server.
//!
//! # Client identity in certificates
//!
//! A client certificate for identity `id` carries `id` twice:
//! - as the URI subject alternative name `tidemark://client/<id>`, with
//!   every byte outside `A-Z a-z 0-9 - . _ ~` percent-encoded, and
//! - as the subject common name.
//!
//! [`crate::peer_identity`] reads the URI first and falls back to the common
//! name, so certificates from another CA (an operator's own PKI) work when
//! they carry either. The identity must be a valid
//! [`tidemark_core::ClientId`].
//!
//! Invariants: the CA's private key never leaves [`DevCa`] except through
//! [`DevCa::to_issued`] as a [`SecretString`]; private keys are never
//! `Debug`-printed.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, DnsName};
use secrecy::{ExposeSecret, SecretString};
use tidemark_core::ClientId;

use crate::error::{PemOrigin, TlsError};
use crate::files;
use crate::identity;

/// How long a generated CA is valid by default: ten years.
const CA_DAYS: u32 = 3650;
/// How long an issued server or client certificate is valid by default:
/// two years.
const LEAF_DAYS: u32 = 730;
/// How far in the past `not_before` is set, to tolerate clock skew.
const BACKDATE: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// The validity window of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The certificate is not valid before this instant.
    pub not_before: SystemTime,
    /// The certificate is not valid after this instant.
    pub not_after: SystemTime,
}

impl Validity {
    /// Valid from one hour ago (clock skew) until `days` days from now.
    pub fn days_from_now(days: u32) -> Self {
        let now = SystemTime::now();
        Self {
            not_before: now - BACKDATE,
            not_after: now + DAY * days,
        }
    }

    /// Valid between the two instants. Tests use this to make expired
    /// and not-yet-valid certificates.
    pub fn between(not_before: SystemTime, not_after: SystemTime) -> Self {
        Self {
            not_before,
            not_after,
        }
    }

    fn apply(&self, params: &mut CertificateParams) -> Result<(), TlsError> {
        if self.not_before >= self.not_after {
            return Err(TlsError::EmptyValidity);
        }
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
        Ok(())
    }
}

/// A PEM certificate with its PEM private key: what [`DevCa`] issues, and
/// what [`crate::write_pem_files`] writes.
#[derive(Clone)]
pub struct IssuedCert {
    cert_pem: String,
    key_pem: SecretString,
}

impl IssuedCert {
    /// Pairs a PEM certificate with its PEM private key (no checks).
    pub fn new(cert_pem: String, key_pem: SecretString) -> Self {
        Self { cert_pem, key_pem }
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM (PKCS#8).
    pub fn key_pem(&self) -> &SecretString {
        &self.key_pem
    }
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// A development certificate authority that can issue server and client
/// certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// Generates a new CA with subject `CN=<common_name>`, valid for ten
    /// years, allowed to sign end-entity certificates only (path length 0).
    pub fn generate(common_name: &str) -> Result<Self, TlsError> {
        Self::generate_with(common_name, Validity::days_from_now(CA_DAYS))
    }

    /// Like [`DevCa::generate`] with an explicit validity window.
    pub fn generate_with(common_name: &str, validity: Validity) -> Result<Self, TlsError> {
        if common_name.is_empty() {
            return Err(TlsError::InvalidName {
                name: String::new(),
                reason: "the CA common name must not be empty".to_owned(),
            });
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity.apply(&mut params)?;
        let key = KeyPair::generate().map_err(generate("generate the CA key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(generate("self-sign the CA certificate"))?;
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        })
    }

    /// Loads a CA from its PEM certificate and PEM private key, checking
    /// that the key matches the certificate and that it is a CA.
    pub fn from_pem(cert_pem: &str, key_pem: &SecretString) -> Result<Self, TlsError> {
        Self::from_pem_at(cert_pem, key_pem, PemOrigin::Memory, PemOrigin::Memory)
    }

    /// Loads a CA from a certificate file and a private key file (which
    /// must be mode 0600).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let cert_pem = files::read_cert_file(cert_path)?;
        let key_pem = files::read_key_file(key_path)?;
        Self::from_pem_at(
            &cert_pem,
            &key_pem,
            PemOrigin::File(cert_path.to_owned()),
            PemOrigin::File(key_path.to_owned()),
        )
    }

    fn from_pem_at(
        cert_pem: &str,
        key_pem: &SecretString,
        cert_origin: PemOrigin,
        key_origin: PemOrigin,
    ) -> Result<Self, TlsError> {
        let der = first_cert(cert_pem, "CA certificate", cert_origin.clone())?;
        let key_der = files::private_key(
            key_pem.expose_secret().as_bytes(),
            "CA private key",
            key_origin,
        )?;
        let key = KeyPair::try_from(&key_der).map_err(generate("load the CA private key"))?;
        let bad = |reason: String| TlsError::BadCertificate {
            what: "CA certificate",
            origin: cert_origin.clone(),
            reason,
        };
        let (_, x509) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| bad(format!("not X.509: {e}")))?;
        if !x509.is_ca() {
            return Err(bad("not a CA (basicConstraints CA is not set)".to_owned()));
        }
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(TlsError::KeyMismatch { what: "CA" });
        }
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .map_err(generate("load the CA certificate for issuing"))?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// The CA certificate, PEM: what servers and clients trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate and its private key, e.g. for
    /// [`crate::write_pem_files`]. Keep the key offline where possible: it
    /// can mint any client identity.
    pub fn to_issued(&self) -> IssuedCert {
        IssuedCert::new(
            self.cert_pem.clone(),
            SecretString::from(self.issuer.key().serialize_pem()),
        )
    }

    /// Issues a server certificate for `names` (DNS names such as
    /// `localhost` and IP addresses such as `127.0.0.1`), valid for two
    /// years. The first name is also the subject common name.
    pub fn issue_server(&self, names: &[&str]) -> Result<IssuedCert, TlsError> {
        self.issue_server_with(names, Validity::days_from_now(LEAF_DAYS))
    }

    /// Like [`DevCa::issue_server`] with an explicit validity window.
    pub fn issue_server_with(
        &self,
        names: &[&str],
        validity: Validity,
    ) -> Result<IssuedCert, TlsError> {
        let Some(first) = names.first() else {
            return Err(TlsError::InvalidName {
                name: String::new(),
                reason: "a server certificate needs at least one DNS name or IP address".to_owned(),
            });
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(first);
        params.subject_alt_names = names
            .iter()
            .map(|name| server_san(name))
            .collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign_leaf(params, validity, "issue the server certificate")
    }

    /// Issues a client certificate for `identity` (a
    /// [`tidemark_core::ClientId`]), valid for two years; see the module
    /// documentation for where the identity is written.
    pub fn issue_client(&self, identity: &str) -> Result<IssuedCert, TlsError> {
        self.issue_client_with(identity, Validity::days_from_now(LEAF_DAYS))
    }

    /// Like [`DevCa::issue_client`] with an explicit validity window.
    pub fn issue_client_with(
        &self,
        identity: &str,
        validity: Validity,
    ) -> Result<IssuedCert, TlsError> {
        let id = ClientId::new(identity).map_err(|e| TlsError::InvalidName {
            name: identity.to_owned(),
            reason: e.to_string(),
        })?;
        let uri = identity::client_uri(&id);
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(id.as_str());
        params.subject_alt_names = vec![SanType::URI(
            uri.as_str()
                .try_into()
                .map_err(generate("encode the client identity URI"))?,
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign_leaf(params, validity, "issue the client certificate")
    }

    fn sign_leaf(
        &self,
        mut params: CertificateParams,
        validity: Validity,
        what: &'static str,
    ) -> Result<IssuedCert, TlsError> {
        validity.apply(&mut params)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(generate(what))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(generate(what))?;
        Ok(IssuedCert::new(
            cert.pem(),
            SecretString::from(key.serialize_pem()),
        ))
    }
}

fn common_name_dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn server_san(name: &str) -> Result<SanType, TlsError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = |reason: String| TlsError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    DnsName::try_from(name).map_err(|e| invalid(e.to_string()))?;
    let ia5 = name
        .try_into()
        .map_err(|e: rcgen::Error| invalid(e.to_string()))?;
    Ok(SanType::DnsName(ia5))
}

fn first_cert(
    pem: &str,
    what: &'static str,
    origin: PemOrigin,
) -> Result<CertificateDer<'static>, TlsError> {
    let mut certs = files::certs(pem.as_bytes(), what, origin)?;
    Ok(certs.swap_remove(0))
}

fn generate(what: &'static str) -> impl Fn(rcgen::Error) -> TlsError {
    move |source| TlsError::Generate { what, source }
}

#[cfg(test)]
#[path = "pki_tests.rs"]
mod tests;
