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

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

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

/// `git`, unaffected by a repository the tests themselves may run in (from a hook).
fn git_cmd() -> std::process::Command {
    let mut cmd = std::process::Command::new("git");
    for v in [
        "GIT_DIR",
        "GIT_INDEX_FILE",
        "GIT_WORK_TREE",
        "GIT_OBJECT_DIRECTORY",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

fn git(dir: &Path, args: &[&str]) {
    let out = git_cmd()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh git repository with a committer configured.
fn new_repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    git(tmp.path(), &["-c", "init.defaultBranch=main", "init", "-q"]);
    git(tmp.path(), &["config", "user.name", "kustodian tests"]);
    git(
        tmp.path(),
        &["config", "user.email", "tests@kustodian.invalid"],
    );
    git(tmp.path(), &["config", "commit.gpgsign", "false"]);
    git(tmp.path(), &["config", "core.autocrlf", "false"]);
    tmp
}

fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--no-verify", "-m", message]);
}

fn kustodian(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kustodian").unwrap();
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE");
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Fails if stdout or stderr holds any canary of the fixture (or the generic ones).
fn assert_no_canary(case: &Path, what: &str, out: &Output) {
    let mut canaries = vec!["canary".to_string(), "Y2FuYXJ5".to_string()];
    if let Ok(extra) = std::fs::read_to_string(case.join("canaries.txt")) {
        canaries.extend(extra.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let s = text(bytes).to_lowercase();
        for c in &canaries {
            assert!(
                !s.contains(&c.to_lowercase()),
                "{what}: {stream} leaks {c:?}:\n{}",
                text(bytes)
            );
        }
    }
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

    // A directory walk of the working tree.
    let walk = kustodian(dir)
        .args(["scan", "--format", "json"])
        .output()
        .unwrap();
    assert_no_canary(&case, name, &walk);
    if std::env::var_os("KUSTODIAN_BLESS").is_some() {
        std::fs::write(&golden, &walk.stdout).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|_| panic!("{name}: no expected.json; run with KUSTODIAN_BLESS=1"));
    assert_eq!(
        text(&walk.stdout),
        want,
        "{name}: walk output differs from expected.json; stderr:\n{}",
        text(&walk.stderr)
    );
    let code = expected_code(&want);
    assert_eq!(
        walk.status.code(),
        Some(code),
        "{name}: walk exit code; stderr:\n{}",
        text(&walk.stderr)
    );
    for line in required_stderr.lines().filter(|l| !l.is_empty()) {
        assert!(
            text(&walk.stderr).contains(line),
            "{name}: stderr lacks {line:?}:\n{}",
            text(&walk.stderr)
        );
    }

    // The human report: same exit code, every finding's place, no canary.
    let human = kustodian(dir).arg("scan").output().unwrap();
    assert_no_canary(&case, name, &human);
    assert_eq!(human.status.code(), Some(code), "{name}: human exit code");
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

    // The same files, staged: the index must give the same findings.
    git(dir, &["add", "-A"]);
    let staged = kustodian(dir)
        .args(["scan", "--staged", "--format", "json"])
        .output()
        .unwrap();
    assert_no_canary(&case, name, &staged);
    assert_eq!(
        text(&staged.stdout),
        want,
        "{name}: --staged output differs from expected.json; stderr:\n{}",
        text(&staged.stderr)
    );
    assert_eq!(
        staged.status.code(),
        Some(code),
        "{name}: --staged exit code"
    );
    for line in required_stderr.lines().filter(|l| !l.is_empty()) {
        assert!(
            text(&staged.stderr).contains(line),
            "{name}: --staged stderr lacks {line:?}:\n{}",
            text(&staged.stderr)
        );
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            run_case(&stringify!($name).replace('_', "-"));
        }
    )*};
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

fn findings(out: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON:\n{}", text(&out.stdout)));
    v["findings"].as_array().unwrap().clone()
}

#[test]
fn human_output_of_a_blocked_commit() {
    let case = fixtures().join("yaml-secret-data");
    let tmp = new_repo();
    copy_tree(&case.join("repo"), tmp.path());
    git(tmp.path(), &["add", "-A"]);
    let out = kustodian(tmp.path())
        .args(["scan", "--staged"])
        .output()
        .unwrap();
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
    let out = kustodian(dir)
        .args(["scan", "--staged", "--format", "json"])
        .output()
        .unwrap();
    assert_no_canary(dir, "staged", &out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    assert_eq!(
        (f[0]["path"].as_str(), f[0]["line"].as_u64()),
        (Some("db.yaml"), Some(6))
    );
    // The working tree is clean, so a walk finds nothing.
    let walk = kustodian(dir).args(["scan"]).output().unwrap();
    assert_eq!(walk.status.code(), Some(0));
    // Cleaning the worktree copy without staging still blocks; staging the fix passes.
    std::fs::write(dir.join("db.yaml"), CLEAN).unwrap();
    assert_eq!(
        kustodian(dir)
            .args(["scan", "--staged"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(1)
    );
    git(dir, &["add", "db.yaml"]);
    let fixed = kustodian(dir).args(["scan", "--staged"]).output().unwrap();
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
    let out = kustodian(dir)
        .args(["scan", "--staged", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(findings(&out).is_empty());
    // Naming a path scans its staged version, changed or not.
    let named = kustodian(dir)
        .args([
            "scan", "--staged", "--format", "json", "old.yaml", "new.yaml",
        ])
        .output()
        .unwrap();
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
    let out = kustodian(dir)
        .args([
            "scan",
            "--staged",
            "--format",
            "json",
            "two.yaml",
            "README.md",
        ])
        .output()
        .unwrap();
    let f = findings(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["path"], "two.yaml");
    // From a subfolder, paths are taken from there and reported from the repository root.
    let sub = kustodian(&dir.join("apps"))
        .args(["scan", "--staged", "--format", "json", "a"])
        .output()
        .unwrap();
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
    let out = kustodian(dir)
        .args(["scan", "--staged", "--format", "json"])
        .output()
        .unwrap();
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
    let out = kustodian(tmp.path())
        .args(["scan", "no-such-dir"])
        .output()
        .unwrap();
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
        let out = kustodian(&cwd)
            .args(["scan", "--format", "json", arg])
            .output()
            .unwrap();
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
    let out = kustodian(dir)
        .args(["scan", "--format", "json", "a.yaml", "notes.md"])
        .output()
        .unwrap();
    let f = findings(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["path"], "a.yaml");
}

#[test]
fn large_file_is_skipped_with_a_note() {
    let tmp = new_repo();
    let dir = tmp.path();
    let mut big = String::from(
        "apiVersion: v1\nkind: Secret\nstringData:\n  password: canary-in-a-large-file\n",
    );
    while big.len() <= 9 * 1024 * 1024 {
        big.push_str("# padding padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(dir.join("big.yaml"), &big).unwrap();
    std::fs::write(dir.join("small.yaml"), SECRET).unwrap();
    let out = kustodian(dir)
        .args(["scan", "--format", "json"])
        .output()
        .unwrap();
    assert_no_canary(dir, "large", &out);
    assert!(
        text(&out.stderr).contains("big.yaml: skipped: larger than 8 MiB"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(findings(&out).len(), 1);
    git(dir, &["add", "-A"]);
    let staged = kustodian(dir)
        .args(["scan", "--staged", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        text(&staged.stderr).contains("big.yaml: skipped: larger than 8 MiB"),
        "{}",
        text(&staged.stderr)
    );
    assert_eq!(findings(&staged).len(), 1);
}

#[test]
fn hidden_folders_are_scanned_but_not_dot_git() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join(".deploy")).unwrap();
    std::fs::write(dir.join(".deploy/db.yaml"), SECRET).unwrap();
    std::fs::write(dir.join(".git/leftover.yaml"), SECRET).unwrap();
    let out = kustodian(dir)
        .args(["scan", "--format", "json"])
        .output()
        .unwrap();
    let f = findings(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["path"], ".deploy/db.yaml");
}

#[test]
fn fingerprints_survive_moved_lines_and_change_with_the_value() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::write(dir.join("db.yaml"), SECRET).unwrap();
    let before = findings(
        &kustodian(dir)
            .args(["scan", "--format", "json"])
            .output()
            .unwrap(),
    );
    std::fs::write(dir.join("db.yaml"), format!("# a comment\n\n{SECRET}")).unwrap();
    let moved = findings(
        &kustodian(dir)
            .args(["scan", "--format", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(before[0]["fingerprint"], moved[0]["fingerprint"]);
    assert_ne!(before[0]["line"], moved[0]["line"]);
    std::fs::write(
        dir.join("db.yaml"),
        SECRET.replace("staged-password", "other-password"),
    )
    .unwrap();
    let changed = findings(
        &kustodian(dir)
            .args(["scan", "--format", "json"])
            .output()
            .unwrap(),
    );
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
    let out = kustodian(tmp.path())
        .args(["scan", "--staged"])
        .output()
        .unwrap();
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
        let out = git_cmd().args(args).current_dir(dir).output().unwrap();
        assert!(!out.status.success(), "git {args:?} went through");
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            all.contains("db.yaml:6:3") && !all.contains("canary"),
            "{all}"
        );
    }
    std::fs::write(dir.join("db.yaml"), format!("{CLEAN}# reviewed\n")).unwrap();
    let out = git_cmd()
        .args(["commit", "-q", "-am", "fine"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}
