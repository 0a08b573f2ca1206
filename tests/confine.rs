//! Confinement and bounded reads, end to end: the repository root is fixed once from the working
//! directory (no `dir` moves it), manifests are confined like store files (symlinks followed,
//! inside the root, regular files only), and every read is bounded.
//!
//! Each test lays out a temporary folder with a git repository `repo/` and a folder `outside/`
//! beside it, from the files under tests/fixtures/confine/, and plants canaries outside the
//! repository and in the environment: none may reach any output.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{assert_no_canary, init_repo, text, write};

/// Values that must never be printed.
const CANARIES: &[&str] = &[
    "canary-outside-sops-password",
    "canary-outside-manifest",
    "canary-vault-token-in-environ",
    "canary-age-key-in-environ",
];
/// Long enough for a debug build on a busy machine, far shorter than reading /dev/zero.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The render fixtures' test key and its recipient.
const RECIPIENT: &str = "age1e8h5ntgq60yrh6rqrx6ukr472and89xedd8s64layhjcl4pevyhqeye4j3";

fn fixtures() -> PathBuf {
    common::repo_root().join("tests/fixtures/confine")
}

fn keys() -> PathBuf {
    common::repo_root().join("tests/fixtures/render/store/keys.txt")
}

/// `tmp/repo` (a git repository with `app/`) and `tmp/outside` (a SOPS store and a manifest).
fn layout() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("app")).unwrap();
    init_repo(&repo);
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    for f in ["secret.yaml", "cm.yaml"] {
        std::fs::copy(fixtures().join("outside").join(f), outside.join(f)).unwrap();
    }
    let out = kustodian(&outside)
        .args(["encrypt", "--age", RECIPIENT, "secret.yaml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(outside.join("secret.enc.yaml"), &out.stdout).unwrap();
    std::fs::remove_file(outside.join("secret.yaml")).unwrap();
    tmp
}

/// The built kustodian in `dir`, with the test key and a planted token in its environment.
fn kustodian(dir: &Path) -> assert_cmd::Command {
    let mut c = common::kustodian(dir);
    c.env("SOPS_AGE_KEY_FILE", keys())
        .env("XDG_CONFIG_HOME", dir.join("no-such-config"))
        .env("VAULT_TOKEN", "canary-vault-token-in-environ")
        .env("KUSTODIAN_CANARY", "canary-age-key-in-environ")
        .env_remove("SOPS_AGE_KEY")
        .env_remove("KUSTODIAN_STORE")
        .env_remove("AVP_TYPE")
        .timeout(TIMEOUT);
    c
}

fn fixture(case: &str, file: &str) -> String {
    std::fs::read_to_string(fixtures().join(case).join(file)).unwrap()
}

/// A ResourceList holding `items` with `config` as its functionConfig.
fn resource_list(config: &str, items: &[&str]) -> String {
    let indent = |doc: &str, first: &str| -> String {
        doc.lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("{first}{l}\n")
                } else {
                    format!("{}{l}\n", " ".repeat(first.len()))
                }
            })
            .collect()
    };
    let mut s = String::from("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n");
    for i in items {
        s.push_str(&indent(i, "- "));
    }
    s.push_str("functionConfig:\n");
    s.push_str(&indent(config, "  "));
    s
}

/// `kustodian krm` in `repo/app` with `config` as functionConfig over `items`.
fn krm(tmp: &Path, config: &str, items: &[&str]) -> std::process::Output {
    kustodian(&tmp.join("repo/app"))
        .arg("krm")
        .write_stdin(resource_list(config, items))
        .output()
        .unwrap()
}

#[test]
fn krm_resolver_dir_cannot_move_the_root_out_of_the_repository() {
    let tmp = layout();
    let case = "dir-cannot-leave-the-repository";
    let out = krm(
        tmp.path(),
        &fixture(case, "resolver.yaml"),
        &[&fixture(case, "configmap.yaml")],
    );
    assert_refused(
        "krm Resolver, dir: ../../outside",
        &out,
        &["leaves the repository"],
    );
}

#[test]
fn krm_secret_generator_dir_cannot_move_the_root_out_of_the_repository() {
    let tmp = layout();
    let config = fixture("dir-cannot-leave-the-repository", "generator.yaml");
    let out = krm(tmp.path(), &config, &[]);
    assert_refused(
        "krm SecretGenerator, dir: ../../outside",
        &out,
        &["leaves the repository"],
    );
}

#[test]
fn legacy_plugin_dir_cannot_move_the_root_out_of_the_repository() {
    let tmp = layout();
    let app = tmp.path().join("repo/app");
    let config = fixture("dir-cannot-leave-the-repository", "generator.yaml");
    write(&app, "generator.yaml", &config);
    let out = kustodian(&app).arg("generator.yaml").output().unwrap();
    assert_refused(
        "legacy SecretGenerator, dir: ../../outside",
        &out,
        &["leaves the repository"],
    );
    assert!(out.stdout.is_empty());
}

#[cfg(unix)]
#[test]
fn render_refuses_a_manifest_symlinked_to_proc_environ() {
    let tmp = layout();
    let repo = tmp.path().join("repo");
    std::os::unix::fs::symlink("/proc/self/environ", repo.join("app/env.yaml")).unwrap();
    let out = render(&repo, &["app"], Vec::new());
    assert_refused(
        "a symlink to /proc/self/environ",
        &out,
        &["env.yaml", "outside the repository"],
    );
    assert!(out.stdout.is_empty());
}

#[cfg(unix)]
#[test]
fn render_refuses_a_manifest_symlinked_outside_the_repository() {
    let tmp = layout();
    let repo = tmp.path().join("repo");
    let target = tmp.path().join("outside/cm.yaml");
    std::os::unix::fs::symlink(target, repo.join("app/cm.yaml")).unwrap();
    for arg in ["app", "app/cm.yaml"] {
        let out = render(&repo, &[arg], Vec::new());
        assert_refused(arg, &out, &["outside the repository"]);
        assert!(out.stdout.is_empty());
    }
}

#[cfg(unix)]
#[test]
fn render_follows_a_symlink_to_a_file_inside_the_repository() {
    let tmp = layout();
    let repo = tmp.path().join("repo");
    write(
        &repo,
        "common/cm.yaml",
        &fixture("manifest-symlinks", "cm.yaml"),
    );
    std::os::unix::fs::symlink("../common/cm.yaml", repo.join("app/cm.yaml")).unwrap();
    let out = render(&repo, &["app"], Vec::new());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("inside the repository"));
}

#[cfg(unix)]
#[test]
fn render_refuses_a_fifo_manifest_without_blocking() {
    let tmp = layout();
    let repo = tmp.path().join("repo");
    let fifo = repo.join("app/pipe.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = render(&repo, &["app"], Vec::new());
    assert_refused("a FIFO manifest", &out, &["pipe.yaml", "a FIFO"]);
}

/// A sparse file of NULs one byte over `limit`: instant to make, whatever its size.
fn sparse(path: &Path, limit: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path)
        .unwrap()
        .set_len(limit + 1)
        .unwrap();
}

const MIB: u64 = 1024 * 1024;

/// Checks that a run failed, leaked no canary and said every one of `needles` (on stderr, or in
/// the results of a KRM function's stdout).
fn assert_refused(what: &str, out: &std::process::Output, needles: &[&str]) {
    assert_no_canary(what, out, CANARIES);
    assert!(!out.status.success(), "{what}: succeeded");
    let all = common::output_text(out);
    for n in needles {
        assert!(all.contains(n), "{what}: does not say {n:?}:\n{all}");
    }
}

/// `kustodian render ARGS` in `dir`, with `stdin`.
fn render(dir: &Path, args: &[&str], stdin: Vec<u8>) -> std::process::Output {
    kustodian(dir)
        .arg("render")
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap()
}

#[test]
fn render_refuses_a_manifest_over_32_mib() {
    let tmp = layout();
    let repo = tmp.path().join("repo");
    sparse(&repo.join("app/huge.yaml"), 32 * MIB);
    let out = render(&repo, &["app"], Vec::new());
    assert_refused("a 32 MiB manifest", &out, &["huge.yaml", "32 MiB limit"]);
}

#[test]
fn render_refuses_a_sops_store_over_32_mib() {
    let tmp = layout();
    let repo = tmp.path().join("repo");
    sparse(&repo.join("app/huge.enc.yaml"), 32 * MIB);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: <path:huge.enc.yaml#x>\n";
    write(&repo, "app/cm.yaml", cm);
    let out = render(&repo, &["app"], Vec::new());
    assert_refused("a 32 MiB store", &out, &["huge.enc.yaml", "32 MiB limit"]);
}

#[test]
fn render_and_krm_stdin_are_bounded() {
    let tmp = layout();
    let repo = tmp.path().join("repo");
    let big = vec![b'#'; (32 * MIB + 1) as usize];
    let out = render(&repo, &["-"], big.clone());
    assert_refused("render -", &out, &["<stdin>", "32 MiB limit"]);
    let out = kustodian(&repo)
        .arg("krm")
        .write_stdin(big)
        .output()
        .unwrap();
    assert_refused("krm", &out, &["<stdin>", "32 MiB limit"]);
}

#[cfg(unix)]
#[test]
fn age_key_file_is_bounded() {
    let tmp = layout();
    let repo = tmp.path().join("repo");
    let store = tmp.path().join("outside/secret.enc.yaml");
    std::fs::copy(store, repo.join("app/secret.enc.yaml")).unwrap();
    let cm = fixture("dir-cannot-leave-the-repository", "configmap.yaml");
    write(&repo, "app/cm.yaml", &cm);
    sparse(&repo.join("big-keys.txt"), MIB);
    for (key_file, says) in [
        (PathBuf::from("/dev/zero"), "not a regular file"),
        (repo.join("big-keys.txt"), "1 MiB limit"),
    ] {
        let out = kustodian(&repo)
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .args(["render", "app"])
            .output()
            .unwrap();
        assert_refused(&key_file.display().to_string(), &out, &[says]);
    }
}

#[cfg(unix)]
#[test]
fn legacy_plugin_config_is_bounded() {
    let tmp = layout();
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(common::bin(), bin_dir.join("Resolver")).unwrap();
    let out = assert_cmd::Command::new(bin_dir.join("Resolver"))
        .arg("/dev/zero")
        .current_dir(tmp.path().join("repo"))
        .env_remove("KUSTOMIZE_PLUGIN_CONFIG_STRING")
        .timeout(TIMEOUT)
        .output()
        .unwrap();
    assert_refused("Resolver /dev/zero", &out, &["not a regular file"]);
}

#[cfg(unix)]
#[test]
fn render_refuses_a_kustomization_or_chart_with_a_symlink_out_of_the_repository() {
    let tmp = layout();
    let repo = tmp.path().join("repo");
    let outside = tmp.path().join("outside/cm.yaml");
    write(&repo, "kz/kustomization.yaml", "resources:\n  - cm.yaml\n");
    write(
        &repo,
        "chart/Chart.yaml",
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    );
    std::os::unix::fs::symlink(&outside, repo.join("kz/cm.yaml")).unwrap();
    std::fs::create_dir_all(repo.join("chart/templates")).unwrap();
    std::os::unix::fs::symlink(&outside, repo.join("chart/templates/cm.yaml")).unwrap();
    for (dir, file) in [("kz", "cm.yaml"), ("chart", "templates/cm.yaml")] {
        let out = render(&repo, &[dir], Vec::new());
        assert_refused(dir, &out, &[file, "outside the repository"]);
        assert!(out.stdout.is_empty());
    }
}
