//! The leak guard: whatever path renders, a Secret still carrying a reference marker (`<path:`,
//! `ref+SCHEME://`, a SOPS `ENC[AES256_GCM,` value) fails the render with nothing on stdout, and
//! the message names the Secret and the field, never the value.

mod common;

use std::path::{Path, PathBuf};

const CANARIES: &[&str] = &["canary-leak", "Y2FuYXJ5", "canary-sops"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leak-guard")
}

use common::renderer as kustodian;

/// Renders `input.yaml` of the case from stdin; returns stderr after checking that the render
/// failed with nothing on stdout and no canary anywhere.
fn render_fails(case: &str) -> String {
    let dir = fixtures().join(case);
    let out = kustodian(&dir)
        .args(["render", "-"])
        .write_stdin(std::fs::read(dir.join("input.yaml")).unwrap())
        .output()
        .unwrap();
    let stderr = common::text(&out.stderr);
    assert!(!out.status.success(), "{case}: render succeeded:\n{stderr}");
    assert!(out.stdout.is_empty(), "{case}: something on stdout");
    common::assert_no_canary_in(case, &stderr, CANARIES);
    stderr
}

#[test]
fn a_store_value_that_is_itself_a_placeholder_fails_the_render() {
    let err = render_fails("store-value-is-a-placeholder");
    assert!(
        err.contains("Secret/app") && err.contains("stringData.password") && err.contains("<path:"),
        "{err}"
    );
    assert!(!err.contains("stringData.plain"), "{err}");
}

#[test]
fn an_ignored_secret_with_a_placeholder_or_encoded_vals_uri_fails_the_render() {
    let err = render_fails("ignored-secret-keeps-a-placeholder");
    assert!(
        err.contains("Secret/app") && err.contains("stringData.password"),
        "{err}"
    );
    assert!(
        err.contains("Secret/vals") && err.contains("data.token") && err.contains("ref+"),
        "{err}"
    );
    assert!(
        !err.contains("kv/data/app") && !err.contains("kv/app"),
        "{err}"
    );
}

#[test]
fn a_sops_encrypted_value_in_a_secret_fails_the_render() {
    let err = render_fails("sops-value-in-secret-data");
    assert!(
        err.contains("Secret/raw") && err.contains("ENC[AES256_GCM,"),
        "{err}"
    );
}

#[test]
fn the_krm_function_refuses_a_secret_left_with_a_placeholder() {
    let dir = fixtures().join("krm-resolver-ignored-secret");
    let out = kustodian(&dir)
        .arg("krm")
        .write_stdin(std::fs::read(dir.join("resource-list.yaml")).unwrap())
        .output()
        .unwrap();
    // A failed KRM function hands its items back unchanged, with an error result.
    let stderr = common::text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(common::text(&out.stdout).contains("severity: error"));
    assert!(
        stderr.contains("stringData.password") && stderr.contains("<path:"),
        "{stderr}"
    );
    assert!(!stderr.contains("kv/data/app"), "{stderr}");
}
