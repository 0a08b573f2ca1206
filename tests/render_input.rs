//! What `kustodian render` reads and what it says about it: encrypted manifests are decrypted
//! and emitted (stores are not), one file can be rendered, a missing path or an empty folder is
//! named as such, a missing SOPS store is "not found", and a parse error shows no values.
//!
//! Fixtures under tests/fixtures/render-input/<behaviour>/; the encrypted files were written by
//! the real sops (`secret.enc.yaml`, `store.enc.yaml`) and by `kustodian encrypt`
//! (`by-kustodian.enc.yaml`) for the render fixtures' test key.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_no_canary, output_text, text};

const CANARIES: &[&str] = &[
    "canary-sops-written-manifest",
    "canary-store-token",
    "canary-unclosed-quote",
    "canary-flow",
    "canary-kustomized-password",
    "Y2FuYXJ5", // base64 of "canary": the kustodian-written Secret's data
];
const RECIPIENT: &str = "age1e8h5ntgq60yrh6rqrx6ukr472and89xedd8s64layhjcl4pevyhqeye4j3";

fn fixtures() -> PathBuf {
    common::repo_root().join("tests/fixtures/render-input")
}

fn keys() -> PathBuf {
    common::repo_root().join("tests/fixtures/render/store/keys.txt")
}

/// The built kustodian in `dir` with the test key (or `key_file`) and nothing else.
fn kustodian(dir: &Path, key_file: &Path) -> assert_cmd::Command {
    let mut c = common::kustodian(dir);
    c.env("SOPS_AGE_KEY_FILE", key_file)
        .env("XDG_CONFIG_HOME", dir.join("no-such-config"))
        .env("HOME", dir.join("no-such-home"))
        .env_remove("SOPS_AGE_KEY")
        .env_remove("KUSTODIAN_STORE")
        .env_remove("AVP_TYPE");
    c
}

fn render(dir: &Path, target: &str) -> std::process::Output {
    kustodian(dir, &keys())
        .args(["render", target])
        .output()
        .unwrap()
}

#[test]
fn sops_encrypted_manifests_are_decrypted_and_stores_are_not_emitted() {
    let case = fixtures().join("sops-manifests-are-decrypted");
    let out = render(&case, "app");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
    assert_eq!(text(&out.stdout), want);
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("sops:") && !stdout.contains("ENC["));
    assert!(
        !stdout.contains("canary-store-token\n---"),
        "the store was emitted"
    );
}

#[test]
fn an_encrypted_manifest_without_its_identity_fails_naming_file_and_recipient() {
    let case = fixtures().join("sops-manifests-are-decrypted");
    let other_key = tempfile::tempdir().unwrap();
    let key_file = other_key.path().join("keys.txt");
    let out = kustodian(&case, &key_file)
        .args(["render", "app"])
        .output()
        .unwrap();
    assert_no_canary("render without the identity", &out, CANARIES);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("by-kustodian.enc.yaml") && err.contains(RECIPIENT),
        "{err}"
    );
}

#[test]
fn a_secret_encrypted_in_place_by_kustodian_is_rendered_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    common::init_repo(tmp.path());
    let plain = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: canary-in-place\n";
    common::write(tmp.path(), "app/secret.yaml", plain);
    let enc = kustodian(tmp.path(), &keys())
        .args([
            "encrypt",
            "--age",
            RECIPIENT,
            "--in-place",
            "app/secret.yaml",
        ])
        .output()
        .unwrap();
    assert!(enc.status.success(), "{}", text(&enc.stderr));
    let out = render(tmp.path(), "app");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), plain);
}

#[test]
fn render_takes_one_file() {
    let case = fixtures().join("sops-manifests-are-decrypted");
    let out = render(&case, "app/cm.yaml");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("name: plain"));
    let out = render(&case, "app/secret.enc.yaml");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("token: canary-store-token"));
}

#[test]
fn a_missing_path_says_no_such_file_or_folder() {
    let out = render(&fixtures(), "no/such/app");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(err.contains("no/such/app: no such file or folder"), "{err}");
}

#[test]
fn an_empty_folder_or_one_without_manifests_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    common::write(tmp.path(), "notes/readme.yaml", "just: data\n");
    for folder in ["empty", "notes"] {
        let out = render(tmp.path(), folder);
        assert!(out.status.success(), "{}", output_text(&out));
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        assert!(
            err.contains(folder) && err.contains("no Kubernetes manifests found"),
            "{err}"
        );
    }
}

#[test]
fn a_missing_sops_store_file_says_not_found() {
    let case = fixtures().join("missing-store-file-says-not-found");
    let out = render(&case.join(".."), "missing-store-file-says-not-found");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("missing.enc.yaml: not found"), "{err}");
    assert!(!err.contains("leaves the repository"), "{err}");
}

#[test]
fn a_parse_error_excerpt_masks_values() {
    let case = fixtures().join("parse-error-excerpt-masks-values");
    let out = render(&case, ".");
    assert_no_canary("a parse error", &out, CANARIES);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("secret.yaml:6:13") && err.contains("password: \"***"),
        "{err}"
    );
}

#[test]
fn kustomize_builds_decrypt_encrypted_objects_and_drop_the_sops_block() {
    let case = fixtures().join("kustomize-builds-decrypt-encrypted-objects");
    let out = render(&case, "overlay");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
    assert_eq!(text(&out.stdout), want);
}

#[test]
fn kustomize_builds_without_the_identity_fail_naming_the_source_file() {
    let case = fixtures().join("kustomize-builds-decrypt-encrypted-objects");
    let none = tempfile::tempdir().unwrap();
    let out = kustodian(&case, &none.path().join("keys.txt"))
        .args(["render", "overlay"])
        .output()
        .unwrap();
    assert_no_canary("kustomize build without the identity", &out, CANARIES);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("secret.enc.yaml") && err.contains(RECIPIENT),
        "{err}"
    );
}
