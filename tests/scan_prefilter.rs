//! The prefilter that spares files a parse must never hide a credential: ways of writing a key
//! or a value that the credential rules judge after parsing but that a byte search for key
//! words misses (a key split by `_`, escapes, an explicit `? key`, `connectionString`, config
//! text on one quoted line, a base64-encoded token, a value on the next line, a quoted `value`
//! of an env pair, JSON) are found as a walk and with `--staged`, and never printed.
//!
//! tests/fixtures/scan/credential-prefilter-evasions/expected.txt lists `path:line:rule` of
//! every finding; `clean.yaml` holds look-alikes that must stay clean.

#[macro_use]
mod common;

use std::path::Path;

use common::{findings, git, kustodian, CANARIES};

const CASE: &str = "tests/fixtures/scan/credential-prefilter-evasions";

fn listed(out: &std::process::Output) -> Vec<String> {
    let mut v: Vec<String> = findings(out)
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{}",
                f["path"].as_str().unwrap(),
                f["line"],
                f["rule"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn prefilter_evasions_are_found_and_never_printed() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join(CASE);
    let want: Vec<String> = std::fs::read_to_string(case.join("expected.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let tmp = common::repo_with(&case.join("repo"));
    let dir = tmp.path();
    let walk = kustodian(dir)
        .args(["scan", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(listed(&walk), want, "walk");
    assert_eq!(walk.status.code(), Some(1));
    git(dir, &["add", "-A"]);
    let staged = kustodian(dir)
        .args(["scan", "--staged", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(listed(&staged), want, "--staged");
    for format in ["human", "json", "sarif", "github"] {
        let out = kustodian(dir)
            .args(["scan", "--format", format])
            .output()
            .unwrap();
        common::assert_no_canary(format, &out, &CANARIES);
        assert_eq!(out.status.code(), Some(1), "{format}");
    }
}

/// Each evasion on its own blocks: no file leans on another to be parsed.
#[test]
fn each_prefilter_evasion_blocks_alone() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CASE)
        .join("repo");
    for e in std::fs::read_dir(&case).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(e.path(), tmp.path().join(&name)).unwrap();
        let out = kustodian(tmp.path())
            .env("GIT_CEILING_DIRECTORIES", tmp.path().parent().unwrap())
            .args(["scan", "--format", "json"])
            .output()
            .unwrap();
        let want = if name == "clean.yaml" { 0 } else { 1 };
        assert_eq!(
            out.status.code(),
            Some(want),
            "{name}: {}",
            common::text(&out.stdout)
        );
    }
}
