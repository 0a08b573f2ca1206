//! The scanner must not fail open: ways of writing a plaintext secret that slipped past
//! `kustodian scan` (inline kustomize patches, builtin generator configs, `ref+echo://`, literal
//! text around references and templates, plaintext lines in SOPS dotenv stores, PEM bodies under
//! public labels, force-added ignored files) are blocked.
//!
//! Each folder under tests/fixtures/scan/ named in [`evasions!`] is copied into a fresh git
//! repository and scanned as a walk and, staged, with `--staged`; both must print
//! `expected.json` (refresh with `KUSTODIAN_BLESS=1`). Every output format (human, json, sarif,
//! github) must exit 1 when it lists findings and must hold no canary: the fixtures' secrets
//! contain `canary` (or `Y2FuYXJ5`, its base64), and `canaries.txt` lists other forms.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{commit_all, findings, git, kustodian, new_repo, text, write, CANARIES};

fn case_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scan")
        .join(name)
}

fn canaries(case: &Path) -> Vec<String> {
    let extra = std::fs::read_to_string(case.join("canaries.txt")).unwrap_or_default();
    CANARIES
        .iter()
        .map(|c| c.to_string())
        .chain(extra.lines().filter(|l| !l.is_empty()).map(str::to_string))
        .collect()
}

fn scan(dir: &Path, args: &[&str]) -> Output {
    kustodian(dir).arg("scan").args(args).output().unwrap()
}

fn assert_clean_output(what: &str, out: &Output, canaries: &[String]) {
    let refs: Vec<&str> = canaries.iter().map(String::as_str).collect();
    common::assert_no_canary(what, out, &refs);
}

/// Runs one fixture: walk and staged JSON against `expected.json`, then every format.
fn run_evasion(name: &str) {
    let case = case_dir(name);
    let canaries = canaries(&case);
    let tmp = common::repo_with(&case.join("repo"));
    let dir = tmp.path();
    let golden = case.join("expected.json");
    let walk = scan(dir, &["--format", "json"]);
    assert_clean_output(name, &walk, &canaries);
    if std::env::var_os("KUSTODIAN_BLESS").is_some() {
        std::fs::write(&golden, &walk.stdout).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|_| panic!("{name}: no expected.json; run with KUSTODIAN_BLESS=1"));
    let blocks = !findings(&walk).is_empty();
    git(dir, &["add", "-A"]);
    let staged = scan(dir, &["--staged", "--format", "json"]);
    for (mode, out) in [("walk", &walk), ("--staged", &staged)] {
        assert_eq!(
            text(&out.stdout),
            want,
            "{name}: {mode} differs from expected.json; stderr:\n{}",
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(blocks as i32), "{name}: {mode}");
    }
    for format in ["human", "sarif", "github"] {
        let out = scan(dir, &["--format", format]);
        assert_clean_output(&format!("{name} {format}"), &out, &canaries);
        assert_eq!(out.status.code(), Some(blocks as i32), "{name}: {format}");
    }
}

macro_rules! evasions {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            run_evasion(&stringify!($name).replace('_', "-"));
        }
    )*};
}

evasions!(
    kustomize_patches_add_secret_data,
    builtin_secret_generator,
    sops_dotenv_plaintext_line,
    echo_references_are_literal,
    literal_text_around_references,
    literal_text_around_templates,
    pem_labels_checked,
    other_reference_forms_are_safe,
);

#[test]
fn since_outside_a_repository_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [&["--since", "HEAD~1"][..], &["--range", "HEAD~2..HEAD"][..]] {
        let out = kustodian(tmp.path())
            .env("GIT_CEILING_DIRECTORIES", tmp.path().parent().unwrap())
            .arg("scan")
            .args(args)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("`--since` (or `--range`) needs a git repository")
                && stderr.contains("not a git repository"),
            "{stderr}"
        );
        assert!(!stderr.contains("--staged"), "{stderr}");
    }
}

/// The kustomize fixtures are real: `kubectl kustomize` puts their plaintext into its output.
#[test]
fn kustomize_outputs_what_the_fixtures_hide() {
    for (case, dir, canaries) in [
        ("kustomize-patches-add-secret-data", "app", 7),
        ("builtin-secret-generator", "", 3),
    ] {
        let out = Command::new("kubectl")
            .args(["kustomize", "."])
            .current_dir(case_dir(case).join("repo").join(dir))
            .output()
            .expect("kubectl runs");
        assert!(out.status.success(), "{case}: {}", text(&out.stderr));
        let rendered = text(&out.stdout);
        let found = rendered.matches("canary").count() + rendered.matches("Y2FuYXJ5").count();
        assert_eq!(found, canaries, "{case}:\n{rendered}");
    }
}

const PLAINTEXT: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: canary-force-added\n";

/// Inside a repository the walk scans what git tracks, even when `.gitignore` matches it, plus
/// the untracked files `.gitignore` does not match.
#[test]
fn tracked_files_are_scanned_even_when_gitignored() {
    let tmp = new_repo();
    let dir = tmp.path();
    write(dir, ".gitignore", "secrets/\n*.local.yaml\n");
    write(dir, "secrets/db.yaml", PLAINTEXT);
    write(dir, "apps/dev.local.yaml", PLAINTEXT);
    write(dir, "apps/kept.local.yaml", PLAINTEXT);
    commit_all(dir, "ignore rules");
    git(
        dir,
        &["add", "-f", "secrets/db.yaml", "apps/kept.local.yaml"],
    );
    commit_all(dir, "force-added");
    for (cwd, args) in [
        (dir.to_path_buf(), &["--format", "json"][..]),
        (dir.to_path_buf(), &["--format", "json", "."][..]),
        (dir.join("apps"), &["--format", "json"][..]),
    ] {
        let out = scan(&cwd, args);
        assert_clean_output("force-added", &out, &canaries(Path::new("/nonexistent")));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let mut paths: Vec<String> = findings(&out)
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect();
        paths.dedup();
        let want: &[&str] = if cwd == dir {
            &["apps/kept.local.yaml", "secrets/db.yaml"]
        } else {
            &["apps/kept.local.yaml"]
        };
        assert_eq!(paths, want, "from {cwd:?} {args:?}");
    }
    // Outside a repository `.gitignore` still decides, as before.
    std::fs::remove_dir_all(dir.join(".git")).unwrap();
    let out = kustodian(dir)
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap())
        .args(["scan", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// A changed patch file is judged through the unchanged kustomization that applies it.
#[test]
fn staged_patch_file_under_an_unchanged_kustomization_blocks() {
    let tmp = new_repo();
    let dir = tmp.path();
    write(
        dir,
        "app/kustomization.yaml",
        "resources: [secret.yaml]\npatches:\n- target: {kind: Secret, name: db}\n  path: ops.yaml\n",
    );
    write(
        dir,
        "app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData: {}\n",
    );
    write(
        dir,
        "app/ops.yaml",
        "- op: add\n  path: /stringData/user\n  value: <path:secret/data/db#user>\n",
    );
    commit_all(dir, "references only");
    write(
        dir,
        "app/ops.yaml",
        "- op: add\n  path: /stringData/password\n  value: canary-staged-patch\n",
    );
    git(dir, &["add", "app/ops.yaml"]);
    for args in [&["--staged"][..], &["app/ops.yaml"][..]] {
        let out = scan(dir, &[args, &["--format", "json"]].concat());
        assert_clean_output("staged patch", &out, &canaries(Path::new("/nonexistent")));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let f = findings(&out);
        assert_eq!(
            (
                f[0]["path"].as_str(),
                f[0]["line"].as_u64(),
                f[0]["key"].as_str()
            ),
            (Some("app/ops.yaml"), Some(3), Some("password"))
        );
    }
}
