//! Where files come from: a walk of the working tree (parallel, honouring `.gitignore`) or the
//! git index (the staged blobs, what a commit will hold). Both feed [`Scanner`] and resolve the
//! files that `secretGenerator`s read from the same place they read manifests from.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::engine::{FileScan, FollowRequest, Scanner, MAX_FILE_SIZE};
use crate::finding::{Finding, Note};

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
}

/// Everything a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Findings, ordered by path, line and column.
    pub findings: Vec<Finding>,
    /// Skipped files and other remarks, ordered.
    pub notes: Vec<Note>,
    /// How many candidate files were read.
    pub files_scanned: usize,
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
    /// `--staged` outside a git repository.
    #[error("not a git repository (or any parent up to the file system root): {0}")]
    #[diagnostic(code(kustodian::scan::not_a_repository), help("run `kustodian scan --staged` inside a git work tree, or scan files with `kustodian scan PATH`"))]
    NotARepository(PathBuf),
    /// A path given with `--staged` is outside the repository.
    #[error("{0} is outside the repository")]
    #[diagnostic(
        code(kustodian::scan::outside),
        help("give paths inside the repository's work tree")
    )]
    OutsideRepository(PathBuf),
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
    let mut result = match source {
        Source::Paths(paths) => walk(scanner, paths, cwd)?,
        Source::Staged(paths) => staged(scanner, paths, cwd)?,
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

/// A repository-relative path with `/` separators.
fn rel_string(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The folder paths are reported relative to for `abs`: the git work tree around it, else
/// `cwd` when `abs` is inside it, else `abs` itself (or its folder).
fn display_root(abs: &Path, cwd: &Path) -> (PathBuf, Option<git2::Repository>) {
    let start = if abs.is_dir() {
        abs
    } else {
        abs.parent().unwrap_or(abs)
    };
    if let Ok(repo) = git2::Repository::discover(start) {
        if let Some(wd) = repo.workdir().and_then(|w| w.canonicalize().ok()) {
            return (wd, Some(repo));
        }
    }
    if abs.starts_with(cwd) {
        (cwd.to_path_buf(), None)
    } else {
        (start.to_path_buf(), None)
    }
}

struct Root {
    dir: PathBuf,
    repo: Option<Mutex<git2::Repository>>,
}

fn walk(scanner: &Scanner, paths: &[PathBuf], cwd: &Path) -> Result<ScanResult, SourceError> {
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    let defaults = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &defaults[..]
    } else {
        paths
    };
    let mut abs_paths = Vec::new();
    let mut roots: Vec<Root> = Vec::new();
    for p in paths {
        let abs = cwd
            .join(p)
            .canonicalize()
            .map_err(|_| SourceError::NoSuchPath(p.clone()))?;
        let (dir, repo) = display_root(&abs, &cwd);
        if !roots.iter().any(|r| r.dir == dir) {
            roots.push(Root {
                dir,
                repo: repo.map(Mutex::new),
            });
        }
        abs_paths.push(abs);
    }
    // Longest root first, so a nested repository wins over the folder around it.
    roots.sort_by_key(|r| std::cmp::Reverse(r.dir.as_os_str().len()));
    let root_of = |p: &Path| roots.iter().position(|r| p.starts_with(&r.dir));

    let mut builder = ignore::WalkBuilder::new(&abs_paths[0]);
    for p in &abs_paths[1..] {
        builder.add(p);
    }
    builder
        .hidden(false)
        .ignore(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false)
        .parents(true)
        .follow_links(false)
        .threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .filter_entry(|e| e.file_name() != ".git");

    let shared: Mutex<(ScanResult, Vec<(usize, FollowRequest)>)> = Mutex::new(Default::default());
    let scanned = AtomicUsize::new(0);
    builder.build_parallel().run(|| {
        let mut buf = Vec::with_capacity(64 * 1024);
        let shared = &shared;
        let scanned = &scanned;
        let root_of = &root_of;
        let roots = &roots;
        Box::new(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let msg = e.to_string();
                    shared
                        .lock()
                        .expect("not poisoned")
                        .0
                        .notes
                        .push(Note::error(None, format!("could not walk: {msg}")));
                    return ignore::WalkState::Continue;
                }
            };
            if !entry
                .file_type()
                .is_some_and(|t| t.is_file() || (entry.depth() == 0 && !t.is_dir()))
            {
                return ignore::WalkState::Continue;
            }
            let path = entry.path();
            let Some(ri) = root_of(path) else {
                return ignore::WalkState::Continue;
            };
            let rel = rel_string(path.strip_prefix(&roots[ri].dir).unwrap_or(path));
            if !Scanner::is_candidate_path(&rel) {
                return ignore::WalkState::Continue;
            }
            scanned.fetch_add(1, Ordering::Relaxed);
            let r = match read_capped(path, &mut buf) {
                Ok(true) => scanner.scan_file(&rel, &buf),
                Ok(false) => FileScan::default().with_note(Note::info(
                    &rel,
                    format!("skipped: larger than {} MiB", MAX_FILE_SIZE >> 20),
                )),
                Err(e) => FileScan::default().with_note(Note::error(
                    Some(rel.clone()),
                    format!("could not read: {e}"),
                )),
            };
            if !(r.findings.is_empty() && r.notes.is_empty() && r.follow.is_empty()) {
                let FileScan {
                    findings,
                    notes,
                    follow,
                } = r;
                let mut g = shared.lock().expect("not poisoned");
                g.0.findings.extend(findings);
                g.0.notes.extend(notes);
                g.1.extend(follow.into_iter().map(|f| (ri, f)));
            }
            if buf.capacity() > 1024 * 1024 {
                buf = Vec::with_capacity(64 * 1024);
            }
            ignore::WalkState::Continue
        })
    });
    let (mut result, follows) = shared.into_inner().expect("not poisoned");
    result.files_scanned = scanned.into_inner();

    // Files read by secretGenerators, from the working tree.
    let mut seen = BTreeSet::new();
    for (ri, req) in follows {
        if !seen.insert((ri, req.path.clone(), req.entry.clone())) {
            continue;
        }
        let root = &roots[ri];
        if let Some(repo) = &root.repo {
            let repo = repo.lock().expect("not poisoned");
            let tracked = repo
                .index()
                .ok()
                .is_some_and(|i| i.get_path(Path::new(&req.path), 0).is_some());
            if !tracked && repo.is_path_ignored(Path::new(&req.path)).unwrap_or(false) {
                continue;
            }
        }
        let path = root.dir.join(&req.path);
        let mut buf = Vec::new();
        match read_capped(&path, &mut buf) {
            Ok(true) => result.add(scanner.scan_followed(&req, &buf)),
            Ok(false) => result.notes.push(Note::info(
                &req.path,
                format!("skipped: larger than {} MiB", MAX_FILE_SIZE >> 20),
            )),
            Err(_) => result.notes.push(Note::info(
                &req.entry.path,
                format!(
                    "line {}: secretGenerator reads {}, which could not be read; not scanned",
                    req.entry.line, req.path
                ),
            )),
        }
    }
    Ok(result)
}

trait WithNote {
    fn with_note(self, n: Note) -> Self;
}

impl WithNote for FileScan {
    fn with_note(mut self, n: Note) -> Self {
        self.notes.push(n);
        self
    }
}

/// Reads a file into `buf`; `Ok(false)` (and nothing read) when it is larger than
/// [`MAX_FILE_SIZE`].
fn read_capped(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > MAX_FILE_SIZE as u64 {
        return Ok(false);
    }
    buf.reserve(len as usize);
    f.take(MAX_FILE_SIZE as u64 + 1).read_to_end(buf)?;
    if buf.len() > MAX_FILE_SIZE {
        buf.clear();
        return Ok(false);
    }
    Ok(true)
}

const GITLINK: u32 = 0o160000;
const SYMLINK: u32 = 0o120000;

fn is_kustomization_name(path: &str) -> bool {
    matches!(
        path.rsplit('/').next(),
        Some("kustomization.yaml" | "kustomization.yml" | "Kustomization")
    )
}

fn staged(scanner: &Scanner, paths: &[PathBuf], cwd: &Path) -> Result<ScanResult, SourceError> {
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    // In a hook, git says which repository and which index (a temporary one for
    // `git commit -a` or `git commit PATH`) through the environment.
    let from_env = ["GIT_DIR", "GIT_INDEX_FILE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    let repo = if from_env {
        git2::Repository::open_from_env()
    } else {
        git2::Repository::discover(&cwd)
    }
    .map_err(|_| SourceError::NotARepository(cwd.clone()))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| {
            SourceError::Git("the repository is bare; --staged needs a work tree".into())
        })?
        .canonicalize()
        .map_err(|e| SourceError::Git(e.to_string()))?;
    let index = repo.index()?;

    // Entry path -> blob id of what the commit will hold.
    let mut selected: BTreeMap<String, git2::Oid> = BTreeMap::new();
    let mut changed_other: BTreeSet<String> = BTreeSet::new();
    if paths.is_empty() {
        let head_tree = match repo.head() {
            Ok(h) => Some(h.peel_to_tree()?),
            Err(_) => None,
        };
        let mut opts = git2::DiffOptions::new();
        opts.include_typechange(true).ignore_submodules(true);
        let diff = repo.diff_tree_to_index(head_tree.as_ref(), Some(&index), Some(&mut opts))?;
        for d in diff.deltas() {
            use git2::Delta::*;
            if !matches!(d.status(), Added | Modified | Renamed | Copied | Typechange) {
                continue;
            }
            let f = d.new_file();
            let mode = u32::from(f.mode());
            if mode == GITLINK || mode == SYMLINK {
                continue;
            }
            let Some(p) = f.path().map(rel_string) else {
                continue;
            };
            if Scanner::is_candidate_path(&p) {
                selected.insert(p, f.id());
            } else {
                changed_other.insert(p);
            }
        }
    } else {
        let mut prefixes = Vec::new();
        for p in paths {
            let abs = normalize(&cwd.join(p));
            let abs = abs.canonicalize().unwrap_or(abs);
            let rel = abs
                .strip_prefix(&workdir)
                .map_err(|_| SourceError::OutsideRepository(p.clone()))?;
            prefixes.push(rel_string(rel));
        }
        for e in index.iter() {
            if e.mode == GITLINK || e.mode == SYMLINK {
                continue;
            }
            let p = String::from_utf8_lossy(&e.path).into_owned();
            let hit = prefixes
                .iter()
                .any(|pre| pre.is_empty() || p == *pre || p.starts_with(&format!("{pre}/")));
            if hit && Scanner::is_candidate_path(&p) {
                selected.insert(p, e.id);
            }
        }
    }

    let mut result = ScanResult::default();
    let mut follows = Vec::new();
    for (path, id) in &selected {
        result.files_scanned += 1;
        let blob = repo.find_blob(*id)?;
        let mut r = scanner.scan_file(path, blob.content());
        follows.append(&mut r.follow);
        result.add(r);
    }
    // A changed file that only a kustomization reads (an env file, a key file): judge it through
    // every kustomization of the index that reads it, even unchanged ones.
    if !changed_other.is_empty() {
        for e in index.iter() {
            let p = String::from_utf8_lossy(&e.path).into_owned();
            if !is_kustomization_name(&p)
                || selected.contains_key(&p)
                || e.mode == GITLINK
                || e.mode == SYMLINK
            {
                continue;
            }
            let blob = repo.find_blob(e.id)?;
            let r = scanner.scan_file(&p, blob.content());
            follows.extend(
                r.follow
                    .into_iter()
                    .filter(|f| changed_other.contains(&f.path)),
            );
        }
    }
    let mut seen = BTreeSet::new();
    for req in follows {
        if !seen.insert((req.path.clone(), req.entry.clone())) {
            continue;
        }
        // Not in the index: not part of the commit.
        let Some(entry) = index.get_path(Path::new(&req.path), 0) else {
            continue;
        };
        let blob = repo.find_blob(entry.id)?;
        result.add(scanner.scan_followed(&req, blob.content()));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(rel_string(Path::new("a/b/c.yaml")), "a/b/c.yaml");
    }
}
