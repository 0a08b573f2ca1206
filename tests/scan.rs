//! End-to-end tests of `kustodian scan`, driving the built binary in real temporary git
//! repositories.
//!
//! Every folder under tests/fixtures/scan/ is one behaviour: `repo/` is copied into a fresh git
//! repository (a file named `gitignore` becomes `.gitignore`, so the fixture does not hide files
//! from this repository), then scanned twice, as a directory walk and, after `git add -A`, with
//! `--staged`. Both must print `expected.json` (the golden `--format json` output; refresh with
//! `KUSTODIAN_BLESS=1`) and exit 1 when it lists findings, 0 when not. `expected-stderr.txt`
//! holds lines that must appear on stderr. No output of any mode may hold a canary: fixture
//! secrets all contain `canary` (base64: `Y2FuYXJ5`), and `canaries.txt` lists other forms.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{commit_all, findings, git, git_cmd, kustodian, new_repo, text, CANARIES};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan")
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        let target = if name == "gitignore" {
            dst.join(".gitignore")
        } else {
            dst.join(&name)
        };
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Fails if stdout or stderr holds any canary of the fixture (or the generic ones).
fn assert_no_canary(case: &Path, what: &str, out: &Output) {
    let extra = std::fs::read_to_string(case.join("canaries.txt")).unwrap_or_default();
    let mut canaries: Vec<&str> = CANARIES.to_vec();
    canaries.extend(extra.lines().filter(|l| !l.is_empty()));
    common::assert_no_canary(what, out, &canaries);
}

/// `kustodian scan ARGS` in `dir`.
fn scan(dir: &Path, args: &[&str]) -> Output {
    kustodian(dir).arg("scan").args(args).output().unwrap()
}

fn expected_code(json: &str) -> i32 {
    let v: serde_json::Value = serde_json::from_str(json).expect("expected.json is JSON");
    if v["findings"].as_array().is_some_and(|f| !f.is_empty()) {
        1
    } else {
        0
    }
}

fn run_case(name: &str) {
    let case = fixtures().join(name);
    let tmp = new_repo();
    let dir = tmp.path();
    copy_tree(&case.join("repo"), dir);
    let golden = case.join("expected.json");
    let required_stderr =
        std::fs::read_to_string(case.join("expected-stderr.txt")).unwrap_or_default();

    // The JSON report of a walk of the working tree, then of the same files staged: the index
    // must give the same findings.
    let mut want = String::new();
    for (mode, args) in [
        ("walk", &["--format", "json"][..]),
        ("--staged", &["--staged", "--format", "json"][..]),
    ] {
        if mode == "--staged" {
            git(dir, &["add", "-A"]);
        }
        let out = scan(dir, args);
        assert_no_canary(&case, name, &out);
        if mode == "walk" {
            if std::env::var_os("KUSTODIAN_BLESS").is_some() {
                std::fs::write(&golden, &out.stdout).unwrap();
            }
            want = std::fs::read_to_string(&golden)
                .unwrap_or_else(|_| panic!("{name}: no expected.json; run with KUSTODIAN_BLESS=1"));
        }
        let stderr = text(&out.stderr);
        assert_eq!(
            text(&out.stdout),
            want,
            "{name}: {mode} output differs from expected.json; stderr:\n{stderr}"
        );
        assert_eq!(
            out.status.code(),
            Some(expected_code(&want)),
            "{name}: {mode} exit code; stderr:\n{stderr}"
        );
        for line in required_stderr.lines().filter(|l| !l.is_empty()) {
            assert!(
                stderr.contains(line),
                "{name}: {mode} stderr lacks {line:?}:\n{stderr}"
            );
        }
        if mode == "walk" {
            // The human report: same exit code, every finding's place, no canary.
            let human = scan(dir, &[]);
            assert_no_canary(&case, name, &human);
            assert_eq!(
                human.status.code(),
                Some(expected_code(&want)),
                "{name}: human exit code"
            );
            let v: serde_json::Value = serde_json::from_str(&want).unwrap();
            for f in v["findings"].as_array().unwrap() {
                let place = format!(
                    "{}:{}:{}",
                    f["path"].as_str().unwrap(),
                    f["line"],
                    f["column"]
                );
                assert!(
                    text(&human.stdout).contains(&place),
                    "{name}: human output lacks {place}:\n{}",
                    text(&human.stdout)
                );
            }
        }
    }
}

cases!(
    // What blocks.
    yaml_secret_data,
    json_secret,
    multi_document,
    list_items,
    nested_object,
    every_file_ending,
    crlf_and_bom,
    flow_style_and_quoted_keys,
    block_scalars,
    anchors_and_aliases,
    helm_template_literal,
    broken_yaml_secret,
    data_not_base64,
    severity_classes,
    sops_value_left_plaintext,
    sops_value_without_metadata,
    generator_literals,
    generator_envs,
    generator_files,
    // What is let through.
    helm_template_safe,
    references_are_safe,
    sops_encrypted_values_are_safe,
    sealed_and_external_secrets,
    empty_data,
    service_account_token,
    public_certificates,
    workload_secret_references,
    mentions_of_secrets,
    gitignored_files,
    generator_gitignored_file,
    allow_comment,
    allow_annotation,
    binary_file_skipped,
);

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: canary-staged-password\n";
const CLEAN: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: <path:secret/data/db#password>\n";

#[test]
fn human_output_of_a_blocked_commit() {
    let case = fixtures().join("yaml-secret-data");
    let tmp = new_repo();
    copy_tree(&case.join("repo"), tmp.path());
    git(tmp.path(), &["add", "-A"]);
    let out = scan(tmp.path(), &["--staged"]);
    assert_eq!(out.status.code(), Some(1));
    let golden = case.join("expected-human.txt");
    if std::env::var_os("KUSTODIAN_BLESS").is_some() {
        std::fs::write(&golden, &out.stdout).unwrap();
    }
    assert_eq!(text(&out.stdout), std::fs::read_to_string(golden).unwrap());
    assert!(text(&out.stdout).contains("[REDACTED]"));
}

#[test]
fn staged_secret_removed_from_the_working_tree_still_blocks() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::write(dir.join("db.yaml"), SECRET).unwrap();
    git(dir, &["add", "db.yaml"]);
    std::fs::remove_file(dir.join("db.yaml")).unwrap();
    let out = scan(dir, &["--staged", "--format", "json"]);
    assert_no_canary(dir, "staged", &out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    assert_eq!(
        (f[0]["path"].as_str(), f[0]["line"].as_u64()),
        (Some("db.yaml"), Some(6))
    );
    // The working tree is clean, so a walk finds nothing.
    let walk = scan(dir, &[]);
    assert_eq!(walk.status.code(), Some(0));
    // Cleaning the worktree copy without staging still blocks; staging the fix passes.
    std::fs::write(dir.join("db.yaml"), CLEAN).unwrap();
    assert_eq!(scan(dir, &["--staged"]).status.code(), Some(1));
    git(dir, &["add", "db.yaml"]);
    let fixed = scan(dir, &["--staged"]);
    assert_eq!(fixed.status.code(), Some(0), "{}", text(&fixed.stdout));
}

#[test]
fn staged_ignores_unstaged_changes_and_committed_files() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::write(dir.join("old.yaml"), SECRET).unwrap();
    commit_all(dir, "an old secret, already in history");
    std::fs::write(dir.join("new.yaml"), CLEAN).unwrap();
    git(dir, &["add", "new.yaml"]);
    std::fs::write(dir.join("new.yaml"), SECRET).unwrap(); // not staged
    let out = scan(dir, &["--staged", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(findings(&out).is_empty());
    // Naming a path scans its staged version, changed or not.
    let named = scan(
        dir,
        &["--staged", "--format", "json", "old.yaml", "new.yaml"],
    );
    let f = findings(&named);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["path"], "old.yaml");
}

#[test]
fn staged_file_list_limits_the_scan() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("apps/a")).unwrap();
    std::fs::write(dir.join("apps/a/one.yaml"), SECRET).unwrap();
    std::fs::write(dir.join("two.yaml"), SECRET).unwrap();
    std::fs::write(dir.join("README.md"), "docs\n").unwrap();
    git(dir, &["add", "-A"]);
    let out = scan(
        dir,
        &["--staged", "--format", "json", "two.yaml", "README.md"],
    );
    let f = findings(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["path"], "two.yaml");
    // From a subfolder, paths are taken from there and reported from the repository root.
    let sub = scan(&dir.join("apps"), &["--staged", "--format", "json", "a"]);
    let f = findings(&sub);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["path"], "apps/a/one.yaml");
}

#[test]
fn staged_env_file_change_under_an_unchanged_kustomization_blocks() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "secretGenerator:\n- name: app\n  envs:\n  - app.env\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("app.env"),
        "PASSWORD=<path:secret/data/app#password>\n",
    )
    .unwrap();
    commit_all(dir, "references only");
    std::fs::write(dir.join("app.env"), "PASSWORD=canary-env-edit\n").unwrap();
    git(dir, &["add", "app.env"]);
    let out = scan(dir, &["--staged", "--format", "json"]);
    assert_no_canary(dir, "env", &out);
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out);
    assert_eq!(
        (f[0]["path"].as_str(), f[0]["rule"].as_str()),
        (Some("app.env"), Some("generator-file"))
    );
}

#[test]
fn staged_outside_a_repository_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = kustodian(tmp.path())
        .env("GIT_CEILING_DIRECTORIES", tmp.path().parent().unwrap())
        .args(["scan", "--staged"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a git repository"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_path_is_an_error() {
    let tmp = new_repo();
    let out = scan(tmp.path(), &["no-such-dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no-such-dir: no such file or folder"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn paths_are_relative_to_the_repository_root() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("deploy/prod")).unwrap();
    std::fs::write(dir.join("deploy/prod/db.yaml"), SECRET).unwrap();
    for (cwd, arg) in [
        (dir.join("deploy/prod"), "."),
        (dir.join("deploy"), "prod/db.yaml"),
        (dir.to_path_buf(), "deploy"),
    ] {
        let out = scan(&cwd, &["--format", "json", arg]);
        assert_eq!(
            findings(&out)[0]["path"],
            "deploy/prod/db.yaml",
            "from {cwd:?} with {arg}"
        );
    }
}

#[test]
fn outside_a_repository_paths_are_relative_to_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("k8s")).unwrap();
    std::fs::write(tmp.path().join("k8s/db.yaml"), SECRET).unwrap();
    let out = kustodian(tmp.path())
        .env("GIT_CEILING_DIRECTORIES", tmp.path().parent().unwrap())
        .args(["scan", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(findings(&out)[0]["path"], "k8s/db.yaml");
}

#[test]
fn a_file_list_as_pre_commit_passes_it() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::write(dir.join("a.yaml"), SECRET).unwrap();
    std::fs::write(dir.join("b.yaml"), SECRET).unwrap();
    std::fs::write(dir.join("notes.md"), "kind: Secret\n").unwrap();
    let out = scan(dir, &["--format", "json", "a.yaml", "notes.md"]);
    let f = findings(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["path"], "a.yaml");
}

// A file over the size limit: tests/scan_failclosed.rs
// (a_large_file_that_may_hold_a_secret_blocks_and_any_other_is_a_note).
#[test]
fn hidden_folders_are_scanned_but_not_dot_git() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join(".deploy")).unwrap();
    std::fs::write(dir.join(".deploy/db.yaml"), SECRET).unwrap();
    std::fs::write(dir.join(".git/leftover.yaml"), SECRET).unwrap();
    let out = scan(dir, &["--format", "json"]);
    let f = findings(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["path"], ".deploy/db.yaml");
}

#[test]
fn fingerprints_survive_moved_lines_and_change_with_the_value() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::write(dir.join("db.yaml"), SECRET).unwrap();
    let before = findings(&scan(dir, &["--format", "json"]));
    std::fs::write(dir.join("db.yaml"), format!("# a comment\n\n{SECRET}")).unwrap();
    let moved = findings(&scan(dir, &["--format", "json"]));
    assert_eq!(before[0]["fingerprint"], moved[0]["fingerprint"]);
    assert_ne!(before[0]["line"], moved[0]["line"]);
    std::fs::write(
        dir.join("db.yaml"),
        SECRET.replace("staged-password", "other-password"),
    )
    .unwrap();
    let changed = findings(&scan(dir, &["--format", "json"]));
    assert_ne!(before[0]["fingerprint"], changed[0]["fingerprint"]);
}

/// docs/scan.md shows a blocked commit with its output: it must be the real output.
#[test]
fn docs_example_is_the_real_output() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scan.md"))
        .unwrap();
    let section = &doc[doc.find("## A blocked commit").unwrap()..];
    let block = |fence: &str| {
        let start = section.find(fence).unwrap() + fence.len();
        let end = start + section[start..].find("\n```").unwrap();
        section[start..end].to_string() + "\n"
    };
    let yaml = block("```yaml\n");
    let console = block("```console\n");
    let expected = console
        .split_once("$ kustodian scan --staged\n")
        .unwrap()
        .1
        .split_once("$ echo $?")
        .unwrap()
        .0;

    let tmp = new_repo();
    std::fs::create_dir_all(tmp.path().join("deploy")).unwrap();
    std::fs::write(tmp.path().join("deploy/db.yaml"), yaml).unwrap();
    git(tmp.path(), &["add", "-A"]);
    let out = scan(tmp.path(), &["--staged"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), expected);
}

/// `git commit -a` and `git commit PATH` run hooks against a temporary index
/// (`GIT_INDEX_FILE`): that is what the commit holds, so that is what `--staged` reads.
#[test]
fn pre_commit_hook_blocks_git_commit_all() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::write(dir.join("db.yaml"), CLEAN).unwrap();
    commit_all(dir, "clean");
    let hook = dir.join(".git/hooks/pre-commit");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nexec '{}' scan --staged\n",
            env!("CARGO_BIN_EXE_kustodian")
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(dir.join("db.yaml"), SECRET).unwrap();
    for args in [
        &["commit", "-q", "-am", "leak"][..],
        &["commit", "-q", "-m", "leak", "db.yaml"][..],
    ] {
        let out = git_cmd(dir).args(args).output().unwrap();
        assert!(!out.status.success(), "git {args:?} went through");
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            all.contains("db.yaml:6:3") && !all.contains("canary"),
            "{all}"
        );
    }
    std::fs::write(dir.join("db.yaml"), format!("{CLEAN}# reviewed\n")).unwrap();
    let out = git_cmd(dir)
        .args(["commit", "-q", "-am", "fine"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `--staged` from a subfolder, with git's `diff.relative` set, still sees the whole commit.
#[test]
fn staged_from_a_subfolder_sees_the_whole_commit() {
    let tmp = new_repo();
    let dir = tmp.path();
    git(dir, &["config", "diff.relative", "true"]);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("db.yaml"), SECRET).unwrap();
    git(dir, &["add", "-A"]);
    let out = scan(&dir.join("sub"), &["--staged", "--format", "json"]);
    assert_no_canary(dir, "staged", &out);
    let f = findings(&out);
    assert_eq!(f.len(), 1, "{}", text(&out.stderr));
    assert_eq!(f[0]["path"], "db.yaml");
}

/// pre-commit passes every changed file: an env file is judged through the kustomizations
/// around it that read it, and a file none reads is skipped.
#[test]
fn a_named_env_file_is_judged_through_its_kustomization() {
    let tmp = new_repo();
    let dir = tmp.path();
    common::write(
        dir,
        "apps/web/kustomization.yaml",
        "secretGenerator:\n- name: web\n  envs:\n  - web.env\n",
    );
    common::write(dir, "apps/web/web.env", "PASSWORD=canary-named-env\n");
    common::write(dir, "apps/web/other.env", "PASSWORD=canary-not-read\n");
    let out = scan(
        dir,
        &["--format", "json", "apps/web/web.env", "apps/web/other.env"],
    );
    assert_no_canary(dir, "named env", &out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0]["path"].as_str(), f[0]["rule"].as_str()),
        (Some("apps/web/web.env"), Some("generator-file"))
    );
}

/// Without a `git` to ask, `--staged` compares the index with `HEAD` through libgit2 and finds
/// the same files.
#[test]
fn staged_without_a_git_binary_uses_libgit2() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::write(dir.join("clean.yaml"), CLEAN).unwrap();
    commit_all(dir, "clean");
    std::fs::write(dir.join("db.yaml"), SECRET).unwrap();
    git(dir, &["add", "-A"]);
    let with_git = scan(dir, &["--staged", "--format", "json"]);
    let without = kustodian(dir)
        .env("PATH", "/nonexistent")
        .args(["scan", "--staged", "--format", "json"])
        .output()
        .unwrap();
    assert_no_canary(dir, "staged without git", &without);
    assert_eq!(text(&without.stdout), text(&with_git.stdout));
    assert_eq!(findings(&without).len(), 1);
}
