//! kustodian inside kustomize and kpt, driven through the real tools: one fixture folder per
//! behaviour under tests/fixtures/krm/, against the SOPS/age store in tests/fixtures/krm/store/
//! (written by the real sops; tests/fixtures/krm/keys.txt is a test-only key).
//!
//! - Legacy exec plugin: `kubectl kustomize --enable-alpha-plugins` with XDG_CONFIG_HOME at a
//!   temporary folder where `kustodian install-kustomize-plugin` linked the built binary.
//!   Golden output in `expected.yaml` (refresh with `KUSTODIAN_BLESS=1`), or the lines of
//!   `expected-error.txt` on stderr with nothing on stdout.
//! - KRM function: `kpt fn eval --exec` and `kpt fn render --allow-exec` with the wrapper
//!   `kustodian-krm` (`exec kustodian krm "$@"`), and the ResourceList shapes kustomize sends.

mod common;
#[path = "fixtures/example/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kustodian_manifest::{Node, Object};
use support::*;

/// Every secret value in the test store: none may reach stderr or an error result.
const SECRETS: &[&str] = &[
    "krm-canary-db-password",
    "krm-canary-api-token",
    "krm-canary-log-token",
    "krm-canary-config-secret",
    "krm-canary-ksops-password",
    "binary-canary-bytes",
];
const DEADLINE: Duration = Duration::from_secs(60);

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/krm")
}

fn keys() -> PathBuf {
    fixtures().join("keys.txt")
}

/// A plugin home with kustodian installed by its own verb.
fn installed() -> tempfile::TempDir {
    let xdg = tempfile::tempdir().unwrap();
    let mut c = Command::new(bin());
    clean_env(&mut c)
        .env("XDG_CONFIG_HOME", xdg.path())
        .arg("install-kustomize-plugin");
    run_ok(&mut c, DEADLINE);
    xdg
}

fn kustomize(case: &Path, xdg: &Path) -> Output {
    require("kubectl");
    let mut c = Command::new("kubectl");
    clean_env(&mut c)
        .env("XDG_CONFIG_HOME", xdg)
        .env("SOPS_AGE_KEY_FILE", keys())
        .args(["kustomize", "--enable-alpha-plugins"])
        .arg(case);
    run_with_deadline(&mut c, None, DEADLINE)
}

/// Builds a fixture with the legacy plugin and checks its golden output or expected error.
fn legacy_case(name: &str) {
    let case = fixtures().join(name);
    let xdg = installed();
    let out = kustomize(&case, xdg.path());
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_no_secret("stderr", &stderr, SECRETS);
    if common::expected_failure(&case, &out) {
        let ours = stderr.lines().filter(|l| l.contains("kustodian")).count();
        assert!(
            ours <= 24,
            "{name}: the report does not fit on a screen:\n{stderr}"
        );
        return;
    }
    assert!(out.status.success(), "{name}: kustomize failed:\n{stderr}");
    check_golden(&case.join("expected.yaml"), &stdout);
}

#[test]
fn legacy_resolver_resolves_every_resource() {
    legacy_case("legacy-resolver-resolves-every-resource");
}

#[test]
fn legacy_secret_generator_hash_suffix_and_references() {
    legacy_case("legacy-secret-generator-hash-suffix-and-references");
}

#[test]
fn legacy_secret_generator_behavior_merge() {
    legacy_case("legacy-secret-generator-behavior-merge");
}

#[test]
fn ksops_generator_config_unchanged() {
    legacy_case("ksops-generator-config-unchanged");
}

#[test]
fn error_legacy_missing_key() {
    legacy_case("error-legacy-missing-key");
}

#[test]
fn error_secret_generator_undecryptable_file() {
    legacy_case("error-secret-generator-undecryptable-file");
}

#[test]
fn legacy_transformer_keeps_kustomize_ids() {
    // What kustomize writes to a transformer's stdin: every resource with its id annotation.
    let input = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: app\n  annotations:\n    internal.config.kubernetes.io/previousNames: c\n    kustomize.config.k8s.io/id: |\n      kind: ConfigMap\n      name: c\n      namespace: app\n      version: v1\ndata:\n  HOST: <path:../store/app.enc.yaml#database.host>\n";
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "apiVersion: kustodian.io/v1\nkind: Resolver\nmetadata:\n  name: r\n",
    )
    .unwrap();
    let mut c = Command::new(bin());
    clean_env(&mut c)
        .current_dir(fixtures().join("legacy-resolver-resolves-every-resource"))
        .env("SOPS_AGE_KEY_FILE", keys())
        .arg(config.path());
    let out = run_with_deadline(&mut c, Some(input.as_bytes()), DEADLINE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = kustodian_manifest::parse_stream(&String::from_utf8(out.stdout).unwrap())
        .unwrap()
        .remove(0)
        .root;
    let o = Object::new(&doc);
    assert_eq!(
        o.annotation("kustomize.config.k8s.io/id"),
        Some("kind: ConfigMap\nname: c\nnamespace: app\nversion: v1\n")
    );
    assert_eq!(
        o.annotation("internal.config.kubernetes.io/previousNames"),
        Some("c")
    );
    assert_eq!(
        doc.get_path(&["data", "HOST"]).and_then(Node::as_scalar),
        Some("db.internal")
    );
}

#[test]
fn legacy_plugin_reads_kustomize_plugin_config_string() {
    // When the config file kustomize names cannot be read, the same text is in the environment.
    let xdg = installed();
    let plugin = xdg
        .path()
        .join("kustomize/plugin/kustodian.io/v1/secretgenerator/SecretGenerator");
    let mut c = Command::new(&plugin);
    clean_env(&mut c)
        .current_dir(fixtures())
        .env("KUSTOMIZE_PLUGIN_CONFIG_STRING", "apiVersion: kustodian.io/v1\nkind: SecretGenerator\nmetadata: {name: s}\nstringData: {A: ref+echo://a}\n")
        .arg("/nonexistent/kust-plugin-config");
    let out = run_ok(&mut c, DEADLINE);
    assert!(out.contains("A: a"), "{out}");
}

#[test]
fn install_kustomize_plugin_honours_kustomize_plugin_home() {
    let home = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut c = Command::new(bin());
        clean_env(&mut c)
            .env("KUSTOMIZE_PLUGIN_HOME", home.path())
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .arg("install-kustomize-plugin")
            .args(extra);
        run_with_deadline(&mut c, None, DEADLINE)
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    for rel in [
        "kustodian.io/v1/resolver/Resolver",
        "kustodian.io/v1/secretgenerator/SecretGenerator",
        "viaduct.ai/v1/ksops/ksops",
    ] {
        let p = home.path().join(rel);
        assert!(p.exists(), "{rel} was not installed:\n{said}");
        assert!(
            said.contains(&p.display().to_string()),
            "the output does not say where {rel} went:\n{said}"
        );
    }
    let again = run(&[]);
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .matches("up to date")
            .count()
            == 3,
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    // A real KSOPS binary there is left alone unless --force.
    let ksops = home.path().join("viaduct.ai/v1/ksops/ksops");
    std::fs::remove_file(&ksops).unwrap();
    std::fs::write(&ksops, "#!/bin/sh\necho another program\n").unwrap();
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("skipped"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(&ksops).unwrap(),
        "#!/bin/sh\necho another program\n"
    );
    let out = run(&["--force", "--copy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&ksops).unwrap(),
        std::fs::read(bin()).unwrap()
    );
}

fn kpt(args: &[&str], cwd: &Path, bins: &Path) -> Output {
    require("kpt");
    let mut c = Command::new("kpt");
    clean_env(&mut c)
        .current_dir(cwd)
        .env("SOPS_AGE_KEY_FILE", keys())
        .env("PATH", path_with(bins))
        .args(args);
    run_with_deadline(&mut c, None, DEADLINE)
}

#[test]
fn krm_eval_configmap_settings() {
    let case = fixtures().join("krm-eval-configmap-settings");
    let bins = bin_dir();
    let krm = bins.path().join("kustodian-krm").display().to_string();
    let out = kpt(
        &[
            "fn",
            "eval",
            "--exec",
            &krm,
            "input",
            "-o",
            "stdout",
            "--",
            "dir=../store",
            "KUSTODIAN_STORE=sops",
        ],
        &case,
        bins.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_no_secret("stderr", &stderr, SECRETS);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let items = normalize(&stdout);
    assert_eq!(items.len(), 2);
    check_golden(&case.join("expected.yaml"), &emit_normalized(&stdout));
}

#[test]
fn krm_render_kptfile_pipeline() {
    let bins = bin_dir();
    let work = tempfile::tempdir().unwrap();
    let pkg = work.path().join("pkg");
    copy_dir(&fixtures().join("krm-render-kptfile-pipeline/pkg"), &pkg);
    let kptfile = std::fs::read_to_string(pkg.join("Kptfile.in"))
        .unwrap()
        .replace(
            "@KUSTODIAN_KRM@",
            &bins.path().join("kustodian-krm").display().to_string(),
        );
    std::fs::remove_file(pkg.join("Kptfile.in")).unwrap();
    std::fs::write(pkg.join("Kptfile"), kptfile).unwrap();
    let out = kpt(
        &["fn", "render", "--allow-exec", "pkg", "-o", "stdout"],
        work.path(),
        bins.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The generator's own config is a tool document: its references are left as written, so
    // an in-place render would not write a secret into it.
    assert!(
        stdout.contains("TOKEN: <path:store.enc.yaml#api_token>"),
        "{stdout}"
    );
    check_golden(
        &fixtures().join("krm-render-kptfile-pipeline/expected.yaml"),
        &emit_normalized(&stdout),
    );
}

#[test]
fn krm_eval_error_results() {
    let case = fixtures().join("krm-eval-error-results");
    let bins = bin_dir();
    let krm = bins.path().join("kustodian-krm").display().to_string();
    let out = kpt(
        &["fn", "eval", "--exec", &krm, "input", "-o", "stdout"],
        &case,
        bins.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "expected a failure:\n{stdout}");
    assert_no_secret("stdout", &stdout, SECRETS);
    assert_no_secret("stderr", &stderr, SECRETS);
    for line in std::fs::read_to_string(case.join("expected-error.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
    {
        assert!(stderr.contains(line), "stderr lacks {line:?}:\n{stderr}");
    }
}

/// Runs `kustodian krm` (or the binary under another name) on a ResourceList.
fn krm_direct(exe: &Path, args: &[&str], case: &Path, input: &str) -> Output {
    let mut c = Command::new(exe);
    clean_env(&mut c)
        .current_dir(case)
        .env("SOPS_AGE_KEY_FILE", keys())
        .args(args);
    run_with_deadline(&mut c, Some(input.as_bytes()), DEADLINE)
}

#[test]
fn krm_generator_config_is_the_only_item() {
    let case = fixtures().join("krm-generator-config-is-the-only-item");
    let input = std::fs::read_to_string(case.join("input.yaml")).unwrap();
    let out = krm_direct(&bin(), &["krm"], &case, &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let list = kustodian_manifest::parse_stream(&stdout)
        .unwrap()
        .remove(0)
        .root;
    let items = list.get("items").and_then(Node::as_seq).unwrap();
    assert_eq!(
        items.len(),
        1,
        "the config must not come back as a resource:\n{stdout}"
    );
    check_golden(&case.join("expected.yaml"), &stdout);
}

#[test]
fn krm_errors_are_results_with_nonzero_exit() {
    let case = fixtures().join("krm-generator-config-is-the-only-item");
    let input = std::fs::read_to_string(case.join("input.yaml"))
        .unwrap()
        .replace("#db_password>", "#no_such_key>");
    let out = krm_direct(&bin(), &["krm"], &case, &input);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_no_secret("stdout", &stdout, SECRETS);
    assert_no_secret("stderr", &String::from_utf8_lossy(&out.stderr), SECRETS);
    let list = kustodian_manifest::parse_stream(&stdout)
        .unwrap()
        .remove(0)
        .root;
    let results = list
        .get("results")
        .and_then(Node::as_seq)
        .expect("no results");
    assert!(
        results.iter().any(
            |r| r.get("severity").and_then(Node::as_scalar) == Some("error")
                && r.get("message")
                    .and_then(Node::as_scalar)
                    .is_some_and(|m| m.contains("no_such_key"))
        ),
        "{stdout}"
    );
    // The items come back unchanged.
    assert!(
        stdout.contains("<path:../store/app.enc.yaml#no_such_key>"),
        "{stdout}"
    );
}

#[test]
fn krm_warnings_are_results() {
    let case = fixtures().join("krm-generator-config-is-the-only-item");
    let input = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nfunctionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: function-input}\n  data: {colour: blue}\n";
    let out = krm_direct(&bin(), &["krm"], &case, input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("severity: warning") && stdout.contains("colour"),
        "{stdout}"
    );
}

#[test]
fn ksops_krm_function() {
    // kpt runs the KSOPS README's KRM config with kustodian under the name `ksops`.
    let case = fixtures().join("ksops-krm-function");
    let bins = bin_dir();
    let ksops = bins.path().join("ksops").display().to_string();
    let out = kpt(
        &[
            "fn",
            "eval",
            "--exec",
            &ksops,
            "--fn-config",
            "secret-generator.yaml",
            "input",
            "-o",
            "stdout",
        ],
        &case,
        bins.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let kinds = kinds(&stdout);
    assert_eq!(kinds.get("Secret"), Some(&2), "{stdout}");
    assert_eq!(kinds.get("ConfigMap"), Some(&1), "{stdout}");
    check_golden(&case.join("expected.yaml"), &emit_normalized(&stdout));
}

/// The normalized manifests as YAML, for golden files of tool output that carries temporary paths.
fn emit_normalized(text: &str) -> String {
    let nodes: Vec<Node> = normalize(text).iter().map(Node::from_json).collect();
    kustodian_manifest::emit_stream(nodes.iter())
}
