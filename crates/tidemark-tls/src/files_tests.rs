use std::os::unix::fs::PermissionsExt;

use secrecy::SecretString;

use super::*;
use crate::{DevCa, server_config, server_config_from_files};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn keys_are_written_0600_and_certificates_0644() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("test CA").unwrap();
    let paths = write_pem_files(dir.path(), "ca", &ca.to_issued()).unwrap();
    assert_eq!(paths.key, dir.path().join("ca.key"));
    assert_eq!(paths.cert, dir.path().join("ca.crt"));
    assert_eq!(mode(&paths.key), 0o600);
    assert_eq!(mode(&paths.cert), 0o644);

    // Rewriting replaces the files atomically and keeps the modes; no
    // temporary files are left behind.
    let client = ca.issue_client("replica-1").unwrap();
    let paths = write_pem_files(dir.path(), "ca", &client).unwrap();
    assert_eq!(mode(&paths.key), 0o600);
    assert_eq!(fs::read_to_string(&paths.cert).unwrap(), client.cert_pem());
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    assert!(read_key_file(&paths.key).is_ok());
    assert_eq!(read_cert_file(&paths.cert).unwrap(), client.cert_pem());
}

#[test]
fn a_key_readable_by_others_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("test CA").unwrap();
    let paths = write_pem_files(dir.path(), "ca", &ca.to_issued()).unwrap();
    for loose in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&paths.key, fs::Permissions::from_mode(loose)).unwrap();
        let err = read_key_file(&paths.key).unwrap_err();
        assert!(
            matches!(err, TlsError::KeyFileMode { mode, .. } if mode == loose),
            "{err:?}"
        );
        assert!(err.to_string().contains("ca.key"), "{err}");
        assert!(DevCa::load(&paths.cert, &paths.key).is_err());
    }
    fs::set_permissions(&paths.key, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(DevCa::load(&paths.cert, &paths.key).is_ok());
}

#[test]
fn bad_stems_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("test CA").unwrap();
    for stem in ["", "a/b", "../x", ".hidden"] {
        let err = write_pem_files(dir.path(), stem, &ca.to_issued()).unwrap_err();
        assert!(
            matches!(err, TlsError::InvalidName { .. }),
            "{stem}: {err:?}"
        );
    }
}

#[test]
fn malformed_pem_is_a_typed_error_naming_the_input() {
    let ca = DevCa::generate("test CA").unwrap();
    let server = ca.issue_server(&["localhost"]).unwrap();
    let truncated = &ca.cert_pem()[..ca.cert_pem().len() / 2];
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    for (ca_pem, expected) in [
        ("", "no items found"),
        ("garbage", "no items found"),
        (truncated, "missing section end"),
        (bad_base64, "base64"),
        (server.key_pem().expose_secret(), "no items found"),
    ] {
        let err = server_config(ca_pem, server.cert_pem(), server.key_pem()).unwrap_err();
        assert!(
            matches!(
                &err,
                TlsError::Pem {
                    what: "CA certificate",
                    origin: PemOrigin::Memory,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(expected), "{err}");
    }
    let err = server_config(
        ca.cert_pem(),
        server.cert_pem(),
        &SecretString::from("nope"),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::Pem {
                what: "server private key",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn malformed_pem_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("test CA").unwrap();
    let server = ca.issue_server(&["localhost"]).unwrap();
    let ca_paths = write_pem_files(dir.path(), "ca", &ca.to_issued()).unwrap();
    let server_paths = write_pem_files(dir.path(), "server", &server).unwrap();
    assert!(
        server_config_from_files(&ca_paths.cert, &server_paths.cert, &server_paths.key).is_ok()
    );

    let broken = dir.path().join("broken.crt");
    fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
    let err = server_config_from_files(&broken, &server_paths.cert, &server_paths.key).unwrap_err();
    assert!(
        matches!(&err, TlsError::Pem { origin: PemOrigin::File(p), .. } if *p == broken),
        "{err:?}"
    );
    assert!(err.to_string().contains("broken.crt"), "{err}");

    let missing = dir.path().join("missing.crt");
    let err =
        server_config_from_files(&missing, &server_paths.cert, &server_paths.key).unwrap_err();
    assert!(
        matches!(&err, TlsError::Io { path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(read_cert_file(&broken).is_err());
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_refused() {
    let ca = DevCa::generate("test CA").unwrap();
    let a = ca.issue_server(&["localhost"]).unwrap();
    let b = ca.issue_server(&["localhost"]).unwrap();
    let err = server_config(ca.cert_pem(), a.cert_pem(), b.key_pem()).unwrap_err();
    assert!(matches!(err, TlsError::Config { .. }), "{err:?}");
}
