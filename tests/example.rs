//! The example GitOps repository (examples/) rendered through every path kustodian offers, each
//! compared with the one golden output, tests/golden/example-prod.yaml:
//!
//! - the CLI, exactly as the README's first command runs it (byte for byte; refresh the golden
//!   file with `KUSTODIAN_BLESS=1`);
//! - the legacy kustomize exec plugin (`kubectl kustomize --enable-alpha-plugins` with a
//!   Resolver transformer, kustodian installed by `install-kustomize-plugin`);
//! - the KRM function through `kpt fn eval --exec` and `kpt fn render --allow-exec`;
//! - the Argo CD CMP contract is in tests/cmp.rs (`example_application_renders_the_golden_output`).
//!
//! The other paths are compared as manifests (same objects and fields, tool annotations aside),
//! since each tool writes YAML its own way.

#[path = "fixtures/example/support.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

const OVERLAY: &str = "examples/apps/guestbook/overlays/prod";
const DEADLINE: Duration = Duration::from_secs(60);

fn golden() -> String {
    std::fs::read_to_string(golden_path()).expect("tests/golden/example-prod.yaml is missing; run `KUSTODIAN_BLESS=1 cargo test --test example`")
}

#[test]
fn readme_first_command_renders_the_golden_output() {
    require("kubectl");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let first = readme
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .expect("the README has no command");
    assert!(
        first.contains("SOPS_AGE_KEY_FILE=examples/demo-age-key.txt")
            && first.contains(&format!("render {OVERLAY}")),
        "the README's first command is no longer the example render: {first}"
    );
    let mut cmd = Command::new(bin());
    clean_env(&mut cmd)
        .current_dir(root())
        .env("SOPS_AGE_KEY_FILE", "examples/demo-age-key.txt")
        .args(["render", OVERLAY]);
    let out = run_ok(&mut cmd, DEADLINE);
    check_golden(&golden_path(), &out);
}

#[test]
fn golden_output_is_the_whole_app() {
    let kinds = kinds(&golden());
    assert_eq!(kinds.get("Secret"), Some(&1), "{kinds:?}");
    assert_eq!(kinds.get("ConfigMap"), Some(&1), "{kinds:?}");
    assert_eq!(kinds.get("Deployment"), Some(&1), "{kinds:?}");
    assert!(
        !golden().contains("<path:") && !golden().contains("ref+"),
        "the golden output still holds references"
    );
}

#[test]
fn legacy_exec_plugin_renders_the_golden_output() {
    require("kubectl");
    let repo = example_repo();
    let overlay = repo.path().join(OVERLAY);
    // The overlay as a user would change it: a Resolver transformer in the kustomization.
    std::fs::copy(
        root().join("tests/fixtures/example/resolver.yaml"),
        overlay.join("resolver.yaml"),
    )
    .unwrap();
    let mut k = std::fs::read_to_string(overlay.join("kustomization.yaml")).unwrap();
    k.push_str("transformers:\n  - resolver.yaml\n");
    std::fs::write(overlay.join("kustomization.yaml"), k).unwrap();

    let xdg = tempfile::tempdir().unwrap();
    let mut install = Command::new(bin());
    clean_env(&mut install)
        .env("XDG_CONFIG_HOME", xdg.path())
        .arg("install-kustomize-plugin");
    run_ok(&mut install, DEADLINE);

    let mut build = Command::new("kubectl");
    clean_env(&mut build)
        .env("XDG_CONFIG_HOME", xdg.path())
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .args(["kustomize", "--enable-alpha-plugins"])
        .arg(&overlay);
    let out = run_ok(&mut build, DEADLINE);
    assert_same_manifests("legacy exec plugin", &out, &golden());
}

/// Builds the overlay with kustomize into `<repo>/hydrated/prod/all.yaml` (references still in).
fn hydrate(repo: &Path) -> std::path::PathBuf {
    let mut build = Command::new("kubectl");
    clean_env(&mut build)
        .args(["kustomize"])
        .arg(repo.join(OVERLAY));
    let out = run_ok(&mut build, DEADLINE);
    let pkg = repo.join("hydrated/prod");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("all.yaml"), out).unwrap();
    pkg
}

#[test]
fn krm_function_via_kpt_fn_eval_renders_the_golden_output() {
    require("kubectl");
    require("kpt");
    let repo = example_repo();
    hydrate(repo.path());
    let bins = bin_dir();
    let mut kpt = Command::new("kpt");
    clean_env(&mut kpt)
        .current_dir(repo.path())
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .args(["fn", "eval", "--exec"])
        .arg(bins.path().join("kustodian-krm"))
        .args([
            "hydrated/prod",
            "-o",
            "stdout",
            "--",
            &format!("dir={OVERLAY}"),
        ]);
    let out = run_ok(&mut kpt, DEADLINE);
    assert_same_manifests("kpt fn eval", &out, &golden());
}

#[test]
fn krm_function_via_kpt_fn_render_renders_the_golden_output() {
    require("kubectl");
    require("kpt");
    let repo = example_repo();
    let pkg = hydrate(repo.path());
    // A kpt package that carries its store, hidden from kpt by .krmignore; relative store paths
    // start at the package.
    std::fs::copy(
        repo.path().join(OVERLAY).join("secrets.enc.yaml"),
        pkg.join("secrets.enc.yaml"),
    )
    .unwrap();
    std::fs::write(pkg.join(".krmignore"), "secrets.enc.yaml\n").unwrap();
    let bins = bin_dir();
    let kptfile = std::fs::read_to_string(root().join("tests/fixtures/example/Kptfile.in"))
        .unwrap()
        .replace(
            "@KUSTODIAN_KRM@",
            &bins.path().join("kustodian-krm").display().to_string(),
        );
    std::fs::write(pkg.join("Kptfile"), kptfile).unwrap();
    let before = std::fs::read_to_string(pkg.join("all.yaml")).unwrap();

    let mut kpt = Command::new("kpt");
    clean_env(&mut kpt)
        .current_dir(repo.path())
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .args([
            "fn",
            "render",
            "--allow-exec",
            "hydrated/prod",
            "-o",
            "stdout",
        ]);
    let out = run_ok(&mut kpt, DEADLINE);
    assert_same_manifests("kpt fn render", &out, &golden());
    assert_eq!(
        std::fs::read_to_string(pkg.join("all.yaml")).unwrap(),
        before,
        "-o stdout must leave the package files alone"
    );
}
