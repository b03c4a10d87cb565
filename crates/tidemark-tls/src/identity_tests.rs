use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tidemark_core::ClientId;

use super::*;
use crate::DevCa;

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[test]
fn client_uri_percent_encodes_outside_unreserved() {
    for (id, uri) in [
        ("replica-1", "tidemark://client/replica-1"),
        ("a.b_c~d", "tidemark://client/a.b_c~d"),
        ("node@zone:1", "tidemark://client/node%40zone%3A1"),
        ("50%", "tidemark://client/50%25"),
        ("q?x#y", "tidemark://client/q%3Fx%23y"),
    ] {
        assert_eq!(client_uri(&ClientId::new(id).unwrap()), uri, "{id}");
    }
}

#[test]
fn percent_decode_table() {
    for (input, expected) in [
        ("plain", Some("plain")),
        ("node%40zone", Some("node@zone")),
        ("%2", None),
        ("%zz", None),
        ("%+1", None),
        ("%", None),
        ("%C3%A9", Some("é")),
        ("%FF", None),
    ] {
        assert_eq!(percent_decode(input).ok().as_deref(), expected, "{input}");
    }
}

#[test]
fn identity_round_trips_through_an_issued_certificate() {
    let ca = DevCa::generate("test CA").unwrap();
    for id in ["replica-1", "node@zone:1", "50%", "x\"<>{}|^`\\"] {
        let cert = ca.issue_client(id).unwrap();
        let got = peer_identity(&[der(cert.cert_pem())]).unwrap();
        assert_eq!(got.as_str(), id);
    }
}

#[test]
fn server_certificate_falls_back_to_the_common_name() {
    let ca = DevCa::generate("test CA").unwrap();
    let cert = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
    assert_eq!(
        peer_identity(&[der(cert.cert_pem())]).unwrap().as_str(),
        "localhost"
    );
}

#[test]
fn a_ca_name_with_a_space_is_not_a_client_id() {
    let ca = DevCa::generate("test CA").unwrap();
    let err = identity_of(&[der(ca.cert_pem())]).unwrap_err();
    assert!(matches!(err, IdentityError::Invalid(_)), "{err:?}");
}

#[test]
fn empty_chain_and_garbage_are_refused() {
    assert_eq!(identity_of(&[]), Err(IdentityError::NoCertificate));
    let err = identity_of(&[CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])]).unwrap_err();
    assert!(matches!(err, IdentityError::Unparseable(_)), "{err:?}");
}
