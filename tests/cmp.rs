//! The Argo CD config-management plugin contract, without Argo CD: the tests read
//! plugin/argocd/*.yaml and run each ConfigManagementPlugin's `discover.find`, `init` and
//! `generate` commands the way argocd-cmp-server does (command and args executed directly,
//! the working directory the Application's path inside a copy of the repository, a clean
//! environment with ARGOCD_APP_*, ARGOCD_ENV_*, PARAM_* and ARGOCD_APP_PARAMETERS, the built
//! binary on PATH as `kustodian`, a deadline). stdout must be Kubernetes manifests only; a
//! failure must exit non-zero with a short error that carries no secret value.
//!
//! Apps are fixture folders under tests/fixtures/cmp/ (SOPS stores encrypted to the test key
//! tests/fixtures/krm/keys.txt), and the example Application in examples/argocd/.

#[path = "fixtures/example/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kustodian_manifest::{Node, Object};
use support::*;

const SECRETS: &[&str] = &[
    "cmp-canary-password",
    "cmp-canary-token",
    "cmp-canary-present-value",
    "prod-password-demo-only",
    "prod-token-demo-only",
];

fn test_key() -> PathBuf {
    root().join("tests/fixtures/krm/keys.txt")
}

/// A repository copy holding one fixture app at `apps/<name>`, and the app's input.
/// Runs `plugin` for `app` with `key` as the age key (`SOPS_AGE_KEY_FILE` in the sidecar's
/// environment, as repo-server-patch.yaml sets it; an Application's `ARGOCD_ENV_` twin is
/// ignored).
fn run_with_key(plugin: &Plugin, repo: &Path, app: &AppInput, bins: &Path, key: &Path) -> CmpRun {
    let key = key.display().to_string();
    run_cmp(
        plugin,
        repo,
        app,
        bins,
        &[("SOPS_AGE_KEY_FILE", key.as_str())],
    )
}

/// Runs the `kustodian` plugin on the fixture app `name` with `key` as the age key.
fn run_fixture(name: &str, key: &Path) -> CmpRun {
    let (repo, app) = fixture_repo(name);
    let bins = bin_dir();
    run_with_key(&plugin("kustodian"), repo.path(), &app, bins.path(), key)
}

fn fixture_repo(name: &str) -> (tempfile::TempDir, AppInput) {
    let repo = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("tests/fixtures/cmp").join(name),
        &repo.path().join("apps").join(name),
    );
    let app = AppInput {
        name: name.to_string(),
        namespace: "team-a".into(),
        source_path: format!("apps/{name}"),
        ..AppInput::default()
    };
    (repo, app)
}

#[test]
fn plugin_configs_are_complete() {
    let plugins = plugins();
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for want in ["kustodian", "kustodian-kustomize", "kustodian-helm"] {
        assert!(names.contains(&want), "no plugin {want}: {names:?}");
    }
    for p in &plugins {
        let generate = p
            .spec
            .get("generate")
            .unwrap_or_else(|| panic!("{}: no generate", p.name));
        assert!(
            argv(generate).join(" ").contains("kustodian render ."),
            "{}: generate does not run kustodian render",
            p.name
        );
        assert!(
            !argv(p.spec.get_path(&["discover", "find"]).unwrap()).is_empty(),
            "{}: no discovery command",
            p.name
        );
        let params: Vec<&str> = p
            .spec
            .get_path(&["parameters", "static"])
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|x| x.get("name").and_then(Node::as_scalar))
            .collect();
        assert!(params.contains(&"store"), "{}: no store parameter", p.name);
    }
}

#[test]
fn example_application_renders_the_golden_output() {
    require("kubectl");
    let repo = example_repo();
    let (app, plugin_name) = application(&root().join("examples/argocd/guestbook-prod.yaml"));
    let plugin_name = plugin_name.expect("the example Application names its plugin");
    let bins = bin_dir();
    assert_eq!(
        discovered(repo.path(), &app, bins.path()),
        vec![plugin_name.clone()],
        "discovery must pick exactly the plugin the Application names"
    );
    let r = run_with_key(
        &plugin(&plugin_name),
        repo.path(),
        &app,
        bins.path(),
        &demo_key(),
    );
    assert!(r.output.status.success(), "{}", r.stderr());
    let stdout = r.stdout();
    assert_only_manifests(&stdout);
    let golden = std::fs::read_to_string(golden_path()).unwrap();
    assert_same_manifests("Argo CD CMP", &stdout, &golden);
}

#[test]
fn plain_directory_app_renders() {
    let (repo, app) = fixture_repo("plain-app");
    let bins = bin_dir();
    assert_eq!(
        discovered(repo.path(), &app, bins.path()),
        vec!["kustodian".to_string()]
    );
    let r = run_with_key(
        &plugin("kustodian"),
        repo.path(),
        &app,
        bins.path(),
        &test_key(),
    );
    assert!(r.output.status.success(), "{}", r.stderr());
    let stdout = r.stdout();
    assert_eq!(
        assert_only_manifests(&stdout),
        2,
        "the SOPS store must not be output:\n{stdout}"
    );
    assert!(stdout.contains("PASSWORD: cmp-canary-password"), "{stdout}");
    assert!(!stdout.contains("sops:"), "{stdout}");
}

#[test]
fn failure_is_short_nonzero_and_leaks_nothing() {
    let r = run_fixture("failing-app", &test_key());
    let (stdout, stderr) = (r.stdout(), r.stderr());
    assert!(!r.output.status.success(), "expected a failure:\n{stdout}");
    assert!(
        stdout.is_empty(),
        "a failed render printed manifests:\n{stdout}"
    );
    assert_no_secret("stderr", &stderr, SECRETS);
    assert!(
        stderr.contains("<path:secrets.enc.yaml#absent>"),
        "the error must name the reference:\n{stderr}"
    );
    let lines = stderr.lines().count();
    assert!(
        (1..=25).contains(&lines),
        "the error for the Argo CD UI should fit on a screen ({lines} lines):\n{stderr}"
    );
}

#[test]
fn wrong_key_fails_without_leaking() {
    let r = run_fixture("plain-app", &demo_key());
    assert!(!r.output.status.success());
    assert!(r.stdout().is_empty());
    assert_no_secret("stderr", &r.stderr(), SECRETS);
    assert!(
        !r.stderr().contains("AGE-SECRET-KEY"),
        "the error prints a private key:\n{}",
        r.stderr()
    );
}

#[test]
fn store_parameter_reaches_kustodian() {
    let (repo, mut app) = fixture_repo("plain-app");
    app.parameters
        .push(("store".into(), vec!["no-such-store".into()], false));
    let bins = bin_dir();
    let r = run_cmp(&plugin("kustodian"), repo.path(), &app, bins.path(), &[]);
    assert!(!r.output.status.success());
    assert!(r.stderr().contains("no-such-store"), "{}", r.stderr());
}

#[test]
fn discovery_matches_one_variant_per_app() {
    let bins = bin_dir();
    for (name, want) in [
        ("helm-chart", vec!["kustodian-helm"]),
        ("no-references", vec![]),
        ("failing-app", vec!["kustodian"]),
    ] {
        let (repo, app) = fixture_repo(name);
        let got = discovered(repo.path(), &app, bins.path());
        assert_eq!(
            got,
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{name}"
        );
    }
}

#[test]
fn application_cannot_enable_kustomize_plugins() {
    require("kubectl");
    let (repo, app) = fixture_repo("kustomize-flags-from-application");
    let bins = bin_dir();
    // kustodian is installed as a plugin in the sidecar's home, so that the build would
    // succeed if an Application could add --enable-alpha-plugins.
    let xdg = tempfile::tempdir().unwrap();
    let mut install = Command::new(bin());
    clean_env(&mut install)
        .env("XDG_CONFIG_HOME", xdg.path())
        .arg("install-kustomize-plugin");
    assert!(
        run_with_deadline(&mut install, None, Duration::from_secs(30))
            .status
            .success()
    );
    let xdg_s = xdg.path().display().to_string();
    let p = plugin("kustodian-kustomize");

    // kustodian itself ignores the ARGOCD_ENV_ twin of KUSTODIAN_KUSTOMIZE_ARGS: an
    // Application cannot switch plugins on even without the plugin config's guard.
    let mut direct = Command::new(bin());
    clean_env(&mut direct)
        .current_dir(repo.path().join(&app.source_path))
        .env("XDG_CONFIG_HOME", xdg.path())
        .env(
            "ARGOCD_ENV_KUSTODIAN_KUSTOMIZE_ARGS",
            "--enable-alpha-plugins",
        )
        .args(["render", "."]);
    assert!(
        !run_with_deadline(&mut direct, None, Duration::from_secs(60))
            .status
            .success(),
        "ARGOCD_ENV_KUSTODIAN_KUSTOMIZE_ARGS must not enable kustomize plugins"
    );

    // Through the plugin, neither the Application's env nor its parameters may enable them.
    let refused = |app: &AppInput, how: &str, says: &str| {
        let r = run_cmp(
            &p,
            repo.path(),
            app,
            bins.path(),
            &[("XDG_CONFIG_HOME", xdg_s.as_str())],
        );
        assert!(
            !r.output.status.success(),
            "{how} enabled plugins:\n{}",
            r.stdout()
        );
        assert!(r.stderr().contains(says), "{how}: {}", r.stderr());
        assert!(r.stdout().is_empty(), "{how}");
    };
    let mut via_env = app.clone();
    via_env.env.push((
        "KUSTODIAN_KUSTOMIZE_ARGS".into(),
        "--enable-alpha-plugins".into(),
    ));
    refused(
        &via_env,
        "ARGOCD_ENV_KUSTODIAN_KUSTOMIZE_ARGS",
        "plugins disabled",
    );
    let mut via_param = app.clone();
    via_param.parameters.push((
        "kustomize-build-options".into(),
        vec!["--enable-alpha-plugins".into()],
        false,
    ));
    refused(
        &via_param,
        "the kustomize-build-options parameter",
        "may not enable plugins",
    );
}

#[test]
fn helm_values_files_must_stay_in_the_chart() {
    let (repo, mut app) = fixture_repo("helm-chart");
    app.parameters.push((
        "values-files".into(),
        vec!["values.yaml".into(), "../../../etc/passwd".into()],
        true,
    ));
    let bins = bin_dir();
    let r = run_cmp_command(
        plugin("kustodian-helm").spec.get("generate").unwrap(),
        repo.path(),
        &app,
        bins.path(),
        &[],
    );
    assert!(!r.output.status.success());
    assert!(r.stderr().contains("refused"), "{}", r.stderr());
    assert!(r.stdout().is_empty());
}

#[test]
fn helm_chart_renders_when_helm_is_installed() {
    // helm cannot be installed on the test machines (no registry ships it); without it the
    // helm variant must fail closed with an error that says what to install, never skip.
    let (repo, app) = fixture_repo("helm-chart");
    std::fs::copy(
        root().join("tests/fixtures/cmp/plain-app/secrets.enc.yaml"),
        repo.path().join("apps/helm-chart/secrets.enc.yaml"),
    )
    .unwrap();
    let bins = bin_dir();
    let r = run_with_key(
        &plugin("kustodian-helm"),
        repo.path(),
        &app,
        bins.path(),
        &test_key(),
    );
    if !on_path("helm") {
        assert!(!r.output.status.success(), "rendered a chart without helm");
        assert!(r.stdout().is_empty(), "{}", r.stdout());
        assert!(r.stderr().contains("helm"), "{}", r.stderr());
        assert!(!r.stderr().contains("cmp-canary-password"));
        return;
    }
    assert!(r.output.status.success(), "{}", r.stderr());
    assert_only_manifests(&r.stdout());
    assert!(r.stdout().contains("cmp-canary-password"));
}

fn kustomize_build(dir: &Path) -> String {
    let mut c = Command::new("kubectl");
    clean_env(&mut c).args(["kustomize"]).arg(dir);
    let out = run_with_deadline(&mut c, None, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sidecar_component_patches_the_repo_server() {
    require("kubectl");
    let work = tempfile::tempdir().unwrap();
    // A stand-in for Argo CD's repo-server Deployment, with the volumes Argo CD defines.
    std::fs::write(
        work.path().join("repo-server.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: argocd-repo-server\nspec:\n  template:\n    spec:\n      containers:\n        - name: argocd-repo-server\n          image: quay.io/argoproj/argocd:v2.13.0\n      volumes:\n        - name: var-files\n          emptyDir: {}\n        - name: plugins\n          emptyDir: {}\n",
    )
    .unwrap();
    // kustomize takes components by relative path only.
    let depth = work.path().canonicalize().unwrap().components().count() - 1;
    let rel = format!(
        "{}{}",
        "../".repeat(depth),
        root()
            .join("plugin/argocd")
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
            .trim_start_matches('/')
    );
    std::fs::write(
        work.path().join("kustomization.yaml"),
        format!("namespace: argocd\nresources:\n  - repo-server.yaml\ncomponents:\n  - {rel}\n"),
    )
    .unwrap();
    let out = kustomize_build(work.path());
    let docs: Vec<Node> = kustodian_manifest::parse_stream(&out)
        .unwrap()
        .into_iter()
        .map(|d| d.root)
        .collect();
    let cm = docs
        .iter()
        .find(|d| Object::new(d).kind() == Some("ConfigMap"))
        .expect("no plugin ConfigMap");
    let cm_name = Object::new(cm).name().unwrap();
    let keys: Vec<&str> = cm
        .get("data")
        .and_then(Node::as_map)
        .unwrap()
        .iter()
        .filter_map(|e| e.key.as_scalar())
        .collect();
    let deploy = docs
        .iter()
        .find(|d| Object::new(d).kind() == Some("Deployment"))
        .unwrap();
    let pod = deploy.get_path(&["spec", "template", "spec"]).unwrap();
    let containers = pod.get("containers").and_then(Node::as_seq).unwrap();
    let sidecars: Vec<&Node> = containers
        .iter()
        .filter(|c| {
            c.get("name")
                .and_then(Node::as_scalar)
                .is_some_and(|n| n.starts_with("kustodian"))
        })
        .collect();
    assert_eq!(sidecars.len(), 3, "{out}");
    for c in sidecars {
        let name = c.get("name").and_then(Node::as_scalar).unwrap();
        assert_eq!(
            c.get_path(&["command"]).and_then(Node::as_seq).unwrap()[0].as_scalar(),
            Some("/var/run/argocd/argocd-cmp-server"),
            "{name}"
        );
        assert_eq!(
            c.get_path(&["securityContext", "runAsUser"])
                .and_then(Node::as_scalar),
            Some("999"),
            "{name}"
        );
        let mounts = c.get("volumeMounts").and_then(Node::as_seq).unwrap();
        let mount = |path: &str| {
            mounts
                .iter()
                .find(|m| m.get("mountPath").and_then(Node::as_scalar) == Some(path))
        };
        let cfg = mount("/home/argocd/cmp-server/config/plugin.yaml")
            .unwrap_or_else(|| panic!("{name}: no plugin config mount"));
        let sub = cfg.get("subPath").and_then(Node::as_scalar).unwrap();
        assert!(
            keys.contains(&sub),
            "{name}: {sub} is not a key of the ConfigMap {keys:?}"
        );
        for p in [
            "/var/run/argocd",
            "/home/argocd/cmp-server/plugins",
            "/tmp",
            "/home/argocd/kustodian/age",
        ] {
            assert!(mount(p).is_some(), "{name}: nothing mounted at {p}");
        }
        let env = c.get("env").and_then(Node::as_seq).unwrap();
        assert!(
            env.iter()
                .any(|e| e.get("name").and_then(Node::as_scalar) == Some("SOPS_AGE_KEY_FILE")),
            "{name}: no SOPS_AGE_KEY_FILE"
        );
    }
    let volumes = pod.get("volumes").and_then(Node::as_seq).unwrap();
    let config_volume = volumes
        .iter()
        .find(|v| v.get("name").and_then(Node::as_scalar) == Some("kustodian-cmp-plugins"))
        .unwrap();
    assert_eq!(
        config_volume
            .get_path(&["configMap", "name"])
            .and_then(Node::as_scalar),
        Some(cm_name),
        "the volume must follow the hashed ConfigMap name"
    );
    assert!(volumes.iter().any(|v| v
        .get_path(&["secret", "secretName"])
        .and_then(Node::as_scalar)
        == Some("kustodian-age-key")));
}
