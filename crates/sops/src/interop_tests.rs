//! Every vector in `tests/fixtures/interop/sops/` (files written by the real sops): the value layer,
//! the MAC, comments, refusals, and the age layer.

use std::path::{Path, PathBuf};

use serde_json::Value as J;

use crate::cipher::is_encrypted_value;
use crate::tree::{self, Rules};
use crate::value::{MapItem, SeqItem, Value};
use crate::{DataKey, EncryptedFile, Error, Format, Identities, Plaintext};

fn vectors() -> PathBuf {
    // The workspace root is two levels above this crate; the vectors are tracked in the repository.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/interop/sops");
    assert!(
        dir.join("README.md").is_file(),
        "the SOPS interop vectors are missing: expected {} (tracked in the repository; restore it with `git checkout -- tests/fixtures/interop`)",
        dir.display()
    );
    dir
}

fn read(name: &str) -> String {
    std::fs::read_to_string(vectors().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn format_of(name: &str) -> Format {
    Format::from_path(Path::new(name))
}

/// Every non-null leaf in document order: (path, value as sops hashes it, type, encrypted).
fn leaves(enc: &[Value], plain: &[Value]) -> Vec<(Vec<String>, String, String, bool)> {
    fn walk(
        e: &Value,
        p: &Value,
        path: &mut Vec<String>,
        out: &mut Vec<(Vec<String>, String, String, bool)>,
    ) {
        match (e, p) {
            (Value::Map(ei), Value::Map(pi)) => {
                let ee = ei.iter().filter_map(|i| match i {
                    MapItem::Entry(k, v) => Some((k, v)),
                    MapItem::Comment(_) => None,
                });
                let pe = pi.iter().filter_map(|i| match i {
                    MapItem::Entry(_, v) => Some(v),
                    MapItem::Comment(_) => None,
                });
                for ((k, ev), pv) in ee.zip(pe) {
                    path.push(k.clone());
                    walk(ev, pv, path, out);
                    path.pop();
                }
            }
            (Value::Seq(ei), Value::Seq(pi)) => {
                let ee = ei.iter().filter_map(|i| match i {
                    SeqItem::Value(v) => Some(v),
                    SeqItem::Comment(_) => None,
                });
                let pe = pi.iter().filter_map(|i| match i {
                    SeqItem::Value(v) => Some(v),
                    SeqItem::Comment(_) => None,
                });
                for (ev, pv) in ee.zip(pe) {
                    walk(ev, pv, path, out);
                }
            }
            (_, Value::Null) => {}
            (e, p) => {
                let encrypted = matches!(e, Value::Str(s) if is_encrypted_value(s.as_str()));
                let ty = match (encrypted, p) {
                    (false, _) => "plain",
                    (true, Value::Int(_)) => "int",
                    (true, Value::Float(_)) => "float",
                    (true, Value::Bool(_)) => "bool",
                    (true, _) => "str",
                };
                let bytes = match p {
                    Value::Bool(b) => crate::format::bool_plain(*b).to_string(),
                    other => other.to_text().map(|t| t.to_string()).unwrap_or_default(),
                };
                out.push((path.clone(), bytes, ty.to_string(), encrypted));
            }
        }
    }
    let mut out = Vec::new();
    for (e, p) in enc.iter().zip(plain) {
        walk(e, p, &mut Vec::new(), &mut out);
    }
    out
}

fn comments(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Map(items) => items.iter().for_each(|i| match i {
            MapItem::Comment(t) => out.push(t.as_str().to_string()),
            MapItem::Entry(_, v) => comments(v, out),
        }),
        Value::Seq(items) => items.iter().for_each(|i| match i {
            SeqItem::Comment(t) => out.push(t.as_str().to_string()),
            SeqItem::Value(v) => comments(v, out),
        }),
        _ => {}
    }
}

#[test]
fn pgp_wrapped_vectors_decrypt_with_their_data_keys() {
    let mut checked = 0;
    for entry in std::fs::read_dir(vectors()).unwrap() {
        let path = entry.unwrap().path();
        let fname = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(file) = fname.strip_suffix(".expected.json") else {
            continue;
        };
        let expected: J = serde_json::from_str(&read(&fname)).unwrap();
        let src = read(file);
        let f = EncryptedFile::parse(&src, format_of(file), file)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            f.metadata().lastmodified,
            expected["lastmodified"].as_str().unwrap(),
            "{file}"
        );
        let key =
            DataKey::from_bytes(&hex::decode(expected["data_key_hex"].as_str().unwrap()).unwrap())
                .unwrap();

        // The MAC over the plaintext, as computed here, is the one in the vector.
        let mut docs = f.docs.clone();
        let rules = Rules::new(
            f.metadata().selection.clone(),
            f.metadata().mac_only_encrypted,
        )
        .unwrap();
        let mac = tree::decrypt_docs(&mut docs, &rules, &key, file, None).unwrap();
        assert_eq!(mac, expected["mac_sha512_hex"].as_str().unwrap(), "{file}");

        // Decryption checks the stored MAC and yields the leaves in order, typed as sops types them.
        let plain = f
            .decrypt_with_key(&key)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let got = leaves(&f.docs, plain.documents());
        let want: Vec<(Vec<String>, String, String, bool)> = expected["leaves_in_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["path"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap().to_string())
                        .collect(),
                    l["value"].as_str().unwrap().to_string(),
                    l["type"].as_str().unwrap().to_string(),
                    l["encrypted"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "{file}");

        // Encrypted comments come back as text.
        let mut cs = Vec::new();
        plain.documents().iter().for_each(|d| comments(d, &mut cs));
        assert!(cs.iter().all(|c| !c.contains("ENC[")), "{file}: {cs:?}");
        if file == "example.enc.yaml" || file == "comments.enc.yaml" {
            assert!(!cs.is_empty(), "{file}: its comments were lost");
            let out = plain.to_text(Format::Yaml, file).unwrap();
            assert!(
                out.lines().any(|l| l.trim_start().starts_with('#')),
                "{file}:\n{}",
                &*out
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "only {checked} vectors with expected.json were found"
    );
}

#[test]
fn decrypted_example_reads_as_the_same_values() {
    let src = read("example.enc.yaml");
    let f = EncryptedFile::parse(&src, Format::Yaml, "example.enc.yaml").unwrap();
    let key = DataKey::from_bytes(
        &hex::decode("8c68886c50b5b72965a3cb99c5172e1d74a8aca27b39ee880b535d6907e59f68").unwrap(),
    )
    .unwrap();
    let plain = f.decrypt_with_key(&key).unwrap();
    assert_eq!(
        plain
            .lookup(&["app2", "db", "user"])
            .and_then(Value::to_text)
            .as_deref()
            .map(String::as_str),
        Some("eve")
    );
    assert_eq!(
        plain
            .pointer("/an_array/1")
            .and_then(Value::to_text)
            .as_deref()
            .map(String::as_str),
        Some("secretuser2")
    );
    assert_eq!(plain.lookup(&["number"]), Some(&Value::Float(1234568000.0)));
    assert_eq!(
        plain.lookup(&["somebooleans", "0"]),
        Some(&Value::Bool(true))
    );
    let yaml = plain.to_text(Format::Yaml, "x").unwrap();
    assert!(yaml.contains("number: 1.234568e+09"), "{}", &*yaml);
    let again = Plaintext::parse(&yaml, Format::Yaml, "x").unwrap();
    assert_eq!(again, plain);
    // The same data key re-encrypts to a file that decrypts to the same plaintext.
    let re = f.reencrypt(&key, &plain, Format::Yaml).unwrap();
    let back = EncryptedFile::parse(&re, Format::Yaml, "re")
        .unwrap()
        .decrypt_with_key(&key)
        .unwrap();
    assert_eq!(back, plain);
}

#[test]
fn a_file_without_mac_is_refused() {
    let src = read("no_mac.enc.yaml");
    let f = EncryptedFile::parse(&src, Format::Yaml, "no_mac.enc.yaml").unwrap();
    let e = f.decrypt(&Identities::default()).unwrap_err();
    assert!(matches!(e, Error::MissingMac { .. }), "{e}");
    assert!(e.to_string().contains("no_mac.enc.yaml"), "{e}");
    let e = f.decrypt_with_key(&DataKey::generate()).unwrap_err();
    assert!(matches!(e, Error::MissingMac { .. }), "{e}");
}

#[test]
fn a_tampered_value_names_its_path_and_no_value() {
    let expected: J = serde_json::from_str(&read("example.enc.yaml.expected.json")).unwrap();
    let key =
        DataKey::from_bytes(&hex::decode(expected["data_key_hex"].as_str().unwrap()).unwrap())
            .unwrap();
    let src = read("tampered_value.enc.yaml");
    let f = EncryptedFile::parse(&src, Format::Yaml, "tampered_value.enc.yaml").unwrap();
    let e = f.decrypt_with_key(&key).unwrap_err();
    assert!(
        matches!(&e, Error::Tampered { path, .. } if path == "app2:db:user:"),
        "{e}"
    );
    let msg = format!("{e} {e:?}");
    assert!(
        msg.contains("tampered_value.enc.yaml") && msg.contains("app2:db:user"),
        "{msg}"
    );
    for leaf in expected["leaves_in_order"].as_array().unwrap() {
        let v = leaf["value"].as_str().unwrap();
        if leaf["encrypted"].as_bool().unwrap() && v.len() > 3 {
            assert!(!msg.contains(v), "the message holds a value: {msg}");
        }
    }
}

#[test]
fn a_changed_mac_or_value_fails_the_mac_check() {
    let expected: J = serde_json::from_str(&read("example.enc.yaml.expected.json")).unwrap();
    let key =
        DataKey::from_bytes(&hex::decode(expected["data_key_hex"].as_str().unwrap()).unwrap())
            .unwrap();
    // An unencrypted value changed: every ciphertext still opens, but the MAC does not match.
    let src = read("example.enc.yaml").replace("remain in clear text", "remain in clear text!");
    let e = EncryptedFile::parse(&src, Format::Yaml, "example.enc.yaml")
        .unwrap()
        .decrypt_with_key(&key)
        .unwrap_err();
    assert!(matches!(e, Error::MacMismatch { .. }), "{e}");
    // Moving lastmodified breaks the MAC's additional data.
    let src = read("example.enc.yaml").replace("2025-08-06T18:55:05Z", "2025-08-06T18:55:06Z");
    let e = EncryptedFile::parse(&src, Format::Yaml, "example.enc.yaml")
        .unwrap()
        .decrypt_with_key(&key)
        .unwrap_err();
    assert!(matches!(e, Error::MacMismatch { .. }), "{e}");
}

fn age_case(enc: &str, key: &str, plain: &str) {
    let ids = Identities::parse(&read(key), key).unwrap();
    let f = EncryptedFile::parse(&read(enc), Format::Yaml, enc).unwrap();
    let got = f.decrypt(&ids).unwrap_or_else(|e| panic!("{enc}: {e}"));
    let want = Plaintext::parse(&read(plain), Format::Yaml, plain).unwrap();
    assert_eq!(got.root().to_json(), want.root().to_json(), "{enc}");
    // Without the identity: an error naming the recipients and where it looked, no key.
    let e = f.decrypt(&Identities::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::NoIdentity { .. }), "{msg}");
    assert!(
        msg.contains(f.recipients()[0]) && !msg.contains("AGE-SECRET-KEY"),
        "{msg}"
    );
}

#[test]
fn age_vectors_decrypt_with_their_identities() {
    age_case(
        "age_k8s_secret.enc.yaml",
        "age-test-keys.txt",
        "age_k8s_secret.plain.yaml",
    );
    age_case(
        "age-real/flux-age.enc.yaml",
        "age-real/flux-age.key.txt",
        "age-real/flux-age.plain.yaml",
    );
    age_case(
        "age-real/helm-secrets-age.enc.yaml",
        "age-real/helm-secrets-age.key.txt",
        "age-real/helm-secrets-age.plain.yaml",
    );
}

#[test]
fn pgp_only_files_name_each_key_that_could_not_be_used() {
    let f =
        EncryptedFile::parse(&read("format.enc.json"), Format::Json, "format.enc.json").unwrap();
    let e = f.decrypt(&Identities::default()).unwrap_err();
    assert!(matches!(e, Error::DataKey { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("pgp FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4: no master-key service"),
        "{msg}"
    );
}

#[test]
fn scanner_helpers_recognise_the_vectors() {
    for name in [
        "example.enc.yaml",
        "format.enc.json",
        "age_k8s_secret.enc.yaml",
        "age-real/flux-age.enc.yaml",
    ] {
        let docs = kustodian_manifest::parse_stream(&read(name)).unwrap();
        assert!(crate::is_sops_document(&docs[0].root), "{name}");
    }
    let docs = kustodian_manifest::parse_stream(&read("age_k8s_secret.plain.yaml")).unwrap();
    assert!(!crate::is_sops_document(&docs[0].root));
    let docs = kustodian_manifest::parse_stream("sops: {note: hi}\n").unwrap();
    assert!(!crate::is_sops_document(&docs[0].root));
}

#[test]
fn real_sops_shamir_vector_opens_with_two_of_three_groups() {
    let both = format!(
        "{}{}",
        read("keys-real/age-group1.key.txt"),
        read("keys-real/age-group3.key.txt")
    );
    let ids = Identities::parse(&both, "test").unwrap();
    let f = EncryptedFile::parse(
        &read("keys-real/shamir-2of3.enc.yaml"),
        Format::Yaml,
        "shamir-2of3.enc.yaml",
    )
    .unwrap();
    assert_eq!(f.metadata().key_groups.len(), 3);
    assert_eq!(f.metadata().shamir_threshold, 2);
    let got = f.decrypt(&ids).unwrap();
    assert_eq!(
        got.lookup(&["stringData", "password"])
            .and_then(|v| v.to_text())
            .as_deref()
            .map(|s| s.as_str()),
        Some("interop-canary-pw")
    );
    // One group is not enough; the error names the other two groups' keys, never a value.
    let one = Identities::parse(&read("keys-real/age-group1.key.txt"), "one").unwrap();
    let msg = f.decrypt(&one).unwrap_err().to_string();
    assert!(
        msg.contains("2 of 3 key groups are needed")
            && msg.contains("pgp AC2102CDFCAC8EEF76F9403D7E72C431108BCA4E")
            && !msg.contains("interop-canary-pw"),
        "{msg}"
    );
}

#[test]
fn real_sops_transit_and_kms_vectors_keep_their_key_fields() {
    use crate::{KeyPlan, MasterKey};
    let f = EncryptedFile::parse(
        &read("keys-real/transit.enc.yaml"),
        Format::Yaml,
        "transit.enc.yaml",
    )
    .unwrap();
    let plan = KeyPlan::of(f.metadata());
    let MasterKey::Vault(v) = &plan.groups[0][0] else {
        panic!("{plan:?}")
    };
    assert_eq!(v.uri(), "http://127.0.0.1:18299/v1/transit/keys/interop");
    assert!(f.metadata().key_groups[0][0].enc.starts_with("vault:v1:"));
    let f = EncryptedFile::parse(
        &read("keys-real/kms.enc.yaml"),
        Format::Yaml,
        "kms.enc.yaml",
    )
    .unwrap();
    let plan = KeyPlan::of(f.metadata());
    let MasterKey::Kms(k) = &plan.groups[0][0] else {
        panic!("{plan:?}")
    };
    assert!(k.arn.starts_with("arn:aws:kms:us-east-1:123456789012:key/"));
    assert_eq!(k.context, vec![("app".to_string(), "db".to_string())]);
    assert_eq!(k.aws_profile, None);
    // Without a service, each key says why it could not be used.
    let msg = f.decrypt(&Identities::default()).unwrap_err().to_string();
    assert!(msg.contains(&format!("kms {}", k.arn)), "{msg}");
}

/// A service that wraps by reversing the bytes and hex-encoding: enough to check that the
/// layout kustodian writes (flat and grouped) reads back with the same keys.
#[derive(Debug)]
struct Reverse;

impl crate::MasterKeyService for Reverse {
    fn wrap(&self, _: &crate::MasterKey, p: &[u8], _: &str) -> Result<String, String> {
        Ok(hex::encode(p.iter().rev().copied().collect::<Vec<_>>()))
    }
    fn unwrap(
        &self,
        _: &crate::MasterKey,
        enc: &str,
        _: &str,
    ) -> Result<crate::Zeroizing<Vec<u8>>, String> {
        let mut v = hex::decode(enc).map_err(|e| e.to_string())?;
        v.reverse();
        Ok(crate::Zeroizing::new(v))
    }
}

#[test]
fn written_key_groups_read_back_with_the_same_keys() {
    use crate::{encrypt_for, EncryptOptions, KeyPlan, MasterKey, VaultKey};
    let ids = Identities::default().with_master_keys(std::sync::Arc::new(Reverse));
    let plain = Plaintext::parse("a: secret-canary\n", Format::Yaml, "x").unwrap();
    let plan = KeyPlan {
        groups: vec![
            vec![MasterKey::Pgp(
                "AC2102CDFCAC8EEF76F9403D7E72C431108BCA4E".into(),
            )],
            vec![MasterKey::Vault(
                VaultKey::from_uri("http://v:8200/v1/transit/keys/a").unwrap(),
            )],
            vec![MasterKey::Kms(crate::KmsKey {
                arn: "arn:aws:kms:eu-west-1:1:key/x".into(),
                ..Default::default()
            })],
        ],
        shamir_threshold: 2,
    };
    for fmt in [Format::Yaml, Format::Json] {
        let text = encrypt_for(&plain, &EncryptOptions::default(), &plan, &ids, fmt, "x").unwrap();
        assert!(!text.contains("secret-canary"));
        let f = EncryptedFile::parse(&text, fmt, "x").unwrap();
        assert!(KeyPlan::of(f.metadata()).same_keys(&plan), "{text}");
        let back = f.decrypt(&ids).unwrap();
        assert_eq!(back.root().to_json(), plain.root().to_json());
    }
    // A threshold the groups cannot meet is refused before anything is written.
    let bad = KeyPlan {
        shamir_threshold: 4,
        ..plan
    };
    let e = encrypt_for(
        &plain,
        &EncryptOptions::default(),
        &bad,
        &ids,
        Format::Yaml,
        "x",
    );
    assert!(matches!(e, Err(Error::BadThreshold { .. })));
}
