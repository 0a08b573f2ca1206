//! The history source (`--since REV`, `--range A..B`, `--pushed`): every blob the commits of a
//! range (or of a push) add, oldest commit first, each finding naming the commit that introduced
//! its value.
//!
//! For each commit, the files it adds or changes against its first parent are scanned as that
//! commit holds them (with the files their kustomizations read, from the same commit). A finding
//! whose fingerprint the parent's version of the same file already had is not the commit's doing
//! and is dropped, so a commit that edits another line of a file does not report the file's old
//! values again; a merge reports only what none of its parents had. A value is reported once,
//! at the first commit that added it, even when a later commit deletes it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::git::{self, Changed, TreeSnapshot};
use super::{Commits, ScanResult, SourceError};
use crate::engine::Scanner;
use crate::finding::{Commit, Note};

/// Scans `commits`, limited to `paths` when any are given.
pub(super) fn history(
    scanner: &Scanner,
    commits: &Commits,
    paths: &[PathBuf],
    cwd: &Path,
) -> Result<ScanResult, SourceError> {
    let option = match commits {
        Commits::Range(_) => "`--since` (or `--range`)",
        Commits::Pushed(_) => "`--pushed`",
    };
    let repo = git::open_repo(cwd, option)?;
    let prefixes = if paths.is_empty() {
        Vec::new()
    } else {
        git::repo_prefixes(paths, cwd, &git::workdir(&repo, "a path with --since")?)?
    };
    let mut walk = match commits {
        Commits::Range(range) => revwalk(&repo, range)?,
        Commits::Pushed(updates) => pushed(&repo, updates)?,
    };
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;

    let mut result = ScanResult::default();
    let mut reported = HashSet::new();
    let mut cache = git::BlobCache::default();
    let shallow = shallow_boundary(&repo);
    let oids = walk.collect::<Result<Vec<_>, _>>()?;
    // Every commit's changes at once from git's own diff-tree (fast); libgit2 per commit when
    // git cannot run.
    let mut listed = list_changes(&repo, &oids, &prefixes);
    for oid in oids {
        let commit = repo.find_commit(oid)?;
        result.commits_scanned += 1;
        if shallow.contains(&commit.id()) {
            result.notes.push(Note::info(
                format!("commit {}", commit.id()),
                "the shallow clone ends here: its whole tree is scanned as if this commit added \
                 it; fetch more history (`git fetch --unshallow`, actions/checkout \
                 `fetch-depth: 0`) to see which commit did",
            ));
        }
        let changed = match listed.as_mut() {
            Some(all) => all.remove(&oid).unwrap_or_default(),
            None => changes(&repo, &commit, &prefixes, false)?.0,
        };
        if changed.is_empty() {
            continue;
        }
        let snap = TreeSnapshot {
            tree: commit.tree()?,
            renamed: None,
        };
        let mut found = git::scan_changes(scanner, &repo, &snap, &changed, &mut cache)?;
        result.files_scanned += found.files_scanned;
        let info = commit_info(&commit);
        for mut n in found.notes.drain(..) {
            n.message = format!("{} (commit {})", n.message, info.short_id());
            result.notes.push(n);
        }
        if found.findings.is_empty() {
            continue;
        }
        // What the parents already had, judged as if at this commit's paths (renames, which
        // compare contents, are only looked for now that there is something to compare).
        let (_, renamed) = changes(&repo, &commit, &prefixes, true)?;
        let mut before = HashSet::new();
        let old_changed = changed.keys().map(|p| (p.clone(), None)).collect();
        for parent in commit.parents() {
            let snap = TreeSnapshot {
                tree: parent.tree()?,
                renamed: Some(&renamed),
            };
            let old = git::scan_changes(scanner, &repo, &snap, &old_changed, &mut cache)?;
            before.extend(old.findings.into_iter().map(|f| f.fingerprint));
        }
        for mut f in found.findings {
            if !before.contains(&f.fingerprint) && reported.insert(f.fingerprint.clone()) {
                f.commit = Some(info.clone());
                result.findings.push(f);
            }
        }
    }
    Ok(result)
}

/// The commits a shallow clone cut the history at (their parents are missing; git lists them
/// in `.git/shallow`).
fn shallow_boundary(repo: &git2::Repository) -> HashSet<git2::Oid> {
    if !repo.is_shallow() {
        return HashSet::new();
    }
    std::fs::read_to_string(repo.path().join("shallow"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| git2::Oid::from_str(l.trim()).ok())
        .collect()
}

/// A revision walk over what a push sends: each local commit, without what the remote has
/// (for a new branch: without everything on a remote-tracking branch).
fn pushed<'r>(
    repo: &'r git2::Repository,
    updates: &[(String, Option<String>)],
) -> Result<git2::Revwalk<'r>, SourceError> {
    let mut walk = repo.revwalk()?;
    let oid = |s: &str| {
        repo.revparse_single(s)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
    };
    for (local, remote) in updates {
        walk.push(oid(local).map_err(|e| SourceError::Revision {
            range: local.clone(),
            reason: e.message().to_string(),
        })?)?;
        // A remote commit this clone does not have (someone else pushed): git will refuse a
        // push that does not contain it, so scan as for a new branch.
        match remote.as_deref().map(oid) {
            Some(Ok(r)) => walk.hide(r)?,
            _ => walk.hide_glob("refs/remotes/*")?,
        }
    }
    Ok(walk)
}

/// A revision walk over `range`.
fn revwalk<'r>(repo: &'r git2::Repository, range: &str) -> Result<git2::Revwalk<'r>, SourceError> {
    let bad = |e: git2::Error| SourceError::Revision {
        range: range.to_string(),
        reason: e.message().to_string(),
    };
    let commit_of = |o: &git2::Object<'_>| o.peel_to_commit().map(|c| c.id()).map_err(bad);
    let spec = repo.revparse(range).map_err(bad)?;
    let mut walk = repo.revwalk()?;
    let head = || -> Result<git2::Oid, SourceError> {
        repo.head()
            .and_then(|h| h.peel_to_commit())
            .map(|c| c.id())
            .map_err(bad)
    };
    let to = match spec.to() {
        Some(o) => commit_of(o)?,
        None if spec.mode().contains(git2::RevparseMode::SINGLE) => {
            let from = spec
                .from()
                .ok_or_else(|| bad(git2::Error::from_str("empty")))?;
            walk.push(commit_of(from)?)?;
            return Ok(walk);
        }
        None => head()?,
    };
    let from = match spec.from() {
        Some(o) => commit_of(o)?,
        None => head()?,
    };
    walk.push(to)?;
    if spec.mode().contains(git2::RevparseMode::MERGE_BASE) {
        walk.push(from)?;
        walk.hide(repo.merge_base(from, to).map_err(bad)?)?;
    } else {
        walk.hide(from)?;
    }
    Ok(walk)
}

/// The regular files `commit` adds or changes against its first parent (the whole tree for a
/// root commit), under `prefixes`, and for renamed or copied ones the path they came from.
fn changes(
    repo: &git2::Repository,
    commit: &git2::Commit<'_>,
    prefixes: &[String],
    renames: bool,
) -> Result<(Changed, HashMap<String, String>), SourceError> {
    let parent_tree = match commit.parents().next() {
        Some(p) => Some(p.tree()?),
        None => None,
    };
    let mut opts = git::diff_options(prefixes);
    let mut diff =
        repo.diff_tree_to_tree(parent_tree.as_ref(), Some(&commit.tree()?), Some(&mut opts))?;
    // Rename detection compares contents; in a partial clone a blob may be missing, and the
    // changes are still judged, as additions.
    if renames {
        let _ = diff.find_similar(Some(git2::DiffFindOptions::new().renames(true)));
    }
    Ok(git::diff_changes(&diff, prefixes))
}

/// The files each commit adds or changes against its first parent (all of a root commit's),
/// as [`changes`] without renames finds them, from one `git diff-tree --stdin` run over every
/// commit. `None` when git cannot run or its output cannot be read.
fn list_changes(
    repo: &git2::Repository,
    oids: &[git2::Oid],
    prefixes: &[String],
) -> Option<HashMap<git2::Oid, Changed>> {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    let mut input = String::with_capacity(oids.len() * 82);
    for oid in oids {
        let commit = repo.find_commit(*oid).ok()?;
        match commit.parent_ids().next() {
            Some(p) => input.push_str(&format!("{oid} {p}\n")),
            None => input.push_str(&format!("{oid}\n")),
        }
    }
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(repo.path())
        .args([
            "diff-tree",
            "--stdin",
            "-r",
            "-z",
            "--no-abbrev",
            "--root",
            "--no-renames",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    // Read NUL-separated tokens as they come, never the whole output at once.
    let mut out = std::io::BufReader::new(child.stdout.take()?);
    let mut next = move || {
        let mut t = Vec::new();
        match out.read_until(0, &mut t) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                if t.last() == Some(&0) {
                    t.pop();
                }
                Some(t)
            }
        }
    };
    let mut all: HashMap<git2::Oid, Changed> = HashMap::new();
    let mut current = None;
    while let Some(t) = next() {
        if t.is_empty() {
            continue;
        }
        if let Some(meta) = t.strip_prefix(b":") {
            // `:OLDMODE NEWMODE OLDID NEWID STATUS`, then the path.
            let path = next()?;
            let meta = std::str::from_utf8(meta).ok()?;
            let f: Vec<&str> = meta.split(' ').collect();
            let [_, mode, _, id, status] = f[..] else {
                return None;
            };
            let mode = u32::from_str_radix(mode, 8).ok()?;
            let path = std::str::from_utf8(&path).ok()?;
            if !matches!(status.as_bytes().first(), Some(b'A' | b'M' | b'T'))
                || !git::is_regular(mode)
                || !git::under(prefixes, path)
            {
                continue;
            }
            let id = git2::Oid::from_str(id).ok()?;
            all.entry(current?)
                .or_default()
                .insert(path.to_string(), Some(id));
        } else {
            current = Some(git2::Oid::from_str(std::str::from_utf8(&t).ok()?.trim()).ok()?);
        }
    }
    let ok = writer.join().ok()?.is_ok() && child.wait().ok()?.success();
    if !ok {
        return None;
    }
    Some(all)
}

/// The commit as findings name it.
fn commit_info(c: &git2::Commit<'_>) -> Commit {
    let author = c.author();
    Commit {
        id: c.id().to_string(),
        author: String::from_utf8_lossy(author.name_bytes()).into_owned(),
        email: String::from_utf8_lossy(author.email_bytes()).into_owned(),
        date: rfc3339(author.when()),
    }
}

/// `2026-11-28T19:10:37+01:00` for a git time (`Z` for UTC).
fn rfc3339(t: git2::Time) -> String {
    kustodian_sops::rfc3339(t.seconds(), t.offset_minutes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_in_the_authors_offset() {
        assert_eq!(rfc3339(git2::Time::new(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(git2::Time::new(1_795_889_437, 60)),
            "2026-11-28T19:10:37+01:00"
        );
        assert_eq!(
            rfc3339(git2::Time::new(951_782_400, -330)),
            "2000-02-28T18:30:00-05:30"
        );
    }
}
