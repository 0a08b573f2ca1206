//! End-to-end tests of the commit hooks, in temporary git repositories:
//!
//! - the plain git hook (`hooks/pre-commit`, installed by `kustodian install-hook`);
//! - the real pre-commit framework (pip `pre-commit`) using this repository as a hook repo through
//!   `.pre-commit-hooks.yaml` (`language: rust`, so pre-commit builds kustodian with `cargo install`).
//!
//! `pre-commit` must be on PATH (tests/run puts .venv/bin there); a missing one fails the test.
//! The first pre-commit run builds kustodian (minutes); later runs reuse target/pre-commit-home and
//! target/pre-commit, so they only rebuild when the sources change.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, git, git_cmd, init_repo, output_text as text, write};

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

/// PATH with the built kustodian's folder first.
fn path_with_kustodian() -> std::ffi::OsString {
    let dir = bin().parent().unwrap().to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&rest))).unwrap()
}

/// Stages everything and runs `git commit -m MESSAGE` through `c` (a [`git_cmd`] with the hook's
/// environment): whether it went through, and all that git and the hooks printed, which must
/// not hold the secret value.
fn commit(c: &mut Command, message: &str) -> (bool, String) {
    let out = c.args(["commit", "-m", message]).output().unwrap();
    let all = text(&out);
    common::assert_no_canary_in("hook output", &all, &[CANARY_B64, CANARY_PLAIN, "canary"]);
    (out.status.success(), all)
}

/// `kustodian install-hook ARGS` in `repo`.
fn install_hook(repo: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .arg("install-hook")
        .args(args)
        .current_dir(repo)
        .env("PATH", path_with_kustodian())
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

#[test]
fn git_hook_refuses_plaintext_secret_passes_clean_commit_and_keeps_foreign_hooks() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    init_repo(repo);

    let (ok, out) = install_hook(repo, &[]);
    assert!(ok, "install-hook failed:\n{out}");
    assert!(
        out.contains("installed"),
        "install-hook should say what it did:\n{out}"
    );
    let hook = repo.join(".git/hooks/pre-commit");
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        include_str!("../hooks/pre-commit")
    );
    let with_path = || {
        let mut c = git_cmd(repo);
        c.env("PATH", path_with_kustodian());
        c
    };

    // A plaintext Secret is refused, the finding is shown, the value is not.
    write(repo, "apps/web/secret.yaml", &plaintext_secret("web-db"));
    write(repo, "apps/web/deployment.yaml", DEPLOYMENT);
    git(repo, &["add", "-A"]);
    let (ok, out) = commit(&mut with_path(), "add web");
    assert!(!ok, "commit of a plaintext Secret must be refused:\n{out}");
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
    let (ok, out) = commit(&mut with_path(), "add web");
    assert!(ok, "a clean commit must pass:\n{out}");

    // KUSTODIAN=/path works without kustodian on PATH.
    write(repo, "apps/api/secret.yaml", &plaintext_secret("api-db"));
    git(repo, &["add", "-A"]);
    let (ok, out) = commit(git_cmd(repo).env("KUSTODIAN", bin()), "add api");
    assert!(!ok, "KUSTODIAN=... hook must refuse too:\n{out}");
    assert!(out.contains("apps/api/secret.yaml"), "{out}");

    // A different existing hook is left alone without --force, and install-hook says so.
    let foreign = "#!/bin/sh\necho my own hook\n";
    std::fs::write(&hook, foreign).unwrap();
    let (ok, out) = install_hook(repo, &[]);
    assert!(
        !ok,
        "install-hook must refuse to overwrite a foreign hook:\n{out}"
    );
    assert!(out.contains("already exists"), "{out}");
    assert!(
        out.contains("--force"),
        "it should tell how to override:\n{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        foreign,
        "the foreign hook must be untouched"
    );

    let (ok, out) = install_hook(repo, &["--force"]);
    assert!(ok, "install-hook --force failed:\n{out}");
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
    for rel in files.split('\0').filter(|s| !s.is_empty()) {
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
    let rev = git(&snap, &["rev-parse", "HEAD"]);
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
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: kustodian\n      - id: kustodian-push\n",
            hook_repo.display()
        ),
    );
    // Committed before the hook existed: a later commit that does not touch it must still pass,
    // which shows pre-commit passes only the changed files and kustodian scans only those.
    write(repo, "legacy/old-secret.yaml", &plaintext_secret("legacy"));
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "before the hook"]);

    // Written past the test harness's capture: the first run of this step takes minutes.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"tests/hooks.rs: pre-commit install --install-hooks builds kustodian with cargo into target/pre-commit (minutes when the sources changed)\n",
    );
    let install = with_pre_commit_env(
        Command::new(&pre_commit)
            .args([
                "install",
                "--install-hooks",
                "--hook-type",
                "pre-commit",
                "--hook-type",
                "pre-push",
            ])
            .current_dir(repo),
    )
    .output()
    .unwrap();
    assert!(
        install.status.success(),
        "pre-commit install failed:\n{}",
        text(&install)
    );

    let pre_commit = || {
        let mut c = git_cmd(repo);
        with_pre_commit_env(&mut c);
        c
    };

    // A plaintext Secret is refused with the finding shown.
    write(repo, "apps/web/secret.yaml", &plaintext_secret("web-db"));
    write(repo, "apps/web/deployment.yaml", DEPLOYMENT);
    write(repo, "README.md", "not yaml\n");
    git(repo, &["add", "-A"]);
    let (ok, out) = commit(&mut pre_commit(), "add web");
    assert!(!ok, "commit of a plaintext Secret must be refused:\n{out}");
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

    // The same Secret as a reference passes, although legacy/old-secret.yaml is still in the tree.
    write(repo, "apps/web/secret.yaml", &reference_secret("web-db"));
    git(repo, &["add", "-A"]);
    let (ok, out) = commit(&mut pre_commit(), "add web");
    assert!(ok, "a clean commit must pass:\n{out}");
    assert!(
        out.contains("Passed"),
        "pre-commit should report the hook passed:\n{out}"
    );

    // A commit touching only files no kustomization reads passes.
    write(repo, "README.md", "still not yaml\n");
    git(repo, &["add", "-A"]);
    let (ok, out) = commit(&mut pre_commit(), "docs");
    assert!(ok, "{out}");

    // An env file that a secretGenerator reads is passed too, and judged through it.
    write(
        repo,
        "apps/web/kustomization.yaml",
        "resources: [secret.yaml]\nsecretGenerator:\n- name: web-env\n  envs: [web.env]\n",
    );
    write(repo, "apps/web/web.env", "MODE=<path:kv/data/web#mode>\n");
    git(repo, &["add", "-A"]);
    let (ok, out) = commit(&mut pre_commit(), "env refs");
    assert!(ok, "{out}");
    write(repo, "apps/web/web.env", "MODE=canary-env-plaintext\n");
    git(repo, &["add", "-A"]);
    let (ok, out) = commit(&mut pre_commit(), "env leak");
    assert!(!ok, "an env file leak must be refused:\n{out}");
    assert!(
        out.contains("apps/web/web.env") && out.contains("generator-file"),
        "{out}"
    );
    // The pre-push hook scans the pushed commits: the first push sends the whole history,
    // which holds legacy/old-secret.yaml. (The refused env file leak is dropped first.)
    git(repo, &["reset", "-q", "--hard"]);
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    git(
        repo,
        &["remote", "add", "origin", remote.path().to_str().unwrap()],
    );
    let push = |args: &[&str]| {
        let mut c = git_cmd(repo);
        with_pre_commit_env(&mut c);
        let out = c.arg("push").args(args).output().unwrap();
        let all = text(&out);
        common::assert_no_canary_in("push output", &all, &[CANARY_B64, CANARY_PLAIN, "canary"]);
        (out.status.success(), all)
    };
    let (ok, out) = push(&["-q", "origin", "HEAD:main"]);
    assert!(
        !ok,
        "a push carrying a plaintext Secret must be refused:\n{out}"
    );
    assert!(out.contains("legacy/old-secret.yaml"), "{out}");
    let (ok, out) = push(&["-q", "--no-verify", "origin", "HEAD:main"]);
    assert!(ok, "{out}");
    // From there on only the new commits count: a clean one passes; a value added and deleted
    // again in the pushed commits is refused, naming the commit that added it.
    write(
        repo,
        "apps/web/deployment.yaml",
        &DEPLOYMENT.replace("1", "2"),
    );
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "--no-verify", "-m", "scale"]);
    let (ok, out) = push(&["-q", "origin", "HEAD:main"]);
    assert!(ok, "a clean push must pass:\n{out}");
    write(repo, "apps/api/secret.yaml", &plaintext_secret("api-db"));
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "--no-verify", "-m", "leak"]);
    let leak = git(repo, &["rev-parse", "HEAD"]);
    git(repo, &["rm", "-q", "apps/api/secret.yaml"]);
    git(
        repo,
        &["commit", "-q", "--no-verify", "-m", "remove it again"],
    );
    let (ok, out) = push(&["-q", "origin", "HEAD:main"]);
    assert!(
        !ok,
        "a push whose history holds a secret must be refused:\n{out}"
    );
    assert!(
        out.contains("apps/api/secret.yaml") && out.contains(&leak),
        "{out}"
    );
}

#[test]
fn git_pre_push_hook_refuses_a_secret_anywhere_in_the_pushed_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let (remote, repo) = (tmp.path().join("remote.git"), tmp.path().join("work"));
    std::fs::create_dir_all(&remote).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    git(&remote, &["init", "-q", "--bare"]);
    init_repo(&repo);
    git(
        &repo,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let (ok, out) = install_hook(&repo, &["--pre-push"]);
    assert!(ok && out.contains("pre-push"), "{out}");
    assert_eq!(
        std::fs::read_to_string(repo.join(".git/hooks/pre-push")).unwrap(),
        include_str!("../hooks/pre-push")
    );
    let push = |branch: &str| {
        let out = git_cmd(&repo)
            .args(["push", "-q", "origin", &format!("HEAD:{branch}")])
            .env("PATH", path_with_kustodian())
            .output()
            .unwrap();
        let all = text(&out);
        common::assert_no_canary_in("push output", &all, &[CANARY_B64, CANARY_PLAIN, "canary"]);
        (out.status.success(), all)
    };

    // A new branch with clean history passes.
    write(&repo, "apps/web/deployment.yaml", DEPLOYMENT);
    common::commit_all(&repo, "web");
    let (ok, out) = push("main");
    assert!(ok, "a clean push must pass:\n{out}");

    // A value added in one commit and deleted in the next is still in what the push sends.
    write(&repo, "apps/web/secret.yaml", &plaintext_secret("web-db"));
    let leak = common::commit_all(&repo, "leak");
    git(&repo, &["rm", "-q", "apps/web/secret.yaml"]);
    common::commit_all(&repo, "remove it again");
    let (ok, out) = push("main");
    assert!(!ok, "the push must be refused:\n{out}");
    assert!(
        out.contains("apps/web/secret.yaml") && out.contains(&leak),
        "{out}"
    );
    // Also to a branch the remote does not have yet (only commits not on the remote count).
    let (ok, out) = push("feature");
    assert!(!ok, "the push of a new branch must be refused:\n{out}");
    assert!(out.contains("1 file in 2 commits scanned"), "{out}");
    assert_eq!(
        git(&remote, &["rev-parse", "main"]),
        git(&repo, &["rev-parse", "HEAD~2"]),
        "nothing past the clean commit reached the remote"
    );
}
