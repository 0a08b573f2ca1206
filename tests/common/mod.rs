//! Helpers shared by the end-to-end tests (`mod common;`): temporary git repositories isolated
//! from the user's configuration and from a repository the tests may run in, the built
//! kustodian with a clean environment, and the checks that no output holds a secret.

#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built kustodian binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kustodian"))
}

/// `git` in `dir`, unaffected by the user's and system's configuration and by the repository a
/// test may itself run in (from a hook, git exports `GIT_DIR` and `GIT_INDEX_FILE`).
pub fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    for v in [
        "GIT_DIR",
        "GIT_INDEX_FILE",
        "GIT_WORK_TREE",
        "GIT_OBJECT_DIRECTORY",
    ] {
        c.env_remove(v);
    }
    c
}

/// Runs git, which must succeed; returns its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir).args(args).output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed:\n{}",
        output_text(&out)
    );
    text(&out.stdout).trim().to_string()
}

/// Makes `dir` a git repository on branch `main` with a committer configured.
pub fn init_repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    for (k, v) in [
        ("user.name", "Ann Author"),
        ("user.email", "ann@example.com"),
        ("commit.gpgsign", "false"),
        ("core.autocrlf", "false"),
    ] {
        git(dir, &["config", k, v]);
    }
}

/// A fresh temporary git repository (see [`init_repo`]).
pub fn new_repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    init_repo(tmp.path());
    tmp
}

/// Stages everything and commits it (hooks skipped); returns the commit id.
pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "commit",
            "-q",
            "--no-verify",
            "--allow-empty",
            "-m",
            message,
        ],
    );
    git(dir, &["rev-parse", "HEAD"])
}

/// Writes `body` to `dir/rel`, creating folders.
pub fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// A temporary folder holding `files` (path, contents).
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        write(dir.path(), name, body);
    }
    dir
}

/// Copies the files under `src` into `dst` (hidden files included), making folders as needed.
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A fresh repository holding `src`'s files, not yet committed.
pub fn repo_with(src: &Path) -> tempfile::TempDir {
    let tmp = new_repo();
    copy_tree(src, tmp.path());
    tmp
}

/// The built kustodian, run in `dir` without colours and without git's hook environment.
pub fn kustodian(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("kustodian").unwrap();
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE");
    cmd
}

/// The built kustodian set up to render in `case` with the render fixtures' age identity and
/// no store or key from the caller's environment.
pub fn renderer(case: &Path) -> assert_cmd::Command {
    let mut cmd = kustodian(case);
    cmd.env_remove("SOPS_AGE_KEY")
        .env_remove("AVP_TYPE")
        .env_remove("KUSTODIAN_STORE")
        .env("XDG_CONFIG_HOME", case.join("no-such-config"))
        .env(
            "SOPS_AGE_KEY_FILE",
            repo_root().join("tests/fixtures/render/store/keys.txt"),
        );
    cmd
}

/// Bytes as text, lossily.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stdout then stderr, as text.
pub fn output_text(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// The canaries every fixture secret holds: `canary`, and its base64 form.
pub const CANARIES: [&str; 2] = ["canary", "Y2FuYXJ5"];

/// Fails when `s` holds any of `canaries` (case-insensitively).
pub fn assert_no_canary_in(what: &str, s: &str, canaries: &[&str]) {
    let lower = s.to_lowercase();
    for c in canaries {
        assert!(
            !lower.contains(&c.to_lowercase()),
            "{what} leaks {c:?}:\n{s}"
        );
    }
}

/// Fails when stdout or stderr holds any of `canaries` (case-insensitively).
pub fn assert_no_canary(what: &str, out: &Output, canaries: &[&str]) {
    assert_no_canary_in(&format!("{what}: stdout"), &text(&out.stdout), canaries);
    assert_no_canary_in(&format!("{what}: stderr"), &text(&out.stderr), canaries);
}

/// The `findings` of a `--format json` report.
pub fn findings(out: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", output_text(out)));
    v["findings"].as_array().expect("a findings array").clone()
}

/// `path:line:column:rule:severity` of each finding of a `--format json` report, sorted.
pub fn brief(out: &Output) -> Vec<String> {
    let mut v: Vec<String> = findings(out)
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{}:{}:{}",
                f["path"].as_str().unwrap(),
                f["line"],
                f["column"],
                f["rule"].as_str().unwrap(),
                f["severity"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

/// For a golden-file case that expects a failure (it has `expected-error.txt`): checks that it
/// failed, printed nothing on stdout and said every line of that file on stderr, and returns
/// true. Returns false for a case that expects success.
pub fn expected_failure(case: &Path, out: &Output) -> bool {
    let Ok(expected) = std::fs::read_to_string(case.join("expected-error.txt")) else {
        return false;
    };
    let name = case.file_name().unwrap().to_string_lossy();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "{name}: expected a failure, got success:\n{stdout}"
    );
    assert!(
        stdout.is_empty(),
        "{name}: a failure printed to stdout:\n{stdout}"
    );
    for line in expected.lines().filter(|l| !l.is_empty()) {
        assert!(
            stderr.contains(line),
            "{name}: stderr lacks {line:?}:\n{stderr}"
        );
    }
    true
}

/// One `#[test]` per golden-file case: `cases!(a_case, ...)` calls `run_case("a-case")`.
#[macro_export]
macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            run_case(&stringify!($name).replace('_', "-"));
        }
    )*};
}
