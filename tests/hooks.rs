//! End-to-end tests of the commit hooks, in temporary git repositories:
//!
//! - the plain git hook (`hooks/pre-commit`, installed by `kustodian install-hook`);
//! - the real pre-commit framework (pip `pre-commit`) using this repository as a hook repo through
//!   `.pre-commit-hooks.yaml` (`language: rust`, so pre-commit builds kustodian with `cargo install`).
//!
//! `pre-commit` must be on PATH (tests/run puts .venv/bin there); a missing one fails the test.
//! The first pre-commit run builds kustodian (minutes); later runs reuse target/pre-commit-home and
//! target/pre-commit, so they only rebuild when the sources change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A value that must never appear in any hook output: base64 of `canary-Zq81xK-hunter2`.
const CANARY_B64: &str = "Y2FuYXJ5LVpxODF4Sy1odW50ZXIy";
const CANARY_PLAIN: &str = "canary-Zq81xK-hunter2";

fn plaintext_secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: Opaque\ndata:\n  password: {CANARY_B64}\n"
    )
}

fn reference_secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: Opaque\nstringData:\n  password: <path:secret/data/{name}#password>\n"
    )
}

const DEPLOYMENT: &str =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n";

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kustodian"))
}

/// PATH with the built kustodian's folder first.
fn path_with_kustodian() -> std::ffi::OsString {
    let dir = bin().parent().unwrap().to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&rest))).unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A git command isolated from the user's and system's configuration.
fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE");
    c
}

fn git(dir: &Path, args: &[&str]) -> Output {
    let out = git_cmd(dir).args(args).output().expect("run git");
    assert!(out.status.success(), "git {args:?} failed:\n{}", text(&out));
    out
}

fn init_repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "Kustodian Test"]);
    git(dir, &["config", "user.email", "test@kustodian.invalid"]);
    git(dir, &["config", "commit.gpgsign", "false"]);
}

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn assert_no_canary(out: &str) {
    assert!(
        !out.contains(CANARY_B64),
        "hook output leaked the secret value:\n{out}"
    );
    assert!(
        !out.contains(CANARY_PLAIN),
        "hook output leaked the decoded secret value:\n{out}"
    );
}

#[test]
fn git_hook_refuses_plaintext_secret_passes_clean_commit_and_keeps_foreign_hooks() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    init_repo(repo);

    let install = Command::new(bin())
        .arg("install-hook")
        .current_dir(repo)
        .env("PATH", path_with_kustodian())
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "install-hook failed:\n{}",
        text(&install)
    );
    assert!(
        text(&install).contains("installed"),
        "install-hook should say what it did:\n{}",
        text(&install)
    );
    let hook = repo.join(".git/hooks/pre-commit");
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        include_str!("../hooks/pre-commit")
    );

    // A plaintext Secret is refused, the finding is shown, the value is not.
    write(repo, "apps/web/secret.yaml", &plaintext_secret("web-db"));
    write(repo, "apps/web/deployment.yaml", DEPLOYMENT);
    git(repo, &["add", "-A"]);
    let refused = git_cmd(repo)
        .args(["commit", "-q", "-m", "add web"])
        .env("PATH", path_with_kustodian())
        .output()
        .unwrap();
    let out = text(&refused);
    assert!(
        !refused.status.success(),
        "commit of a plaintext Secret must be refused:\n{out}"
    );
    assert!(
        out.contains("apps/web/secret.yaml"),
        "the finding must name the file:\n{out}"
    );
    assert!(
        out.contains("web-db") || out.contains("password"),
        "the finding must name the Secret or key:\n{out}"
    );
    assert!(
        !out.contains("deployment.yaml"),
        "clean files are not findings:\n{out}"
    );
    assert_no_canary(&out);
    assert!(
        git_cmd(repo)
            .args(["rev-parse", "--verify", "-q", "HEAD"])
            .output()
            .unwrap()
            .stdout
            .is_empty(),
        "nothing was committed"
    );

    // The same Secret as a reference passes.
    write(repo, "apps/web/secret.yaml", &reference_secret("web-db"));
    git(repo, &["add", "-A"]);
    let ok = git_cmd(repo)
        .args(["commit", "-q", "-m", "add web"])
        .env("PATH", path_with_kustodian())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "a clean commit must pass:\n{}",
        text(&ok)
    );

    // KUSTODIAN=/path works without kustodian on PATH.
    write(repo, "apps/api/secret.yaml", &plaintext_secret("api-db"));
    git(repo, &["add", "-A"]);
    let refused = git_cmd(repo)
        .args(["commit", "-q", "-m", "add api"])
        .env("KUSTODIAN", bin())
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "KUSTODIAN=... hook must refuse too:\n{}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("apps/api/secret.yaml"),
        "{}",
        text(&refused)
    );
    assert_no_canary(&text(&refused));

    // A different existing hook is left alone without --force, and install-hook says so.
    let foreign = "#!/bin/sh\necho my own hook\n";
    std::fs::write(&hook, foreign).unwrap();
    let again = Command::new(bin())
        .arg("install-hook")
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "install-hook must refuse to overwrite a foreign hook:\n{}",
        text(&again)
    );
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    assert!(
        text(&again).contains("--force"),
        "it should tell how to override:\n{}",
        text(&again)
    );
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        foreign,
        "the foreign hook must be untouched"
    );

    let forced = Command::new(bin())
        .args(["install-hook", "--force"])
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "install-hook --force failed:\n{}",
        text(&forced)
    );
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        include_str!("../hooks/pre-commit")
    );
    assert_eq!(
        std::fs::read_to_string(repo.join(".git/hooks/pre-commit.bak")).unwrap(),
        foreign,
        "old hook kept as .bak"
    );
}

/// A committed snapshot of this checkout's working tree (tracked and untracked, not ignored files),
/// at a stable path with fixed commit dates, so an unchanged tree gives the same rev and pre-commit
/// reuses its built environment. Returns (repo path, rev).
fn hook_repo_snapshot() -> (PathBuf, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let snap = root.join("target/pre-commit-hookrepo");
    let _ = std::fs::remove_dir_all(&snap);
    std::fs::create_dir_all(&snap).unwrap();
    let files = git(
        &root,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    );
    for rel in files.stdout.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let rel = std::str::from_utf8(rel).unwrap();
        let src = root.join(rel);
        if !src.is_file() {
            continue; // deleted in the working tree
        }
        let dst = snap.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap();
    }
    assert!(
        snap.join(".pre-commit-hooks.yaml").is_file(),
        ".pre-commit-hooks.yaml missing from the checkout"
    );
    init_repo(&snap);
    git(&snap, &["add", "-A"]);
    let date = "2026-01-01T00:00:00Z";
    let out = git_cmd(&snap)
        .args(["commit", "-q", "-m", "snapshot"])
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rev = String::from_utf8(git(&snap, &["rev-parse", "HEAD"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    (snap, rev)
}

/// pre-commit with a persistent home and cargo target dir and a fast (opt-level 0) build.
fn with_pre_commit_env(c: &mut Command) -> &mut Command {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    c.env("PRE_COMMIT_HOME", root.join("target/pre-commit-home"))
        .env("CARGO_TARGET_DIR", root.join("target/pre-commit"))
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "true")
        .env_remove("KUSTODIAN")
}

#[test]
fn pre_commit_framework_refuses_plaintext_secret_passes_clean_commit_and_only_scans_changed_files()
{
    let pre_commit = find_on_path("pre-commit").unwrap_or_else(|| {
        panic!("`pre-commit` is not on PATH; install pre-commit: pip install pre-commit (tests/run puts .venv/bin on PATH)")
    });
    let (hook_repo, rev) = hook_repo_snapshot();

    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    init_repo(repo);
    write(
        repo,
        ".pre-commit-config.yaml",
        &format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: kustodian\n",
            hook_repo.display()
        ),
    );
    // Committed before the hook existed: a later commit that does not touch it must still pass,
    // which shows pre-commit passes only the changed files and kustodian scans only those.
    write(repo, "legacy/old-secret.yaml", &plaintext_secret("legacy"));
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "before the hook"]);

    let install = with_pre_commit_env(
        Command::new(&pre_commit)
            .args(["install", "--install-hooks"])
            .current_dir(repo),
    )
    .output()
    .unwrap();
    assert!(
        install.status.success(),
        "pre-commit install failed:\n{}",
        text(&install)
    );

    // A plaintext Secret is refused with the finding shown.
    write(repo, "apps/web/secret.yaml", &plaintext_secret("web-db"));
    write(repo, "apps/web/deployment.yaml", DEPLOYMENT);
    write(repo, "README.md", "not yaml\n");
    git(repo, &["add", "-A"]);
    let refused = with_pre_commit_env(git_cmd(repo).args(["commit", "-m", "add web"]))
        .output()
        .unwrap();
    let out = text(&refused);
    assert!(
        !refused.status.success(),
        "commit of a plaintext Secret must be refused:\n{out}"
    );
    assert!(
        out.contains("kustodian"),
        "pre-commit should name the hook:\n{out}"
    );
    assert!(
        out.contains("Failed"),
        "pre-commit should report the hook failed:\n{out}"
    );
    assert!(
        out.contains("apps/web/secret.yaml"),
        "the finding must name the file:\n{out}"
    );
    assert!(
        !out.contains("old-secret.yaml"),
        "unchanged files must not be scanned:\n{out}"
    );
    assert_no_canary(&out);

    // The same Secret as a reference passes, although legacy/old-secret.yaml is still in the tree.
    write(repo, "apps/web/secret.yaml", &reference_secret("web-db"));
    git(repo, &["add", "-A"]);
    let ok = with_pre_commit_env(git_cmd(repo).args(["commit", "-m", "add web"]))
        .output()
        .unwrap();
    let out = text(&ok);
    assert!(ok.status.success(), "a clean commit must pass:\n{out}");
    assert!(
        out.contains("Passed"),
        "pre-commit should report the hook passed:\n{out}"
    );

    // A commit touching only files no kustomization reads passes.
    write(repo, "README.md", "still not yaml\n");
    git(repo, &["add", "-A"]);
    let docs = with_pre_commit_env(git_cmd(repo).args(["commit", "-m", "docs"]))
        .output()
        .unwrap();
    let out = text(&docs);
    assert!(docs.status.success(), "{out}");

    // An env file that a secretGenerator reads is passed too, and judged through it.
    write(
        repo,
        "apps/web/kustomization.yaml",
        "resources: [secret.yaml]\nsecretGenerator:\n- name: web-env\n  envs: [web.env]\n",
    );
    write(repo, "apps/web/web.env", "MODE=<path:kv/data/web#mode>\n");
    git(repo, &["add", "-A"]);
    let ok = with_pre_commit_env(git_cmd(repo).args(["commit", "-m", "env refs"]))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", text(&ok));
    write(repo, "apps/web/web.env", "MODE=canary-env-plaintext\n");
    git(repo, &["add", "-A"]);
    let refused = with_pre_commit_env(git_cmd(repo).args(["commit", "-m", "env leak"]))
        .output()
        .unwrap();
    let out = text(&refused);
    assert!(
        !refused.status.success(),
        "an env file leak must be refused:\n{out}"
    );
    assert!(
        out.contains("apps/web/web.env") && out.contains("generator-file"),
        "{out}"
    );
    assert!(!out.contains("canary-env-plaintext"), "{out}");
}
