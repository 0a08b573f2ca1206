//! Records the git commit the binary is built from, for `kustodian --version`.
//!
//! `KUSTODIAN_GIT_COMMIT` overrides it (builds from a source archive or a wheel's sdist, where
//! there is no `.git`); without either, the version says `unknown commit`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=KUSTODIAN_GIT_COMMIT");
    let commit = std::env::var("KUSTODIAN_GIT_COMMIT")
        .ok()
        .map(|c| short(c.trim()))
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown commit".to_string());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!(
        "cargo:rustc-env=KUSTODIAN_VERSION={version} ({})",
        commit.trim()
    );
}

/// The abbreviated HEAD commit, and the files whose change means a new commit.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it points at (a commit), and
    // packed-refs (a gc). In a worktree the branch lives in the common directory.
    // (A missing file would rerun this script on every build, so only existing ones count.)
    let mut watch = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch.push(PathBuf::from(dir).join("HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from) {
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(common.join(head_ref));
        }
        watch.push(common.join("packed-refs"));
    }
    for file in watch.iter().filter(|f| f.is_file()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Some(commit)
}

/// A full commit id abbreviated like `git rev-parse --short=12` (CI passes the full one).
fn short(commit: &str) -> String {
    if commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        commit[..12].to_string()
    } else {
        commit.to_string()
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
