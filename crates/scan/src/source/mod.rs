//! Where files come from: a walk of the working tree (parallel, honouring `.gitignore`), the
//! git index (the staged blobs, what a commit will hold), or the commits of a history range.
//! Each feeds [`Scanner`] and resolves the files that `secretGenerator`s read from the same
//! place it reads manifests from.

use std::path::{Component, Path, PathBuf};

use crate::engine::{FileScan, Scanner};
use crate::finding::{Finding, Note};

mod git;
mod history;
mod staged;
mod walk;

/// What to scan.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Files and folders of the working tree (a folder is walked, honouring `.gitignore`).
    Paths(Vec<PathBuf>),
    /// The git index of the repository around the working directory. With no paths: the entries
    /// the next commit adds or changes. With paths: the staged version of the entries at or
    /// under them.
    Staged(Vec<PathBuf>),
    /// Commits of the repository around the working directory ([`Commits`]). Every blob they
    /// add is scanned; findings name the commit that introduced them. With paths, only files at
    /// or under them.
    History {
        /// Which commits.
        commits: Commits,
        /// Limits the scan to these paths.
        paths: Vec<PathBuf>,
    },
}

/// Which commits a history scan walks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Commits {
    /// A range as git spells it: `A..B` (reachable from B, not from A), `A...B` (either side
    /// since their merge base) or one revision (its whole history).
    Range(String),
    /// What a push sends: for each updated ref, the local commit and the remote's current one,
    /// or `None` for a new remote branch (then every commit not on a remote-tracking branch).
    Pushed(Vec<(String, Option<String>)>),
}

impl Commits {
    /// The updates of a git `pre-push` hook's standard input: lines of `<local ref> <local
    /// commit> <remote ref> <remote commit>`. Deletions (a local commit of zeros) push nothing
    /// and are left out; a remote commit of zeros (a new branch) becomes `None`.
    pub fn from_pre_push_lines(text: &str) -> Commits {
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        Commits::Pushed(
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    match f[..] {
                        [_, local, _, remote] if !zero(local) => Some((
                            local.to_string(),
                            (!zero(remote)).then(|| remote.to_string()),
                        )),
                        _ => None,
                    }
                })
                .collect(),
        )
    }
}

/// Everything a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Findings, ordered by path, line and column.
    pub findings: Vec<Finding>,
    /// Skipped files and other remarks, ordered.
    pub notes: Vec<Note>,
    /// How many candidate files were read (blobs, for a history scan).
    pub files_scanned: usize,
    /// How many commits a history scan walked.
    pub commits_scanned: usize,
}

impl ScanResult {
    fn add(&mut self, mut r: FileScan) {
        self.findings.append(&mut r.findings);
        self.notes.append(&mut r.notes);
    }

    /// Orders findings and notes deterministically and drops duplicates (a file seen both as a
    /// manifest and as a generator's file).
    pub fn finish(&mut self) {
        self.findings
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.findings.dedup_by(|a, b| a.sort_key() == b.sort_key());
        // A file a secretGenerator reads is judged as Secret data and searched as a text file:
        // the Secret data finding on a line says it all.
        let secret_lines: std::collections::HashSet<_> = self
            .findings
            .iter()
            .filter(|f| !f.rule.is_credential_search())
            .map(|f| {
                (
                    f.location.path.clone(),
                    f.location.line,
                    f.commit.as_ref().map(|c| c.id.clone()),
                )
            })
            .collect();
        self.findings.retain(|f| {
            !f.rule.is_credential_search()
                || !secret_lines.contains(&(
                    f.location.path.clone(),
                    f.location.line,
                    f.commit.as_ref().map(|c| c.id.clone()),
                ))
        });
        self.notes.sort();
        self.notes.dedup();
    }

    /// Whether any note is an error (the scan is incomplete).
    pub fn has_errors(&self) -> bool {
        self.notes.iter().any(|n| n.is_error)
    }
}

/// Why a scan could not run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum SourceError {
    /// A path given on the command line does not exist.
    #[error("{0}: no such file or folder")]
    #[diagnostic(
        code(kustodian::scan::path),
        help("check the path; `kustodian scan` with no path scans the current folder")
    )]
    NoSuchPath(PathBuf),
    /// `--staged`, `--since`, `--range` or `--pushed` outside a git repository.
    #[error(
        "{option} needs a git repository, but {path} is not a git repository (nor is any folder above it)"
    )]
    #[diagnostic(code(kustodian::scan::not_a_repository), help("run it inside a git work tree (the folder of a clone), or scan files without git with `kustodian scan PATH`"))]
    NotARepository {
        /// The folder the repository was looked for from.
        path: PathBuf,
        /// The option that needs one (`--staged`, `--since`/`--range`, `--pushed`).
        option: &'static str,
    },
    /// A path given with `--staged` is outside the repository.
    #[error("{0} is outside the repository")]
    #[diagnostic(
        code(kustodian::scan::outside),
        help("give paths inside the repository's work tree")
    )]
    OutsideRepository(PathBuf),
    /// A history range does not name commits of the repository.
    #[error("`{range}` is not a revision range of this repository: {reason}")]
    #[diagnostic(
        code(kustodian::scan::revision),
        help("give a commit, branch or tag (`--since origin/main`; a revision, not a date) or a range (`--range v1.0..HEAD`); in a shallow CI clone, fetch the history first (actions/checkout `fetch-depth: 0`)")
    )]
    Revision {
        /// The range given.
        range: String,
        /// What git said.
        reason: String,
    },
    /// git could not read the repository.
    #[error("could not read the git repository: {0}")]
    #[diagnostic(code(kustodian::scan::git), help("check that `git status` works here"))]
    Git(String),
}

impl From<git2::Error> for SourceError {
    fn from(e: git2::Error) -> Self {
        SourceError::Git(e.message().to_string())
    }
}

/// Scans a source. `cwd` is the directory relative paths are taken from.
pub fn scan(scanner: &Scanner, source: &Source, cwd: &Path) -> Result<ScanResult, SourceError> {
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    let cwd = cwd.as_path();
    let mut result = match source {
        Source::Paths(paths) => walk::walk(scanner, paths, cwd)?,
        Source::Staged(paths) => staged::staged(scanner, paths, cwd)?,
        Source::History { commits, paths } => history::history(scanner, commits, paths, cwd)?,
    };
    result.finish();
    Ok(result)
}

/// `a/./b/../c` -> `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Where the kustomizations that may read `path` (repository-relative) would be: each name
/// kustomize reads, in the folders at and above `path`'s, nearest first. kustomize reads a
/// generator's files from inside the kustomization's own folder.
fn kustomizations_above(path: &str) -> impl Iterator<Item = String> + '_ {
    const NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
    let dirs = std::iter::successors(Some(path), |d| d.rfind('/').map(|i| &d[..i]))
        .skip(1)
        .map(|d| format!("{d}/"))
        .chain([String::new()]);
    dirs.flat_map(|d| NAMES.iter().map(move |n| format!("{d}{n}")))
}

/// A repository-relative path with `/` separators.
fn rel_string(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_push_lines() {
        let z = "0".repeat(40);
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let text = format!(
            "refs/heads/main {a} refs/heads/main {b}\nrefs/heads/new {a} refs/heads/new {z}\n(delete) {z} refs/heads/old {b}\n"
        );
        assert_eq!(
            Commits::from_pre_push_lines(&text),
            Commits::Pushed(vec![(a.clone(), Some(b)), (a, None)])
        );
    }

    #[test]
    fn kustomizations_are_looked_for_upwards() {
        let found: Vec<String> = kustomizations_above("apps/web/web.env").collect();
        assert_eq!(found[0], "apps/web/kustomization.yaml");
        assert_eq!(found[3], "apps/kustomization.yaml");
        assert_eq!(found[8], "Kustomization");
        assert_eq!(found.len(), 9);
        assert_eq!(kustomizations_above("a.env").count(), 3);
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(rel_string(Path::new("a/b/c.yaml")), "a/b/c.yaml");
    }
}
