//! End-to-end tests of `kustodian render`: one fixture folder per behaviour under
//! tests/fixtures/render/, rendered by the built binary against the SOPS/age test store in
//! tests/fixtures/render/store/ (written by the real sops).
//!
//! A folder holds `input.yaml` (read from stdin, with the folder as working directory) or
//! `input/` (rendered as a folder), and either `expected.yaml` (the golden output; refresh
//! with `KUSTODIAN_BLESS=1`) or `expected-error.txt` (lines that must all appear on stderr,
//! with nothing on stdout and a non-zero exit).

#[macro_use]
mod common;

use std::path::{Path, PathBuf};

/// Every secret value in the test store: none may ever reach stderr.
const CANARIES: &[&str] = &[
    "canary-render-s3cret",
    "canary-json-pass",
    "canary-nested-value",
    "canary-b64-value",
    "canary-other-key-value",
    "Y2FuYXJ5", // base64 of "canary"
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/render")
}

use common::renderer as kustodian;

fn assert_no_canary(what: &str, text: &str) {
    common::assert_no_canary_in(what, text, CANARIES);
}

fn run_case(name: &str) {
    let case = fixtures().join(name);
    let mut cmd = kustodian(&case);
    if case.join("input").is_dir() {
        cmd.args(["render", "input"]);
    } else {
        let input = std::fs::read(case.join("input.yaml")).unwrap();
        cmd.args(["render", "-"]).write_stdin(input);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_no_canary("stderr", &stderr);

    if common::expected_failure(&case, &out) {
        return;
    }
    assert!(out.status.success(), "{name}: render failed:\n{stderr}");
    let golden = case.join("expected.yaml");
    if std::env::var_os("KUSTODIAN_BLESS").is_some() {
        std::fs::write(&golden, &stdout).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|_| panic!("{name}: no expected.yaml; run with KUSTODIAN_BLESS=1"));
    assert_eq!(stdout, want, "{name}: output differs from expected.yaml");
}

cases!(
    avp_path_in_stringdata,
    avp_path_in_data_is_base64_encoded,
    base64_wrapped_placeholder_in_data,
    several_references_per_string,
    version_in_placeholder,
    dotted_key_reaches_nested_values,
    vals_sops_uri_with_json_pointer,
    dotenv_store,
    vals_uri_embedded_with_plus,
    modifiers,
    generic_placeholders_need_the_path_annotation,
    ignore_annotation_leaves_a_document_alone,
    remove_missing_drops_missing_keys,
    untouched_documents_keep_their_meaning,
    kustomize_folder_is_built_first,
    plain_folder_in_path_order_skips_sops_files,
    error_missing_key,
    error_missing_file,
    error_unknown_modifier,
    error_path_leaves_repository,
    error_absolute_path,
    error_no_matching_identity,
    error_several_failures_all_reported,
);

#[test]
fn each_distinct_path_is_fetched_once() {
    let case = fixtures().join("several-references-per-string");
    let mut docs = String::new();
    for i in 0..50 {
        docs.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  a: <path:../store/app.enc.yaml#username>\n  b: ref+sops://../store/app.enc.yaml#/password\n"
        ));
    }
    let out = kustodian(&case)
        .args(["render", "-", "--stats"])
        .write_stdin(docs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("100 references, 1 store request"),
        "{stderr}"
    );
}

#[test]
fn missing_folder_is_an_error_with_exit_2() {
    let case = fixtures().join("modifiers");
    let out = kustodian(&case)
        .args(["render", "no-such-folder"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn yaml_syntax_error_names_line_and_column() {
    let case = fixtures().join("modifiers");
    let out = kustodian(&case)
        .args(["render", "-"])
        .write_stdin("kind: ConfigMap\ndata:\n  a: [unclosed\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("<stdin>:"), "{stderr}");
    assert!(out.stdout.is_empty());
}
