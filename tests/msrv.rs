//! `rust-version` tells the truth: it is the highest `rust-version` of the packages in the locked
//! dependency graph (`cargo metadata --locked`), so `cargo build --locked` with that Rust is not
//! refused; and the places that repeat it (the Argo CD image's Rust tag, the README's install
//! line) say the same.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `1.88` or `1.88.0` as (major, minor, patch) for comparing.
fn parse_version(v: &str) -> (u64, u64, u64) {
    let mut parts = v.trim().split('.').map(|p| {
        p.parse::<u64>()
            .unwrap_or_else(|_| panic!("{v:?} is not a Rust version"))
    });
    let major = parts.next().unwrap_or(0);
    (major, parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// `cargo metadata --locked` of the workspace: every package of Cargo.lock's graph.
fn metadata() -> Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo metadata --locked failed (is Cargo.lock out of date?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// The value of the first line of `path` that starts with `prefix`, up to white space.
fn value_after(path: &Path, prefix: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{}: no line with {prefix:?}", path.display()))
        .to_string()
}

/// The declared `rust-version` of every workspace member, and the highest of the rest, with the
/// packages that need it.
fn declared_and_needed() -> (Vec<(String, String)>, String, Vec<String>) {
    let meta = metadata();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut declared = Vec::new();
    let mut needed = String::from("0");
    let mut needed_by = Vec::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().unwrap_or("?");
        let rv = p["rust_version"].as_str();
        if members.contains(&p["id"].as_str().unwrap_or("")) {
            declared.push((name.to_string(), rv.unwrap_or("(none)").to_string()));
            continue;
        }
        let Some(rv) = rv else { continue };
        let pkg = format!("{name} {}", p["version"].as_str().unwrap_or("?"));
        match parse_version(rv).cmp(&parse_version(&needed)) {
            std::cmp::Ordering::Greater => {
                needed = rv.to_string();
                needed_by = vec![pkg];
            }
            std::cmp::Ordering::Equal => needed_by.push(pkg),
            std::cmp::Ordering::Less => {}
        }
    }
    needed_by.sort();
    (declared, needed, needed_by)
}

#[test]
fn rust_version_is_the_highest_rust_version_of_the_locked_dependencies() {
    let (declared, needed, needed_by) = declared_and_needed();
    assert!(
        !declared.is_empty(),
        "cargo metadata lists no workspace member"
    );
    for (name, rv) in &declared {
        assert!(
            rv != "(none)" && parse_version(rv) == parse_version(&needed),
            "{name} declares rust-version {rv}, but the locked dependencies need Rust {needed} \
             ({}); set `rust-version = \"{needed}\"` in Cargo.toml ([package] and \
             [workspace.package])",
            needed_by.join(", ")
        );
    }
}

#[test]
fn the_readme_names_the_declared_rust_version() {
    let declared = value_after(&root().join("Cargo.toml"), "rust-version = ");
    let declared = declared.trim_matches('"');
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let want = format!("Rust {declared} or newer");
    assert!(
        readme.contains(&want),
        "README.md should say {want:?} (Cargo.toml's rust-version) where it says how to install"
    );
}
