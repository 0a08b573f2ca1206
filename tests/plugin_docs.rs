//! The shipped plugin configs and their docs tell the truth: the kpt pipeline in
//! plugin/kustomize/Kptfile never writes resolved secrets into the package (real kpt), the Argo
//! CD sidecars have a writable token cache, and nothing names a store, tag, image or placeholder
//! that does not exist.

#[path = "fixtures/example/support.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kustodian_manifest::Node;
use support::*;

/// A package made of the shipped Kptfile (its `exec` pointed at the built function) and
/// the files of tests/fixtures/plugin-docs/kpt-package.
fn shipped_kpt_package(dir: &Path, krm: &Path) {
    copy_dir(&root().join("tests/fixtures/plugin-docs/kpt-package"), dir);
    let kptfile = std::fs::read_to_string(root().join("plugin/kustomize/Kptfile")).unwrap();
    assert!(kptfile.contains("exec: kustodian-krm"), "{kptfile}");
    let kptfile = kptfile.replace("exec: kustodian-krm", &format!("exec: {}", krm.display()));
    std::fs::write(dir.join("Kptfile"), kptfile).unwrap();
}

/// Every file of a folder, by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn kpt_render_in_place_is_refused_and_stdout_works() {
    require("kpt");
    let bins = bin_dir();
    let work = tempfile::tempdir().unwrap();
    let pkg = work.path().join("pkg");
    shipped_kpt_package(&pkg, &bins.path().join("kustodian-krm"));
    let before = snapshot(&pkg);
    let kpt = |args: &[&str], extra: &[(&str, &str)]| {
        let mut c = Command::new("kpt");
        clean_env(&mut c)
            .current_dir(work.path())
            .env("HOME", work.path())
            .env("PATH", path_with(bins.path()))
            .envs(extra.iter().copied())
            .args(args);
        run_with_deadline(&mut c, None, Duration::from_secs(60))
    };

    // The command the Kptfile's comment documents.
    let out = kpt(
        &["fn", "render", "--allow-exec", "pkg", "-o", "stdout"],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("value: canary-kpt-resolved"), "{stdout}");
    assert_eq!(snapshot(&pkg), before, "-o stdout changed the package");

    // In place: refused, and the files stay as they were.
    for args in [
        &["fn", "render", "--allow-exec", "pkg"][..],
        &["fn", "eval", "--exec", "kustodian-krm", "pkg"][..],
    ] {
        let out = kpt(args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "kpt {args:?} wrote the package");
        assert!(
            stderr.contains("would write the resolved secrets back"),
            "{stderr}"
        );
        assert_eq!(snapshot(&pkg), before, "kpt {args:?} changed the package");
    }

    // The explicit opt-in of the person running kpt.
    let out = kpt(
        &["fn", "render", "--allow-exec", "pkg"],
        &[("KUSTODIAN_KPT_IN_PLACE", "true")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(pkg.join("configmap.yaml")).unwrap();
    assert!(written.contains("value: canary-kpt-resolved"), "{written}");
}

#[test]
fn sidecars_cache_tokens_on_a_writable_volume() {
    let text =
        std::fs::read_to_string(root().join("plugin/argocd/repo-server-patch.yaml")).unwrap();
    let doc = kustodian_manifest::parse_stream(&text)
        .unwrap()
        .remove(0)
        .root;
    let pod = doc.get_path(&["spec", "template", "spec"]).unwrap();
    let volumes = pod.get("volumes").and_then(Node::as_seq).unwrap();
    for c in pod.get("containers").and_then(Node::as_seq).unwrap() {
        let name = c.get("name").and_then(Node::as_scalar).unwrap();
        let dir = c
            .get("env")
            .and_then(Node::as_seq)
            .unwrap()
            .iter()
            .find(|e| e.get("name").and_then(Node::as_scalar) == Some("KUSTODIAN_CACHE_DIR"))
            .and_then(|e| e.get("value").and_then(Node::as_scalar))
            .unwrap_or_else(|| panic!("{name}: no KUSTODIAN_CACHE_DIR"));
        let mount = c
            .get("volumeMounts")
            .and_then(Node::as_seq)
            .unwrap()
            .iter()
            .find(|m| m.get("mountPath").and_then(Node::as_scalar) == Some(dir))
            .unwrap_or_else(|| panic!("{name}: nothing mounted at {dir}"));
        assert_ne!(
            mount.get("readOnly").and_then(Node::as_scalar),
            Some("true")
        );
        let vol = mount.get("name").and_then(Node::as_scalar).unwrap();
        let v = volumes
            .iter()
            .find(|v| v.get("name").and_then(Node::as_scalar) == Some(vol))
            .unwrap();
        assert!(
            v.get("emptyDir").is_some(),
            "{name}: {vol} is not an emptyDir"
        );
    }
}

#[test]
fn docs_and_plugin_configs_name_nothing_that_does_not_exist() {
    let mut files = vec![
        root().join("README.md"),
        root().join("docs/argocd.md"),
        root().join("docs/kustomize.md"),
        root().join("examples/argocd/guestbook-prod.yaml"),
    ];
    for dir in ["plugin/argocd", "plugin/kustomize"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            files.push(e.path());
        }
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for bad in ["OWNER/", "v0.1.0", "ghcr.io/kustodian"] {
            assert!(
                !text.contains(bad),
                "{} names {bad:?}, which does not exist",
                f.display()
            );
        }
    }
    // The store tooltips list only stores that exist.
    for p in plugins() {
        let params = p
            .spec
            .get_path(&["parameters", "static"])
            .and_then(Node::as_seq)
            .unwrap();
        let store = params
            .iter()
            .find(|x| x.get("name").and_then(Node::as_scalar) == Some("store"))
            .unwrap();
        let tooltip = store.get("tooltip").and_then(Node::as_scalar).unwrap();
        // Every store the tooltip offers is one kustodian has.
        for word in tooltip.split(|c: char| !c.is_ascii_alphanumeric()) {
            if [
                "aws",
                "vault",
                "sops",
                "env",
                "gcp",
                "azure",
                "onepassword",
                "k8s",
                "kubernetes",
            ]
            .contains(&word)
            {
                assert!(
                    [
                        "aws",
                        "vault",
                        "sops",
                        "env",
                        "gcp",
                        "azure",
                        "onepassword",
                        "k8s"
                    ]
                    .contains(&word),
                    "{}: the tooltip offers {word}, which is not a store: {tooltip}",
                    p.name
                );
            }
        }
    }
    let argocd = std::fs::read_to_string(root().join("docs/argocd.md")).unwrap();
    // The image the docs build is the one dist/build-image builds, from the Dockerfile that
    // pulls nothing.
    assert!(
        argocd.contains("dist/build-image"),
        "docs/argocd.md must build the image with dist/build-image"
    );
    let dockerfile = std::fs::read_to_string(root().join("plugin/argocd/Dockerfile")).unwrap();
    assert!(dockerfile.contains("FROM scratch"));
    assert!(argocd.contains("images:") && argocd.contains("newName:"));
}
