//! The working-tree source: a parallel walk (honouring `.gitignore`) of the paths given.

use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{kustomizations_above, rel_string, ScanResult, SourceError};
use crate::engine::{FileScan, FollowRequest, Scanner, MAX_FILE_SIZE};
use crate::finding::Note;

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

pub(super) fn walk(
    scanner: &Scanner,
    paths: &[PathBuf],
    cwd: &Path,
) -> Result<ScanResult, SourceError> {
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
        let (dir, repo) = display_root(&abs, cwd);
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

    let shared: Mutex<Found> = Mutex::new(Default::default());
    // Files named on the command line (pre-commit passes the changed ones): kustomizations around
    // them may read them (an env file, a patch file).
    let named_others: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let scanned = AtomicUsize::new(0);
    builder.build_parallel().run(|| {
        let mut buf = Vec::with_capacity(64 * 1024);
        let shared = &shared;
        let named_others = &named_others;
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
            if entry.depth() == 0 {
                named_others
                    .lock()
                    .expect("not poisoned")
                    .push((ri, rel.clone()));
            }
            if !is_scanned_path(scanner, &rel) {
                return ignore::WalkState::Continue;
            }
            scanned.fetch_add(1, Ordering::Relaxed);
            let r = scan_one(scanner, path, &rel, &mut buf);
            let mut g = shared.lock().expect("not poisoned");
            if roots[ri].repo.is_some() {
                g.2.insert(path_key(ri, &rel));
            }
            g.add(ri, r);
            drop(g);
            if buf.capacity() > 1024 * 1024 {
                buf = Vec::with_capacity(64 * 1024);
            }
            ignore::WalkState::Continue
        })
    });
    let mut found = shared.into_inner().expect("not poisoned");
    // Inside a repository, what git tracks is scanned even when `.gitignore` matches it (a file
    // added with `git add -f` is committed all the same).
    let visited = std::mem::take(&mut found.2);
    for (ri, root) in roots.iter().enumerate() {
        let Some(repo) = &root.repo else { continue };
        let Ok(index) = repo.lock().expect("not poisoned").index() else {
            continue;
        };
        let mut buf = Vec::new();
        for entry in index.iter() {
            let Ok(rel) = std::str::from_utf8(&entry.path) else {
                continue;
            };
            let abs = root.dir.join(rel);
            if !is_scanned_path(scanner, rel)
                || visited.contains(&path_key(ri, rel))
                || root_of(&abs) != Some(ri)
                || !abs_paths.iter().any(|p| abs.starts_with(p))
                || !std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_file())
            {
                continue;
            }
            found.0.files_scanned += 1;
            found.add(ri, scan_one(scanner, &abs, rel, &mut buf));
        }
    }
    drop(visited);
    let (mut result, mut follows, _) = found;
    // A named file that a kustomization reads: judge it through the kustomizations around it.
    for (ri, rel) in named_others.into_inner().expect("not poisoned") {
        for k in kustomizations_above(&rel) {
            let mut buf = Vec::new();
            if let Ok(true) = read_capped(&roots[ri].dir.join(&k), &mut buf) {
                let r = scanner.scan_file(&k, &buf);
                follows.extend(
                    r.follow
                        .into_iter()
                        .filter(|f| f.path == rel)
                        .map(|f| (ri, f)),
                );
            }
        }
    }
    result.files_scanned += scanned.into_inner();

    // Files read by secretGenerators and patches, from the working tree.
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
            // Secret data by the generator's word: too large to judge, so it blocks.
            Ok(false) => result.add(scanner.oversized(&req.path, req.kind.is_secret_data())),
            Err(_) => result.notes.push(Note::info(
                &req.entry.path,
                format!(
                    "line {}: the kustomization reads {}, which could not be read; not scanned",
                    req.entry.line, req.path
                ),
            )),
        }
    }
    Ok(result)
}

/// What the walk found: results, the files kustomizations read, and (inside repositories) the
/// files it scanned, as [`path_key`]s.
type Found = (ScanResult, Vec<(usize, FollowRequest)>, HashSet<u64>);

/// A file of a root as 8 bytes, so that remembering every file walked stays small.
fn path_key(root: usize, rel: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (root, rel).hash(&mut h);
    h.finish()
}

trait AddScan {
    fn add(&mut self, root: usize, r: FileScan);
}

impl AddScan for Found {
    fn add(&mut self, root: usize, r: FileScan) {
        let FileScan {
            findings,
            notes,
            follow,
        } = r;
        self.0.findings.extend(findings);
        self.0.notes.extend(notes);
        self.1.extend(follow.into_iter().map(|f| (root, f)));
    }
}

/// Whether the walk reads a file: a manifest, an env file (which may be a SOPS store), or any
/// other file unless `--only secrets` (searched for known credential formats).
fn is_scanned_path(scanner: &Scanner, rel: &str) -> bool {
    scanner.reads_path(rel)
}

/// Scans one file of the working tree: a manifest, or an env file.
fn scan_one(scanner: &Scanner, path: &Path, rel: &str, buf: &mut Vec<u8>) -> FileScan {
    match read_capped(path, buf) {
        Ok(true) => scanner.scan_path(rel, buf),
        // Not a manifest: only known credential formats count, and a file this large is data.
        Ok(false) if !Scanner::is_candidate_path(rel) && !Scanner::is_env_path(rel) => {
            FileScan::default()
        }
        // Too large to read whole: a file that may hold a Secret blocks.
        Ok(false) => match std::fs::File::open(path) {
            Ok(f) => scanner.scan_oversized(rel, std::io::BufReader::new(f)),
            Err(e) => FileScan::default().with_note(Note::error(
                Some(rel.to_string()),
                format!("could not read: {e}"),
            )),
        },
        Err(e) => FileScan::default().with_note(Note::error(
            Some(rel.to_string()),
            format!("could not read: {e}"),
        )),
    }
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
