//! The scanner finds credentials outside Secret objects (issue 15): known credential formats in
//! every text file (`known-credential`), credential key names with a credential-looking value in
//! every GitOps location (`credential-value`), and lets look-alikes through. Each fixture under
//! tests/fixtures/scan/<behaviour>/ has a `repo/` and an `expected.txt` (`path:line:rule:severity`
//! per finding); each is scanned as a walk, through `--staged` and through `--range`, and no
//! output of any format holds a fixture value (every one holds `canary`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{brief, commit_all, findings, git, kustodian, new_repo, CANARIES};

fn fixture(name: &str) -> PathBuf {
    common::repo_root().join("tests/fixtures/scan").join(name)
}

fn copy_tree(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn scan(dir: &Path, args: &[&str]) -> Output {
    let out = kustodian(dir).arg("scan").args(args).output().unwrap();
    common::assert_no_canary(&format!("scan {args:?}"), &out, &CANARIES);
    out
}

/// A fresh repository holding the fixture's files, not yet committed.
fn repo_of(name: &str) -> tempfile::TempDir {
    let tmp = new_repo();
    copy_tree(&fixture(name).join("repo"), tmp.path());
    tmp
}

/// Scans the fixture as a walk, staged and as history; each must give `expected.txt`.
fn run_case(name: &str) {
    let want: Vec<String> = std::fs::read_to_string(fixture(name).join("expected.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let tmp = repo_of(name);
    let dir = tmp.path();
    let walk = scan(dir, &["--format", "json"]);
    if std::env::var_os("KUSTODIAN_BLESS").is_some() {
        let body: String = brief(&walk).iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(fixture(name).join("expected.txt"), body).unwrap();
    }
    assert_eq!(brief(&walk), want, "{name}: walk");
    assert_eq!(
        walk.status.code(),
        Some(if want.is_empty() { 0 } else { 1 })
    );
    git(dir, &["add", "-A"]);
    let staged = scan(dir, &["--staged", "--format", "json"]);
    assert_eq!(brief(&staged), want, "{name}: --staged");
    commit_all(dir, "add the fixture");
    let history = scan(dir, &["--range", "HEAD", "--format", "json"]);
    assert_eq!(brief(&history), want, "{name}: --range");
    if !want.is_empty() {
        assert_eq!(history.status.code(), Some(1));
        // Every other format, also free of values.
        for format in ["human", "sarif", "github"] {
            scan(dir, &["--format", format]);
            scan(dir, &["--range", "HEAD", "--format", format]);
        }
    }
}

#[test]
fn known_formats_are_found_in_any_text_file() {
    run_case("known-formats-in-any-file");
}

#[test]
fn credentials_are_found_in_every_gitops_location() {
    run_case("credentials-in-gitops-locations");
}

#[test]
fn look_alikes_and_safe_shapes_never_block() {
    run_case("credential-look-alikes-pass");
}

#[test]
fn a_vault_token_or_age_key_in_secret_data_is_critical() {
    run_case("secret-data-vault-and-age-keys-critical");
}

#[test]
fn only_secrets_keeps_the_narrow_scan() {
    for name in [
        "known-formats-in-any-file",
        "credentials-in-gitops-locations",
    ] {
        let tmp = repo_of(name);
        let out = scan(tmp.path(), &["--only", "secrets", "--format", "json"]);
        assert_eq!(brief(&out), Vec::<String>::new(), "{name}");
        assert_eq!(out.status.code(), Some(0));
        git(tmp.path(), &["add", "-A"]);
        let out = scan(
            tmp.path(),
            &["--staged", "--only", "secrets", "--format", "json"],
        );
        assert_eq!(brief(&out), Vec::<String>::new(), "{name}: --staged");
    }
    // Secret data is judged as before.
    let tmp = repo_of("secret-data-vault-and-age-keys-critical");
    let out = scan(tmp.path(), &["--only", "secrets", "--format", "json"]);
    assert_eq!(brief(&out).len(), 2);
}

#[test]
fn a_policy_turns_the_credential_rules_off() {
    let tmp = repo_of("credentials-in-gitops-locations");
    let policy = "version: 1\nrules:\n  known-credential: off\n  credential-value: off\n";
    std::fs::write(tmp.path().join(".kustodian.yaml"), policy).unwrap();
    let out = scan(tmp.path(), &["--format", "json"]);
    assert_eq!(brief(&out), Vec::<String>::new());
    // Per path, as for every rule.
    let policy = "version: 1\nallow:\n  - paths: ['apps/**', 'chart/**']\n    reason: test\n";
    std::fs::write(tmp.path().join(".kustodian.yaml"), policy).unwrap();
    let out = scan(tmp.path(), &["--format", "json"]);
    assert!(
        brief(&out).iter().all(|l| l.starts_with("cluster/")),
        "{:?}",
        brief(&out)
    );
}

#[test]
fn an_allow_marker_lets_a_credential_line_through() {
    let tmp = new_repo();
    common::write(
        tmp.path(),
        "deploy.sh",
        "curl https://hooks.slack.com/services/T0CANARY1/B0CANARY2/canaryAbCdEfGhIjKl # kustodian:allow test hook\n",
    );
    let out = scan(tmp.path(), &["--format", "json"]);
    assert_eq!(brief(&out), Vec::<String>::new());
}

#[test]
fn history_of_a_partial_clone_is_scanned_in_full() {
    let name = "known-formats-in-any-file";
    let src = repo_of(name);
    commit_all(src.path(), "add the fixture");
    git(src.path(), &["config", "uploadpack.allowFilter", "true"]);
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", src.path().display());
    git(
        clone.path(),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            "--no-checkout",
            &url,
            "c",
        ],
    );
    let dir = clone.path().join("c");
    let missing = git(&dir, &["rev-list", "--objects", "--missing=print", "--all"]);
    assert!(
        missing.lines().any(|l| l.starts_with('?')),
        "not a partial clone"
    );
    let out = scan(&dir, &["--range", "HEAD", "--format", "json"]);
    let want = std::fs::read_to_string(fixture(name).join("expected.txt")).unwrap();
    assert_eq!(brief(&out), want.lines().collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_missing_blob_is_an_unreadable_blob_finding_and_the_scan_goes_on() {
    let tmp = repo_of("known-formats-in-any-file");
    let dir = tmp.path();
    common::write(
        dir,
        "lost.yaml",
        "kind: ConfigMap\ndata:\n  note: canary lost\n",
    );
    let commit = commit_all(dir, "add the fixture");
    let blob = git(dir, &["rev-parse", "HEAD:lost.yaml"]);
    std::fs::remove_file(dir.join(".git/objects").join(&blob[..2]).join(&blob[2..])).unwrap();
    let out = scan(dir, &["--range", "HEAD", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out);
    let lost: Vec<_> = f
        .iter()
        .filter(|f| f["rule"] == "unreadable-blob")
        .collect();
    assert_eq!(lost.len(), 1, "{f:?}");
    assert_eq!(lost[0]["path"], "lost.yaml");
    assert_eq!(lost[0]["commit"].as_str(), Some(commit.as_str()));
    assert!(lost[0]["message"].as_str().unwrap().contains(&blob));
    // The other blobs of the commit are still judged.
    assert_eq!(f.len(), 15, "{f:?}");
}
