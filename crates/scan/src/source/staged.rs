//! The staged source: what the next commit will hold, from the git index.
//!
//! Which files the commit adds or changes comes from `git diff --cached --raw`: git compares the
//! index with `HEAD` through the index's cached trees, a few milliseconds in a repository of
//! 20,000 files, where libgit2 would read every tree of `HEAD` first. When no `git` runs here,
//! libgit2 does the diff. Blobs are read with libgit2, and the index is loaded only when a
//! kustomization has to be found or a generator's file read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::git::{self, Changed, IndexSnapshot};
use super::{ScanResult, SourceError};
use crate::engine::Scanner;

pub(super) fn staged(
    scanner: &Scanner,
    paths: &[PathBuf],
    cwd: &Path,
) -> Result<ScanResult, SourceError> {
    let repo = git::open_repo(cwd, "`--staged`")?;
    let workdir = git::workdir(&repo, "--staged")?;
    let index = IndexSnapshot::new(&repo);

    let changed = if paths.is_empty() {
        match changes_from_git_cli(&workdir) {
            Some(changed) => changed,
            None => changes_from_libgit2(&repo, &index)?,
        }
    } else {
        // Named paths: their staged version, changed or not.
        let prefixes = git::repo_prefixes(paths, cwd, &workdir)?;
        let mut changed = BTreeMap::new();
        for e in index.index()?.iter() {
            let p = String::from_utf8_lossy(&e.path).into_owned();
            if git::is_regular(e.mode) && git::under(&prefixes, &p) {
                changed.insert(p, Some(e.id));
            }
        }
        changed
    };
    git::scan_changes(
        scanner,
        &repo,
        &index,
        &changed,
        &mut git::BlobCache::default(),
    )
}

/// The paths and blobs that the index adds or changes against `HEAD`, asked of `git` in the
/// work tree (`--no-relative` against a `diff.relative` setting); `None` when git does not run
/// here or fails (libgit2 then answers).
fn changes_from_git_cli(workdir: &Path) -> Option<Changed> {
    let out = Command::new("git")
        .args([
            "diff",
            "--cached",
            "--raw",
            "-z",
            "--no-abbrev",
            "--no-renames",
            "--no-relative",
            "--no-ext-diff",
            "--no-textconv",
            "--ignore-submodules=all",
            "--diff-filter=ACMRT",
        ])
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_raw_diff(&out.stdout)
}

/// Parses `git diff --raw -z --no-renames` output: `:MODE MODE OLD NEW STATUS\0PATH\0` per
/// file. Keeps regular files; `None` on anything unexpected.
fn parse_raw_diff(out: &[u8]) -> Option<Changed> {
    let mut changed = BTreeMap::new();
    let mut fields = out.split(|b| *b == 0);
    while let Some(head) = fields.next() {
        if head.is_empty() {
            continue;
        }
        let head = std::str::from_utf8(head).ok()?;
        let path = String::from_utf8_lossy(fields.next()?).into_owned();
        let mut parts = head.strip_prefix(':')?.split(' ');
        let (_old_mode, new_mode, _old, new) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let mode = u32::from_str_radix(new_mode, 8).ok()?;
        if git::is_regular(mode) {
            changed.insert(path, Some(git2::Oid::from_str(new).ok()?));
        }
    }
    Some(changed)
}

/// The same as [`changes_from_git_cli`], by libgit2.
fn changes_from_libgit2(
    repo: &git2::Repository,
    index: &IndexSnapshot<'_>,
) -> Result<Changed, SourceError> {
    let head_tree = match repo.head() {
        Ok(h) => Some(h.peel_to_tree()?),
        Err(_) => None,
    };
    let mut opts = git::diff_options(&[]);
    let diff =
        repo.diff_tree_to_index(head_tree.as_ref(), Some(index.index()?), Some(&mut opts))?;
    Ok(git::diff_changes(&diff, &[]).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_diff_keeps_regular_files() {
        let a = "1".repeat(40);
        let b = "2".repeat(40);
        let out = format!(
            ":000000 100644 {z} {a} A\0apps/a b.yaml\0:100644 120000 {a} {b} T\0link.yaml\0:160000 160000 {a} {b} M\0sub\0",
            z = "0".repeat(40)
        );
        let changed = parse_raw_diff(out.as_bytes()).unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(
            changed["apps/a b.yaml"],
            Some(git2::Oid::from_str(&a).unwrap())
        );
        assert!(parse_raw_diff(b"garbage\0x\0").is_none());
    }
}
