//! A clone of the repository alone passes its tests: nothing a build or a test reads lives
//! outside it. The suite is built, and the tests that once read files beside the repository
//! (the SOPS interop vectors) are run, from a copy of the tracked files in an empty temporary
//! folder, reusing this build's target directory so that only kustodian's own crates compile.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{git, output_text, repo_root};

/// Folders outside the repository that tests once read. Split so that this file does not name
/// them itself.
const OUTSIDE: [&str; 2] = [concat!("..", "/shared"), concat!("/work", "/shared")];

/// The tracked files of the working tree (as they are now, uncommitted edits included).
fn tracked_files() -> Vec<PathBuf> {
    git(&repo_root(), &["ls-files", "--cached"])
        .lines()
        .map(PathBuf::from)
        .filter(|p| repo_root().join(p).is_file())
        .collect()
}

#[test]
fn no_tracked_file_refers_to_a_folder_outside_the_repository() {
    let mut hits = Vec::new();
    for rel in tracked_files() {
        let Ok(text) = std::fs::read_to_string(repo_root().join(&rel)) else {
            continue; // binary files cannot name a path for a build or a test to read
        };
        for (n, line) in text.lines().enumerate() {
            if OUTSIDE.iter().any(|o| line.contains(o)) {
                hits.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "tracked files refer to folders outside the repository, which a clone does not have; \
         copy what they read under tests/fixtures/ and point them there:\n{}",
        hits.join("\n")
    );
}

/// The target directory of this build (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .to_path_buf()
}

/// `cargo` for the copy at `dir`, reusing this build's compiled dependencies without touching
/// this build's own artifacts. The copy's crates have the same names and relative paths as
/// this checkout's, so cargo would give them the same file names and overwrite the test
/// binaries running now with ones that read the (soon deleted) copy. So the copy's workspace
/// crates get a profile override (codegen units, no incremental cache), which gives them their
/// own file names while every dependency keeps its own; intermediate files go to this build's
/// build directory (where the dependencies are) and final ones to `<target>/fresh-clone`.
fn cargo_for_copy(dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .env("CARGO_BUILD_BUILD_DIR", target_dir())
        .env("CARGO_TARGET_DIR", target_dir().join("fresh-clone"));
    // The variables cargo set for this test describe the original checkout.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&k.as_ref())
        {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd
}

/// The names of the copy's workspace members.
fn members(dir: &Path) -> Vec<String> {
    let out = cargo_for_copy(dir)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo metadata in the copy:\n{}",
        output_text(&out)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// Runs `cargo ARGS` in the copy, which must succeed.
fn cargo_in(dir: &Path, members: &[String], args: &[&str]) {
    let mut cmd = cargo_for_copy(dir);
    cmd.args(args);
    for m in members {
        for (key, value) in [("codegen-units", "255"), ("incremental", "false")] {
            cmd.arg("--config")
                .arg(format!("profile.dev.package.{m}.{key}={value}"));
        }
    }
    let out = cmd.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "`cargo {}` failed in a copy of the tracked files ({}). A file the build or the tests read \
         is outside the repository or not tracked (`git add` it):\n{}",
        args.join(" "),
        dir.display(),
        output_text(&out)
    );
}

/// When a file was last written, to show that the copy's build left this build's alone.
fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_suite_builds_and_the_sops_vectors_pass_in_a_copy_with_nothing_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    // Two empty folders deep in `tmp`: no `shared` folder beside the copy or above it.
    let copy = tmp.path().join("a/b/kustodian");
    for rel in tracked_files() {
        let to = copy.join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo_root().join(&rel), &to)
            .unwrap_or_else(|e| panic!("copy {}: {e}", rel.display()));
    }
    for above in ["..", "../..", "../../.."] {
        assert!(
            !copy.join(above).join("shared").exists(),
            "{}/shared exists beside the copy",
            copy.join(above).display()
        );
    }
    let ours = [
        std::env::current_exe().unwrap(),
        PathBuf::from(env!("CARGO_BIN_EXE_kustodian")),
    ];
    let before: Vec<_> = ours.iter().map(|p| modified(p)).collect();

    // Written past the test harness's capture: the build below takes a minute or more.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "tests/fresh_clone.rs: building the workspace in a copy of the repository at {}\n",
            copy.display()
        )
        .as_bytes(),
    );
    let members = members(&copy);
    cargo_in(
        &copy,
        &members,
        &["test", "--workspace", "--locked", "--no-run", "-q"],
    );
    cargo_in(
        &copy,
        &members,
        &["test", "--locked", "-q", "-p", "kustodian-sops"],
    );

    let after: Vec<_> = ours.iter().map(|p| modified(p)).collect();
    assert_eq!(
        before, after,
        "the copy's build overwrote this build's binaries {ours:?}"
    );
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    // The quick start: the first fenced block, its commands (lines that are not comments).
    let commands: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        commands.get(1),
        Some(&"tests/run"),
        "the README's second command should run the tests: {commands:?}"
    );
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    let ci_commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.starts_with("set ") && !l.starts_with("cd "))
        .collect();
    assert_eq!(
        ci_commands,
        ["exec bash tests/run"],
        ".ci/run must run exactly the README's test command"
    );
}

/// A folder of links to the programs tests/setup-tools.sh calls, as found on PATH, but `missing`.
fn path_without(missing: &[&str]) -> tempfile::TempDir {
    const USED: [&str; 19] = [
        "bash",
        "env",
        "dirname",
        "cat",
        "id",
        "ls",
        "head",
        "ln",
        "python3",
        "apt-get",
        "sudo",
        "age",
        "age-keygen",
        "git",
        "openssl",
        "kubectl",
        "kpt",
        "dockerd",
        "gpg",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in USED.iter().filter(|n| !missing.contains(n)) {
        if let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            std::os::unix::fs::symlink(found, dir.path().join(name)).unwrap();
        }
    }
    dir
}

/// tests/setup-tools.sh run from a copy of itself beside a `.venv` whose tools are all there
/// (scripts that succeed), with `missing` taken off PATH; returns (exit code, stderr).
fn setup_tools_without(missing: &[&str]) -> (Option<i32>, String) {
    let repo = tempfile::tempdir().unwrap();
    let script = repo.path().join("tests/setup-tools.sh");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::copy(repo_root().join("tests/setup-tools.sh"), &script).unwrap();
    let bin = repo.path().join(".venv/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in [
        "python",
        "pip",
        "sops",
        "pre-commit",
        "bao",
        "moto_server",
        "detect-secrets",
        "drongo",
        "maturin",
        "hadolint",
        "actionlint",
        "zizmor",
    ] {
        let p = bin.join(tool);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    // A Docker daemon "answers" (the real dist/docker-daemon would start one).
    let daemon = repo.path().join("dist/docker-daemon");
    std::fs::create_dir_all(daemon.parent().unwrap()).unwrap();
    std::fs::write(&daemon, "#!/bin/sh\nexit 0\n").unwrap();
    // The stamp says the pip packages are installed (the script's own list).
    let text = std::fs::read_to_string(&script).unwrap();
    let list = text
        .lines()
        .find_map(|l| l.strip_prefix("pip_pkgs=("))
        .and_then(|l| l.strip_suffix(')'))
        .expect("setup-tools.sh has a pip_pkgs=(...) line");
    let stamp: Vec<&str> = list
        .split_whitespace()
        .map(|w| w.trim_matches('"'))
        .collect();
    std::fs::write(
        repo.path().join(".venv/.kustodian-tools"),
        stamp.join(" ") + "\n",
    )
    .unwrap();

    let path = path_without(missing);
    let out = Command::new("bash")
        .arg(&script)
        .env("PATH", path.path())
        .output()
        .expect("bash runs");
    (out.status.code(), common::text(&out.stderr))
}

#[test]
fn setup_tools_stops_and_names_a_tool_it_cannot_find() {
    let (code, err) = setup_tools_without(&[]);
    assert_eq!(
        code,
        Some(0),
        "with every tool there, setup-tools.sh passes:\n{err}"
    );

    let (code, err) = setup_tools_without(&["kpt"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("kpt is missing") && err.contains("install kpt"),
        "{err}"
    );

    let (code, err) = setup_tools_without(&["kubectl"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("kubectl is missing"), "{err}");

    // No age and no apt-get to install it with: stop, naming the package.
    let (code, err) = setup_tools_without(&["age", "apt-get"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("age") && err.contains("apt-get install -y age"),
        "{err}"
    );
}
