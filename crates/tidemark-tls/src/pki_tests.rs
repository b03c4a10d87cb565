use super::*;

#[test]
fn a_ca_round_trips_through_pem() {
    let ca = DevCa::generate("test CA").unwrap();
    let issued = ca.to_issued();
    let again = DevCa::from_pem(issued.cert_pem(), issued.key_pem()).unwrap();
    assert_eq!(again.cert_pem(), ca.cert_pem());
    assert!(again.issue_client("replica-1").is_ok());
}

#[test]
fn a_ca_with_the_wrong_key_or_a_leaf_is_refused() {
    let ca = DevCa::generate("test CA").unwrap();
    let other = DevCa::generate("other CA").unwrap();
    let err = DevCa::from_pem(ca.cert_pem(), other.to_issued().key_pem()).unwrap_err();
    assert!(
        matches!(err, TlsError::KeyMismatch { what: "CA" }),
        "{err:?}"
    );

    let leaf = ca.issue_client("replica-1").unwrap();
    let err = DevCa::from_pem(leaf.cert_pem(), leaf.key_pem()).unwrap_err();
    assert!(matches!(err, TlsError::BadCertificate { .. }), "{err:?}");
}

#[test]
fn bad_names_and_windows_are_refused() {
    let ca = DevCa::generate("test CA").unwrap();
    for names in [&[][..], &["not a name"], &["-bad-.example"], &["a..b"]] {
        let err = ca.issue_server(names).unwrap_err();
        assert!(
            matches!(err, TlsError::InvalidName { .. }),
            "{names:?}: {err:?}"
        );
    }
    for id in ["", "a/b", "with space", "é"] {
        let err = ca.issue_client(id).unwrap_err();
        assert!(
            matches!(err, TlsError::InvalidName { .. }),
            "{id:?}: {err:?}"
        );
    }
    assert!(DevCa::generate("").is_err());
    let now = SystemTime::now();
    let err = ca
        .issue_client_with("replica-1", Validity::between(now, now))
        .unwrap_err();
    assert!(matches!(err, TlsError::EmptyValidity), "{err:?}");
}

#[test]
fn issued_certificates_carry_their_names_and_usages() {
    use x509_parser::extensions::GeneralName;
    let ca = DevCa::generate("test CA").unwrap();
    let server = ca.issue_server(&["localhost", "127.0.0.1", "::1"]).unwrap();
    let der = first_cert(server.cert_pem(), "server", PemOrigin::Memory).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = sans
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            GeneralName::IPAddress(ip) => format!("{ip:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "localhost");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    assert!(!cert.is_ca());

    let client = ca.issue_client("replica-1").unwrap();
    let der = first_cert(client.cert_pem(), "client", PemOrigin::Memory).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    assert!(matches!(
        sans.value.general_names.as_slice(),
        [GeneralName::URI("tidemark://client/replica-1")]
    ));
}

#[test]
fn debug_output_never_shows_a_private_key() {
    let ca = DevCa::generate("test CA").unwrap();
    let client = ca.issue_client("replica-1").unwrap();
    for text in [
        format!("{ca:?}"),
        format!("{client:?}"),
        format!("{:?}", ca.to_issued()),
    ] {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
    }
}
