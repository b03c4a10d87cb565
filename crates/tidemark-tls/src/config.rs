//! rustls configurations for the signer and its clients.
//!
//! Invariants, for both sides:
//! - the crypto provider is rustls's `ring` provider, passed explicitly;
//!   the process-default provider is never consulted or installed;
//! - TLS 1.3 only; ALPN offers exactly `h2` (gRPC);
//! - trust is the given CA certificates only (no system roots); a CA file
//!   may hold several certificates, so an old and a new CA can both be
//!   trusted during a rotation.
//!
//! Server side: a client certificate is required and verified against the
//! CA (chain, validity period, `clientAuth` usage); session resumption is
//! disabled, so every connection runs the full verification against the
//! current clock.

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{PemOrigin, TlsError};
use crate::files;

/// The one ALPN protocol spoken: HTTP/2, for gRPC.
const ALPN_H2: &[u8] = b"h2";

/// One PEM input and where it came from.
struct Input<'a> {
    pem: &'a [u8],
    origin: PemOrigin,
}

impl<'a> Input<'a> {
    fn memory(pem: &'a str) -> Self {
        Self {
            pem: pem.as_bytes(),
            origin: PemOrigin::Memory,
        }
    }

    fn file(pem: &'a [u8], path: &Path) -> Self {
        Self {
            pem,
            origin: PemOrigin::File(path.to_owned()),
        }
    }
}

/// The server's rustls configuration: TLS 1.3 only, ALPN `h2`, client
/// certificates required and verified against `ca_pem`.
///
/// `server_cert_pem` may hold the leaf followed by intermediates.
pub fn server_config(
    ca_pem: &str,
    server_cert_pem: &str,
    server_key_pem: &SecretString,
) -> Result<Arc<ServerConfig>, TlsError> {
    build_server(
        Input::memory(ca_pem),
        Input::memory(server_cert_pem),
        Input::memory(server_key_pem.expose_secret()),
    )
}

/// [`server_config`] from PEM files; the key file must be mode 0600 and
/// every error names the file at fault.
pub fn server_config_from_files(
    ca: &Path,
    server_cert: &Path,
    server_key: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let ca_pem = files::read_bytes(ca)?;
    let cert_pem = files::read_bytes(server_cert)?;
    let key_pem = files::read_key_bytes(server_key)?;
    build_server(
        Input::file(&ca_pem, ca),
        Input::file(&cert_pem, server_cert),
        Input::file(key_pem.expose_secret().as_bytes(), server_key),
    )
}

/// A client's rustls configuration: TLS 1.3 only, ALPN `h2`, the server
/// verified against `ca_pem`, and `client_cert_pem` presented as the
/// client's identity.
pub fn client_config(
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &SecretString,
) -> Result<Arc<ClientConfig>, TlsError> {
    build_client(
        Input::memory(ca_pem),
        Input::memory(client_cert_pem),
        Input::memory(client_key_pem.expose_secret()),
    )
}

/// [`client_config`] from PEM files; the key file must be mode 0600 and
/// every error names the file at fault.
pub fn client_config_from_files(
    ca: &Path,
    client_cert: &Path,
    client_key: &Path,
) -> Result<Arc<ClientConfig>, TlsError> {
    let ca_pem = files::read_bytes(ca)?;
    let cert_pem = files::read_bytes(client_cert)?;
    let key_pem = files::read_key_bytes(client_key)?;
    build_client(
        Input::file(&ca_pem, ca),
        Input::file(&cert_pem, client_cert),
        Input::file(key_pem.expose_secret().as_bytes(), client_key),
    )
}

/// rustls's `ring` provider, explicitly: never the process default.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build_server(
    ca: Input<'_>,
    cert: Input<'_>,
    key: Input<'_>,
) -> Result<Arc<ServerConfig>, TlsError> {
    const WHAT: &str = "server TLS configuration";
    let provider = provider();
    let roots = roots(ca)?;
    let (chain, key) = chain_and_key(cert, key, "server certificate", "server private key")?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(TlsError::Verifier)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error(WHAT))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(config_error(WHAT))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

fn build_client(
    ca: Input<'_>,
    cert: Input<'_>,
    key: Input<'_>,
) -> Result<Arc<ClientConfig>, TlsError> {
    const WHAT: &str = "client TLS configuration";
    let roots = roots(ca)?;
    let (chain, key) = chain_and_key(cert, key, "client certificate", "client private key")?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error(WHAT))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(config_error(WHAT))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

fn roots(ca: Input<'_>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for der in files::certs(ca.pem, "CA certificate", ca.origin.clone())? {
        roots.add(der).map_err(|e| TlsError::BadCertificate {
            what: "CA certificate",
            origin: ca.origin.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn chain_and_key(
    cert: Input<'_>,
    key: Input<'_>,
    cert_what: &'static str,
    key_what: &'static str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = files::certs(cert.pem, cert_what, cert.origin)?;
    let key = files::private_key(key.pem, key_what, key.origin)?;
    Ok((chain, key))
}

fn config_error(what: &'static str) -> impl Fn(rustls::Error) -> TlsError {
    move |source| TlsError::Config { what, source }
}
