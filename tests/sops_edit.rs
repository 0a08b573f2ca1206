//! `kustodian edit` never leaves the plaintext behind, whatever stops it, and `kustodian keygen
//! -o` creates the folders it needs. Driven through the built binary with a stand-in editor (a
//! shell script) and real signals.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::text;

const RECIPIENT: &str = "age1e8h5ntgq60yrh6rqrx6ukr472and89xedd8s64layhjcl4pevyhqeye4j3";

fn keys() -> PathBuf {
    common::repo_root().join("tests/fixtures/render/store/keys.txt")
}

fn fixtures() -> PathBuf {
    common::repo_root().join("tests/fixtures/sops-edit")
}

/// A folder with `secret.enc.yaml` (encrypted by kustodian) and a private `tmp/` for TMPDIR.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    let plain = fixtures().join("secret.yaml");
    let out = common::kustodian(dir.path())
        .args(["encrypt", "--age", RECIPIENT])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(dir.path().join("secret.enc.yaml"), &out.stdout).unwrap();
    dir
}

/// What is left in TMPDIR with the edit prefix.
fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("kustodian-edit-"))
        .collect()
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `kustodian edit` with the stand-in editor, which records its pid and then waits.
fn start_edit(dir: &Path) -> std::process::Child {
    Command::new(common::bin())
        .current_dir(dir)
        .arg("edit")
        .arg("secret.enc.yaml")
        .env("EDITOR", fixtures().join("waiting-editor.sh"))
        .env_remove("SOPS_EDITOR")
        .env("EDITOR_PID_FILE", dir.join("editor.pid"))
        .env("TMPDIR", dir.join("tmp"))
        .env("SOPS_AGE_KEY_FILE", keys())
        .env_remove("SOPS_AGE_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn kill(sig: &str, pid: &str) {
    let _ = Command::new("kill").args(["-s", sig, pid]).status();
}

#[test]
fn edit_removes_the_plaintext_when_interrupted_by_any_signal() {
    for sig in ["INT", "TERM", "HUP"] {
        let dir = setup();
        let before = std::fs::read(dir.path().join("secret.enc.yaml")).unwrap();
        let mut child = start_edit(dir.path());
        let pid_file = dir.path().join("editor.pid");
        wait_for(&pid_file);
        assert_eq!(
            leftovers(&dir.path().join("tmp")).len(),
            1,
            "SIG{sig}: no temp dir"
        );
        kill(sig, &child.id().to_string());
        let status = child.wait().unwrap();
        let editor = std::fs::read_to_string(&pid_file).unwrap();
        kill("KILL", editor.trim());
        assert!(!status.success(), "SIG{sig}: edit succeeded");
        let left = leftovers(&dir.path().join("tmp"));
        assert!(
            left.is_empty(),
            "SIG{sig}: plaintext left behind in {left:?}"
        );
        let after = std::fs::read(dir.path().join("secret.enc.yaml")).unwrap();
        assert_eq!(before, after, "SIG{sig}: the encrypted file changed");
    }
}

#[test]
fn edit_removes_the_plaintext_when_the_editor_fails() {
    let dir = setup();
    let out = common::kustodian(dir.path())
        .args(["edit", "secret.enc.yaml"])
        .env("EDITOR", "false")
        .env_remove("SOPS_EDITOR")
        .env("TMPDIR", dir.path().join("tmp"))
        .env("SOPS_AGE_KEY_FILE", keys())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(leftovers(&dir.path().join("tmp")).is_empty());
}

#[cfg(unix)]
#[test]
fn keygen_creates_missing_folders_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = common::kustodian(dir.path())
        .args(["keygen", "-o", "new/sops/age/keys.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = dir.path().join("new/sops/age/keys.txt");
    assert!(text(&std::fs::read(&key).unwrap()).contains("AGE-SECRET-KEY-"));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    for folder in ["new", "new/sops", "new/sops/age"] {
        assert_eq!(mode(&dir.path().join(folder)), 0o700, "{folder}");
    }
}
