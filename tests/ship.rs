//! What kustodian ships, built here and run: the static release binary (dist/build-release),
//! `--version` with the commit, completions and man pages, the release archive
//! (dist/build-archive), the Argo CD sidecar image (dist/build-image, run with
//! `docker run --network none --read-only --user 999`), the wheel (dist/build-wheel) and the
//! pre-commit hooks through it and through the image with no cargo on PATH, and the GitHub
//! Action's shell steps.
//!
//! The release binary is built once per test run into target/dist (dist/build-release reuses
//! it when the sources have not changed); the image tests start a Docker daemon when none
//! answers (dist/docker-daemon) and fail, never skip, when that is impossible.

#[path = "support/bao.rs"]
mod bao;
mod common;
#[path = "fixtures/example/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use support::*;

/// The largest release binary we accept (the issue's target).
const MAX_BINARY_BYTES: u64 = 12 * 1024 * 1024;

/// The test tools in the repository's .venv (tests/setup-tools.sh), then PATH.
fn tool_path() -> std::ffi::OsString {
    path_with(&root().join(".venv/bin"))
}

/// A command for a tool, with .venv/bin on PATH; fails the test when the tool is missing.
fn tool(name: &str) -> Command {
    let path = tool_path();
    let found = std::env::split_paths(&path).any(|d| d.join(name).is_file());
    assert!(
        found,
        "{name} is not installed: run tests/setup-tools.sh (tests/run does)"
    );
    let mut c = Command::new(name);
    c.env("PATH", path);
    c
}

/// Runs a command that must succeed within `minutes`; returns its stdout.
fn ok(cmd: &mut Command, minutes: u64) -> String {
    run_ok(cmd, Duration::from_secs(minutes * 60))
}

/// Runs a command within `minutes`, whatever its exit status.
fn output(cmd: &mut Command, minutes: u64) -> Output {
    run_with_deadline(cmd, None, Duration::from_secs(minutes * 60))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A dist/ script as a command, run from the repository root with the test tools on PATH.
fn dist(script: &str) -> Command {
    let mut c = Command::new(root().join("dist").join(script));
    c.current_dir(root()).env("PATH", tool_path());
    c
}

/// A folder holding what dist/`script` builds into the folder it is given, built at most once
/// per test binary (`cell` keeps it).
fn built_once(cell: &'static OnceLock<PathBuf>, script: &str) -> &'static Path {
    cell.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        ok(dist(script).arg(&dir), 40);
        dir
    })
}

/// Checks that `out` exited with `code` and that its stderr says `says`.
#[track_caller]
fn exits_saying(out: &Output, code: i32, says: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(says),
        "{}",
        text(out)
    );
}

/// Checks that `bin` runs with an empty environment and is this version's kustodian.
#[track_caller]
fn assert_runs_this_version(bin: &Path) {
    let v = ok(Command::new(bin).arg("--version").env_clear(), 1);
    assert!(v.starts_with(&format!("kustodian {} (", version())), "{v}");
}

/// The password of the plaintext Secret in tests/fixtures/ship/plaintext-secret.
const PLAINTEXT_CANARY: &str = "ship-canary-plaintext-password";

/// The static release binary (dist/build-release), built at most once per test binary.
fn release_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = ok(&mut dist("build-release"), 40);
        PathBuf::from(out.trim())
    })
}

/// The crate version, as `kustodian --version` prints it.
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// HEAD of the repository the binary was built from, abbreviated like build.rs does.
fn head_commit() -> String {
    let out = ok(
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(root()),
        1,
    );
    out.trim().to_string()
}

#[test]
fn release_binary_is_static_stripped_and_small() {
    let bin = release_bin();
    let dynamic = ok(Command::new("readelf").args(["-d"]).arg(bin), 1);
    assert!(
        !dynamic.contains("NEEDED"),
        "the release binary must need no shared library (glibc, libgit2, zlib linked in):\n{dynamic}"
    );
    let sections = ok(Command::new("readelf").args(["-S", "-W"]).arg(bin), 1);
    for s in [".debug_info", ".symtab"] {
        assert!(
            !sections.contains(s),
            "the release binary still has {s}: it must be stripped"
        );
    }
    let size = std::fs::metadata(bin).unwrap().len();
    assert!(
        size <= MAX_BINARY_BYTES,
        "the release binary is {size} bytes, over the {MAX_BINARY_BYTES}-byte target"
    );
    // It runs with an empty environment; the image tests run it where there is no libc at all.
    assert_runs_this_version(bin);
}

#[test]
fn version_names_the_git_commit_it_was_built_from() {
    let want = format!("kustodian {} ({})\n", version(), head_commit());
    for b in [bin(), release_bin().to_path_buf()] {
        let out = ok(Command::new(&b).arg("--version"), 1);
        assert_eq!(out, want, "{}", b.display());
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = ok(Command::new(bin()).args(["completions", shell]), 1);
        for word in ["kustodian", "render", "scan", "install-hook"] {
            assert!(
                script.contains(word),
                "the {shell} completions do not mention {word}"
            );
        }
    }
    // bash: the script loads and completes the verbs.
    let bash = ok(
        Command::new("bash").arg("-c").arg(format!(
            r#"set -e
            source <('{bin}' completions bash)
            COMP_WORDS=(kustodian ren); COMP_CWORD=1; COMP_LINE="kustodian ren"; COMP_POINT=${{#COMP_LINE}}
            _kustodian kustodian ren kustodian
            printf '%s\n' "${{COMPREPLY[@]}}""#,
            bin = bin().display()
        )),
        1,
    );
    assert_eq!(bash.trim(), "render", "bash completion of `kustodian ren`");
    let bad = output(Command::new(bin()).args(["completions", "tcsh"]), 1);
    exits_saying(&bad, 2, "possible values");
}

#[test]
fn man_pages_are_generated_and_render() {
    let page = ok(Command::new(bin()).arg("man"), 1);
    assert!(page.contains(".TH kustodian 1"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    ok(
        Command::new(bin()).args(["man", "--dir"]).arg(dir.path()),
        1,
    );
    for verb in ["", "-scan", "-render", "-completions", "-man"] {
        assert!(
            dir.path().join(format!("kustodian{verb}.1")).is_file(),
            "no kustodian{verb}.1"
        );
    }
    // The real man(1) formats it.
    let shown = ok(
        Command::new("man")
            .arg("-l")
            .arg(dir.path().join("kustodian-render.1"))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat"),
        1,
    );
    assert!(shown.contains("kustodian-render"), "{shown}");
    let refused = output(
        Command::new(bin())
            .args(["man", "--dir"])
            .arg(root().join("Cargo.toml").join("sub")),
        1,
    );
    exits_saying(&refused, 2, "could not write the manual pages");
}

#[test]
fn release_archive_holds_binary_completions_man_and_licences_with_checksum() {
    let out = archive_dir();
    let name = format!("kustodian-{}-x86_64-linux", version());
    let archive = out.join(format!("{name}.tar.gz"));
    assert!(
        archive.is_file(),
        "dist/build-archive made no {}",
        archive.display()
    );
    // The checksum file verifies with sha256sum -c.
    ok(
        Command::new("sha256sum")
            .args(["-c", &format!("{name}.tar.gz.sha256")])
            .current_dir(out),
        1,
    );
    let listing = ok(Command::new("tar").arg("-tzf").arg(&archive), 1);
    for want in [
        "kustodian",
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "completions/kustodian.bash",
        "completions/_kustodian",
        "completions/kustodian.fish",
        "completions/_kustodian.ps1",
        "man/man1/kustodian.1",
        "man/man1/kustodian-scan.1",
    ] {
        assert!(
            listing.lines().any(|l| l == format!("{name}/{want}")),
            "the archive has no {want}:\n{listing}"
        );
    }
    // Unpacked, the binary is the release binary and runs.
    let unpacked = tempfile::tempdir().unwrap();
    ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(unpacked.path()),
        1,
    );
    let shipped = unpacked.path().join(&name).join("kustodian");
    assert_eq!(
        std::fs::read(&shipped).unwrap(),
        std::fs::read(release_bin()).unwrap()
    );
    assert_runs_this_version(&shipped);
    // Reproducible: a second build gives the same bytes.
    let again = tempfile::tempdir().unwrap();
    ok(dist("build-archive").arg(again.path()), 40);
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(again.path().join(format!("{name}.tar.gz"))).unwrap(),
        "the archive is not reproducible"
    );
}

// ---------------------------------------------------------------------------------------------
// The Argo CD sidecar image

/// The sidecar image, built once per test binary by dist/build-image with this machine's
/// kubectl as its only tool (kustodian falls back to `kubectl kustomize`; there is no helm here).
fn image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        ok(&mut dist("docker-daemon"), 2);
        let tools = tempfile::tempdir().unwrap();
        let kubectl = std::fs::canonicalize("/usr/bin/kubectl")
            .expect("kubectl is not installed; the image tests put it in the image");
        std::fs::copy(kubectl, tools.path().join("kubectl")).unwrap();
        let tag = "kustodian-cmp:ship-test".to_string();
        ok(dist("build-image").arg(&tag).arg(tools.path()), 40);
        tag
    })
}

/// Makes a test folder readable by the image's user (999): temporary folders are 0700.
fn open_to_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A plugin run in the image: the repository (mounted read-only), the Application, the
/// `docker run` network options, the operator's environment and read-only mounts
/// (`(host path, path inside)`).
struct InImage<'a> {
    repo: &'a Path,
    app: &'a AppInput,
    network: &'a [&'a str],
    operator_env: &'a [(&'a str, &'a str)],
    mounts: &'a [(&'a Path, &'a str)],
}

impl InImage<'_> {
    /// An offline run of the Application's plugin in `repo`, with nothing of the operator's.
    fn offline<'a>(repo: &'a Path, app: &'a AppInput) -> InImage<'a> {
        InImage {
            repo,
            app,
            network: &["--network", "none"],
            operator_env: &[],
            mounts: &[],
        }
    }

    /// `docker run` of a plugin command the way the sidecar runs it: uid 999, read-only root
    /// filesystem, its own /tmp, no capabilities, the repository mounted read-only, the
    /// working directory the Application's path, [`cmp_env`] plus the operator's environment.
    fn cmp(&self, cmd: &kustodian_manifest::Node) -> Output {
        let mut c = Command::new("docker");
        c.args([
            "run",
            "--rm",
            "--read-only",
            "--user",
            "999",
            "--tmpfs",
            "/tmp",
        ])
        .args(["--cap-drop", "ALL", "--security-opt", "no-new-privileges"])
        .args(self.network)
        .arg("-v")
        .arg(format!("{}:/repo:ro", self.repo.display()))
        .arg("-w")
        .arg(format!("/repo/{}", self.app.source_path));
        for (host, inside) in self.mounts {
            c.arg("-v").arg(format!("{}:{inside}:ro", host.display()));
        }
        let operator_env = self
            .operator_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()));
        for (k, v) in cmp_env(self.app).into_iter().chain(operator_env) {
            c.arg("-e").arg(format!("{k}={v}"));
        }
        c.arg(image()).args(argv(cmd));
        output(&mut c, 3)
    }

    /// Runs a plugin's `init` and then `generate`; returns generate's output.
    fn plugin(&self, p: &Plugin) -> Output {
        if let Some(init) = p.spec.get("init") {
            let out = self.cmp(init);
            assert!(
                out.status.success(),
                "{}: init failed in the image:\n{}",
                p.name,
                text(&out)
            );
            assert!(out.stdout.is_empty(), "{}: init wrote to stdout", p.name);
        }
        self.cmp(p.spec.get("generate").expect("a plugin without generate"))
    }
}

/// The example repository, readable by uid 999.
fn shared_example_repo() -> tempfile::TempDir {
    let repo = example_repo();
    open_to_all(repo.path());
    repo
}

#[test]
fn sidecar_image_renders_the_example_with_each_plugin_variant_offline() {
    let repo = shared_example_repo();
    let (app, plugin_name) = application(&root().join("examples/argocd/guestbook-prod.yaml"));
    let plugin_name = plugin_name.expect("the example Application names its plugin");
    let golden = std::fs::read_to_string(golden_path()).unwrap();
    let key_inside = "/home/argocd/kustodian/age/keys.txt";
    let key = demo_key();
    let plugins = plugins();
    assert_eq!(plugins.len(), 3, "one sidecar per plugin variant");
    // Discovery runs in the image too (busybox's find and grep): exactly the plugin the
    // example Application names matches its folder.
    let found: Vec<&str> = plugins
        .iter()
        .filter(|p| {
            let find = p.spec.get_path(&["discover", "find"]).unwrap();
            let out = InImage::offline(repo.path(), &app).cmp(find);
            out.status.success() && !out.stdout.is_empty()
        })
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(found, [plugin_name.as_str()], "discovery in the image");
    for p in &plugins {
        let out = InImage {
            operator_env: &[("SOPS_AGE_KEY_FILE", key_inside)],
            mounts: &[(key.as_path(), key_inside)],
            ..InImage::offline(repo.path(), &app)
        }
        .plugin(p);
        assert!(
            out.status.success(),
            "{}: generate failed in the image:\n{}",
            p.name,
            text(&out)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_only_manifests(&stdout);
        assert_same_manifests(&format!("the image's {}", p.name), &stdout, &golden);
        assert_no_secret(
            &format!("{}'s stderr", p.name),
            &String::from_utf8_lossy(&out.stderr),
            &["prod-password-demo-only", "prod-token-demo-only"],
        );
    }
}

#[test]
fn sidecar_image_fails_closed_without_the_key() {
    let repo = shared_example_repo();
    let (app, _) = application(&root().join("examples/argocd/guestbook-prod.yaml"));
    let out = InImage::offline(repo.path(), &app).plugin(&plugin("kustodian-kustomize"));
    assert!(
        !out.status.success(),
        "rendered without a key:\n{}",
        text(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "a failed render wrote to stdout:\n{}",
        text(&out)
    );
}

#[test]
fn sidecar_image_reaches_openbao_by_host_name() {
    let server = bao::Bao::start();
    server.put_kv2(
        "secret",
        "ship",
        serde_json::json!({"password": "ship-canary-vault-password"}),
    );
    let port = server.addr.rsplit(':').next().unwrap();
    let repo = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("tests/fixtures/ship/vault-app"),
        &repo.path().join("apps/vault-app"),
    );
    std::fs::remove_file(repo.path().join("apps/vault-app/expected.yaml")).unwrap();
    open_to_all(repo.path());
    let app = AppInput {
        name: "vault-app".into(),
        namespace: "team-a".into(),
        source_path: "apps/vault-app".into(),
        ..AppInput::default()
    };
    let vault_addr = format!("http://vault.test:{port}");
    let out = InImage {
        network: &["--network", "host", "--add-host", "vault.test:127.0.0.1"],
        operator_env: &[
            ("AVP_TYPE", "vault"),
            ("AVP_AUTH_TYPE", "token"),
            ("VAULT_ADDR", &vault_addr),
            ("VAULT_TOKEN", bao::ROOT_TOKEN),
        ],
        ..InImage::offline(repo.path(), &app)
    }
    .plugin(&plugin("kustodian"));
    assert!(out.status.success(), "{}", text(&out));
    let want = std::fs::read_to_string(root().join("tests/fixtures/ship/vault-app/expected.yaml"))
        .unwrap();
    assert_same_manifests(
        "the image against OpenBao",
        &String::from_utf8_lossy(&out.stdout),
        &want,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_no_secret(
        "the image's stderr",
        &stderr,
        &["ship-canary-vault-password", bao::ROOT_TOKEN],
    );
}

#[test]
fn sidecar_image_is_from_scratch_non_root_and_hadolint_clean() {
    let inspect = ok(
        Command::new("docker").args([
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{.Size}} {{len .RootFS.Layers}}",
            image(),
        ]),
        1,
    );
    let fields: Vec<&str> = inspect.split_whitespace().collect();
    assert_eq!(fields[0], "999:999", "the image must run as uid 999");
    let size_mb = fields[1].parse::<u64>().unwrap() / 1_000_000;
    eprintln!("sidecar image size with this machine's kubectl: {size_mb} MB");
    // Only what the context holds: busybox + passwd, the tools, the binary, the plugin configs.
    let history = ok(
        Command::new("docker").args([
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            image(),
        ]),
        1,
    );
    assert!(
        !history.contains("RUN"),
        "the image build must not run commands:\n{history}"
    );
    // The plugin commands' shell is busybox; the binary needs no libc, so there is none.
    let ls = ok(
        Command::new("docker").args([
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--user",
            "999",
            image(),
            "sh",
            "-c",
            "id -u; ls /lib /lib64 /usr/lib 2>&1 || true",
        ]),
        1,
    );
    assert!(ls.starts_with("999\n"), "{ls}");
    assert!(!ls.contains("libc"), "the image carries a libc:\n{ls}");
    let lint = output(
        tool("hadolint").arg(root().join("plugin/argocd/Dockerfile")),
        1,
    );
    assert!(lint.status.success(), "hadolint:\n{}", text(&lint));
}

// ---------------------------------------------------------------------------------------------
// The wheel, and pre-commit without Rust

/// A folder holding the kustodian wheel (dist/build-wheel), built once per test binary.
fn wheel_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    built_once(&DIR, "build-wheel")
}

/// PATH for a user without Rust: the test tools' venv (pre-commit, python) and the system
/// folders, and no folder that holds `cargo`.
fn path_without_cargo() -> std::ffi::OsString {
    let dirs = [
        root().join(".venv/bin"),
        PathBuf::from("/usr/local/bin"),
        PathBuf::from("/usr/bin"),
        PathBuf::from("/bin"),
    ];
    for d in &dirs {
        assert!(
            !d.join("cargo").exists() && !d.join("rustc").exists(),
            "{} holds cargo: the test needs a PATH without Rust",
            d.display()
        );
    }
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn wheel_installs_a_working_kustodian_into_a_fresh_venv() {
    let wheels: Vec<_> = std::fs::read_dir(wheel_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    let want = format!(
        "kustodian-{}-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        version()
    );
    assert_eq!(wheels[0], want, "the wheel's name and platform tag");
    let venv = tempfile::tempdir().unwrap();
    ok(
        Command::new("python3")
            .args(["-m", "venv"])
            .arg(venv.path()),
        3,
    );
    ok(
        Command::new(venv.path().join("bin/pip"))
            .args(["install", "-q", "--no-index", "--find-links"])
            .arg(wheel_dir())
            .arg(format!("kustodian=={}", version()))
            .env("PATH", path_without_cargo()),
        3,
    );
    let installed = venv.path().join("bin/kustodian");
    assert_runs_this_version(&installed);
    for data in [
        "share/man/man1/kustodian.1",
        "share/man/man1/kustodian-scan.1",
        "share/bash-completion/completions/kustodian",
        "share/zsh/site-functions/_kustodian",
        "share/fish/vendor_completions.d/kustodian.fish",
    ] {
        assert!(
            venv.path().join(data).is_file(),
            "the wheel did not install {data}"
        );
    }
    // (A copy: the repository's own policy lets its test fixtures through.)
    let tree = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("tests/fixtures/ship/plaintext-secret"),
        tree.path(),
    );
    let blocked = output(Command::new(&installed).arg("scan").arg(tree.path()), 1);
    assert_eq!(blocked.status.code(), Some(1), "{}", text(&blocked));
}

/// A git repository holding `.pre-commit-config.yaml` (`config`) with its hooks installed by
/// the real pre-commit, and the plaintext Secret staged. Returns the repository and the
/// environment of a user without Rust whose pip reads only the local wheel folder.
fn precommit_repo(config: &str) -> (tempfile::TempDir, Vec<(String, std::ffi::OsString)>) {
    let repo = common::new_repo();
    std::fs::write(repo.path().join(".pre-commit-config.yaml"), config).unwrap();
    std::fs::copy(
        root().join("tests/fixtures/ship/plaintext-secret/secret.yaml"),
        repo.path().join("secret.yaml"),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap().keep();
    // pre-commit builds a placeholder package for `repo: local` hooks, which needs setuptools:
    // take the copy virtualenv carries, so that pip needs no index at all.
    let build_deps = home.join("build-deps");
    std::fs::create_dir_all(&build_deps).unwrap();
    let embed = std::fs::read_dir(root().join(".venv/lib"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .join("site-packages/virtualenv/seed/wheels/embed")
        })
        .find(|p| p.is_dir())
        .expect("virtualenv (with pre-commit) is not in .venv: run tests/setup-tools.sh");
    for e in std::fs::read_dir(&embed).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("setuptools-")
        {
            std::fs::copy(&p, build_deps.join(p.file_name().unwrap())).unwrap();
        }
    }
    let find_links = format!("{} {}", wheel_dir().display(), build_deps.display());
    let env: Vec<(String, std::ffi::OsString)> = vec![
        ("PATH".into(), path_without_cargo()),
        ("HOME".into(), home.clone().into()),
        ("PRE_COMMIT_HOME".into(), home.join("pre-commit").into()),
        ("PIP_FIND_LINKS".into(), find_links.into()),
        ("PIP_NO_INDEX".into(), "1".into()),
        ("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()),
        ("VIRTUALENV_NO_DOWNLOAD".into(), "1".into()),
    ];
    ok(
        only_env(&mut common::git_cmd(repo.path()), &env).args(["add", "-A"]),
        1,
    );
    let mut pc = Command::new(root().join(".venv/bin/pre-commit"));
    ok(
        only_env(pc.current_dir(repo.path()), &env).arg("install"),
        1,
    );
    (repo, env)
}

/// `cmd` with `env` as its whole environment.
fn only_env<'a>(cmd: &'a mut Command, env: &[(String, std::ffi::OsString)]) -> &'a mut Command {
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)))
}

/// Where a `repo: local` pre-commit hook gets kustodian from.
enum HookFrom {
    /// `language: python`, the wheel as an additional dependency.
    Wheel,
    /// `language: docker_image`, the sidecar image.
    Image,
}

/// A repository whose `.pre-commit-config.yaml` has one local kustodian hook on files, taken
/// `from` the wheel or the image, must refuse the commit: see [`assert_commit_blocked`].
fn assert_local_hook_blocks_the_commit(from: HookFrom) {
    let (hook, what) = match from {
        HookFrom::Wheel => (
            format!(
                "id: kustodian\n        name: kustodian\n        entry: kustodian scan\n        \
                 language: python\n        additional_dependencies: [kustodian=={}]",
                version()
            ),
            "pre-commit with the wheel",
        ),
        HookFrom::Image => (
            format!(
                "id: kustodian-image\n        name: kustodian (image)\n        entry: {} kustodian \
                 scan\n        language: docker_image",
                image()
            ),
            "pre-commit with the image",
        ),
    };
    let config =
        format!("repos:\n  - repo: local\n    hooks:\n      - {hook}\n        types: [file]\n");
    let (repo, env) = precommit_repo(&config);
    assert_commit_blocked(repo.path(), &env, what);
}

/// `git commit` must fail through the hook, name the file, show no value, and leave no commit.
fn assert_commit_blocked(repo: &Path, env: &[(String, std::ffi::OsString)], what: &str) {
    let mut commit = common::git_cmd(repo);
    let out = output(
        only_env(&mut commit, env).args(["commit", "-m", "add a secret"]),
        10,
    );
    let all = text(&out);
    assert!(
        !out.status.success(),
        "{what}: the commit went through:\n{all}"
    );
    assert!(
        all.contains("secret.yaml"),
        "{what}: the hook output does not name the file:\n{all}"
    );
    assert_no_secret(what, &all, &[PLAINTEXT_CANARY]);
    let head = common::git_cmd(repo)
        .args(["rev-parse", "--verify", "-q", "HEAD"])
        .output()
        .unwrap();
    assert!(!head.status.success(), "{what}: a commit was made");
}

#[test]
fn pre_commit_blocks_a_plaintext_secret_through_the_wheel_without_cargo() {
    assert_local_hook_blocks_the_commit(HookFrom::Wheel);
}

#[test]
fn pre_commit_blocks_a_plaintext_secret_through_the_image() {
    assert_local_hook_blocks_the_commit(HookFrom::Image);
}

// ---------------------------------------------------------------------------------------------
// The GitHub Action and the workflows

#[test]
fn workflows_and_action_pass_actionlint_and_zizmor() {
    let lint = output(tool("actionlint").current_dir(root()), 2);
    assert!(lint.status.success(), "actionlint:\n{}", text(&lint));
    let audit = output(
        tool("zizmor")
            .args(["--offline", "action.yml", ".github/workflows"])
            .current_dir(root()),
        2,
    );
    assert!(audit.status.success(), "zizmor:\n{}", text(&audit));
}

/// The release archive of this build in a folder, the way a release serves it.
fn archive_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    built_once(&DIR, "build-archive")
}

/// Replaces each `${{ expr }}` in `s` with its value in `ctx`; an expression the test does
/// not know fails the test, so a new one in action.yml gets a value here.
fn expand(s: &str, ctx: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let j = rest[i..].find("}}").expect("an unclosed ${{") + i;
        let expr = rest[i + 3..j].trim();
        out.push_str(
            ctx.get(expr).unwrap_or_else(|| {
                panic!("action.yml uses ${{{{ {expr} }}}}, unknown to the test")
            }),
        );
        rest = &rest[j + 2..];
    }
    out.push_str(rest);
    out
}

/// Runs the action's steps the way a GitHub runner runs a composite action's `shell: bash`
/// steps (`bash --noprofile --norc -eo pipefail`, RUNNER_* and GITHUB_OUTPUT, `env:` with the
/// inputs expanded, `if:` on an input), in `workspace`, with the release archives served from
/// a local folder. Returns the last step's exit status and every step's outputs.
fn run_action(
    workspace: &Path,
    inputs: &[(&str, &str)],
) -> (
    Option<i32>,
    std::collections::BTreeMap<String, String>,
    String,
) {
    let action = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let action = kustodian_manifest::parse_stream(&action)
        .unwrap()
        .remove(0)
        .root
        .to_json();
    let temp = tempfile::tempdir().unwrap();
    let mut ctx = std::collections::BTreeMap::new();
    for (name, def) in action["inputs"].as_object().unwrap() {
        ctx.insert(
            format!("inputs.{name}"),
            def["default"].as_str().unwrap_or("").to_string(),
        );
    }
    for (k, v) in inputs {
        assert!(
            ctx.contains_key(&format!("inputs.{k}")),
            "action.yml has no input {k}"
        );
        ctx.insert(format!("inputs.{k}"), v.to_string());
    }
    for (k, v) in [
        ("github.action_ref", format!("v{}", version())),
        ("github.action_repository", "OWNER/kustodian".to_string()),
        ("github.server_url", "https://github.invalid".to_string()),
    ] {
        ctx.insert(k.to_string(), v);
    }
    let mut log = String::new();
    let mut status = Some(0);
    for (n, step) in action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(step["shell"], "bash", "step {n}: the test runs bash steps");
        if let Some(cond) = step["if"].as_str() {
            let (lhs, rhs) = cond
                .split_once("==")
                .expect("an `if:` of the form inputs.X == 'v'");
            let rhs = rhs.trim().trim_matches('\'');
            if ctx[lhs.trim()] != rhs {
                continue;
            }
        }
        let outputs = temp.path().join(format!("output-{n}"));
        std::fs::write(&outputs, "").unwrap();
        let script = temp.path().join(format!("step-{n}.sh"));
        std::fs::write(&script, step["run"].as_str().unwrap()).unwrap();
        let mut c = Command::new("bash");
        c.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script)
            .current_dir(workspace)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", temp.path())
            .env("GITHUB_OUTPUT", &outputs);
        for (k, v) in step["env"].as_object().into_iter().flatten() {
            c.env(k, expand(v.as_str().unwrap(), &ctx));
        }
        let out = output(&mut c, 2);
        log.push_str(&text(&out));
        if let Some(id) = step["id"].as_str() {
            for line in std::fs::read_to_string(&outputs).unwrap().lines() {
                let (k, v) = line.split_once('=').unwrap();
                ctx.insert(format!("steps.{id}.outputs.{k}"), v.to_string());
            }
        }
        status = out.status.code();
        if status != Some(0) {
            break;
        }
    }
    (status, ctx, log)
}

#[test]
fn action_steps_install_the_release_and_scan_with_sarif() {
    let release_url = format!("file://{}", archive_dir().display());
    let workspace = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("tests/fixtures/ship/plaintext-secret"),
        workspace.path(),
    );
    let inputs = [("release-url", release_url.as_str())];
    let (status, outputs, log) = run_action(workspace.path(), &inputs);
    assert_eq!(
        status,
        Some(1),
        "a plaintext Secret must fail the action:\n{log}"
    );
    assert_eq!(outputs["steps.scan.outputs.findings"], "true", "{log}");
    assert_no_secret("the action's output", &log, &[PLAINTEXT_CANARY]);
    assert!(log.contains("::error"), "no GitHub annotation:\n{log}");
    let sarif_path = workspace
        .path()
        .join(&outputs["steps.scan.outputs.sarif-file"]);
    let sarif = std::fs::read_to_string(&sarif_path).unwrap();
    assert_no_secret("the SARIF file", &sarif, &[PLAINTEXT_CANARY]);
    let sarif: serde_json::Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty(), "the SARIF file has no result");
    // The installed binary is the archive's (checked against its SHA-256 file by the step).
    let release_version = ok(Command::new(release_bin()).arg("--version"), 1);
    assert!(log.contains(&release_version), "{log}");

    // Findings reported but not failing, on request.
    let (status, outputs, log) = run_action(
        workspace.path(),
        &[
            ("release-url", release_url.as_str()),
            ("fail-on-findings", "false"),
        ],
    );
    assert_eq!(status, Some(0), "{log}");
    assert_eq!(outputs["steps.scan.outputs.findings"], "true");

    // A clean tree passes.
    let clean = tempfile::tempdir().unwrap();
    std::fs::write(
        clean.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n",
    )
    .unwrap();
    let (status, outputs, log) = run_action(clean.path(), &inputs);
    assert_eq!(status, Some(0), "{log}");
    assert_eq!(outputs["steps.scan.outputs.findings"], "false");
}

#[test]
fn action_refuses_a_tampered_archive() {
    let served = tempfile::tempdir().unwrap();
    copy_dir(archive_dir(), served.path());
    let name = format!("kustodian-{}-x86_64-linux.tar.gz", version());
    let mut bytes = std::fs::read(served.path().join(&name)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(served.path().join(&name), bytes).unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let url = format!("file://{}", served.path().display());
    let (status, outputs, log) = run_action(workspace.path(), &[("release-url", url.as_str())]);
    assert_ne!(status, Some(0), "a tampered archive was installed:\n{log}");
    assert!(!outputs.contains_key("steps.install.outputs.bin"), "{log}");
    assert!(
        log.contains("FAILED"),
        "sha256sum's verdict is not shown:\n{log}"
    );
}

#[test]
fn build_image_refuses_tools_that_need_shared_libraries() {
    let tools = tempfile::tempdir().unwrap();
    let git = std::fs::canonicalize(which("git")).unwrap();
    std::fs::copy(&git, tools.path().join("git")).unwrap();
    let out = output(
        dist("build-image")
            .arg("kustodian-cmp:refused")
            .arg(tools.path()),
        2,
    );
    exits_saying(&out, 1, "needs shared libraries");
    let usage = output(&mut dist("build-image"), 1);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
}

/// The first `name` on PATH.
fn which(name: &str) -> PathBuf {
    std::env::split_paths(&tool_path())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}
