//! What the staged and the history scans share: a snapshot of the repository's files (the index,
//! or a commit's tree) and the scan of the files a change touches, judged with the files their
//! kustomizations read from that same snapshot.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::{kustomizations_above, normalize, rel_string, ScanResult, SourceError};
use crate::engine::{FileScan, Scanner};

const GITLINK: u32 = 0o160000;
const SYMLINK: u32 = 0o120000;

/// Whether a git file mode is a regular file (not a submodule, not a symbolic link).
pub(super) fn is_regular(mode: u32) -> bool {
    mode != GITLINK && mode != SYMLINK && mode & 0o170000 == 0o100000
}

/// One version of the repository's files.
pub(super) trait Snapshot {
    /// The blob of the regular file at `path` (repository-relative), if this version has one.
    fn blob(&self, path: &str) -> Result<Option<git2::Oid>, SourceError>;

    /// Whether this version may have a file at `path`: `false` only when it surely has none,
    /// so that [`Snapshot::blob`] need not be asked (a history scan knows which kustomizations
    /// its commits can hold without reading their trees).
    fn may_have(&self, _path: &str) -> bool {
        true
    }
}

/// The git index, read on first use (a staged scan of YAML files alone never needs it).
pub(super) struct IndexSnapshot<'r> {
    repo: &'r git2::Repository,
    index: OnceCell<git2::Index>,
}

impl<'r> IndexSnapshot<'r> {
    pub(super) fn new(repo: &'r git2::Repository) -> Self {
        IndexSnapshot {
            repo,
            index: OnceCell::new(),
        }
    }

    /// The index, loaded.
    pub(super) fn index(&self) -> Result<&git2::Index, SourceError> {
        if let Some(i) = self.index.get() {
            return Ok(i);
        }
        let i = self.repo.index()?;
        Ok(self.index.get_or_init(|| i))
    }
}

impl Snapshot for IndexSnapshot<'_> {
    fn blob(&self, path: &str) -> Result<Option<git2::Oid>, SourceError> {
        Ok(self
            .index()?
            .get_path(Path::new(path), 0)
            .filter(|e| is_regular(e.mode))
            .map(|e| e.id))
    }
}

/// A commit's tree. `renamed` maps a path of the change being judged to the path the same file
/// had in this tree (for the parent side of a rename).
pub(super) struct TreeSnapshot<'r, 'm> {
    pub tree: git2::Tree<'r>,
    pub renamed: Option<&'m HashMap<String, String>>,
}

impl Snapshot for TreeSnapshot<'_, '_> {
    fn blob(&self, path: &str) -> Result<Option<git2::Oid>, SourceError> {
        let path = self
            .renamed
            .and_then(|m| m.get(path))
            .map_or(path, String::as_str);
        tree_blob(&self.tree, path)
    }
}

/// The blob of the regular file at `path` in `tree`, if there is one.
pub(super) fn tree_blob(
    tree: &git2::Tree<'_>,
    path: &str,
) -> Result<Option<git2::Oid>, SourceError> {
    match tree.get_path(Path::new(path)) {
        Ok(e) if is_regular(e.filemode() as u32) => Ok(Some(e.id())),
        Ok(_) => Ok(None),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens the repository around `cwd`. In a hook, git names the repository and the index (a
/// temporary one for `git commit -a` or `git commit PATH`) through the environment.
/// `option` names what needs the repository, for the error outside one.
pub(super) fn open_repo(cwd: &Path, option: &'static str) -> Result<git2::Repository, SourceError> {
    // libgit2 re-hashes every object it reads (SHA-1 with collision detection, a fifth of a
    // history scan); git itself trusts its object store on reads, and so does the scanner.
    git2::opts::strict_hash_verification(false);
    let from_env = ["GIT_DIR", "GIT_INDEX_FILE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if from_env {
        git2::Repository::open_from_env()
    } else {
        git2::Repository::discover(cwd)
    }
    .map_err(|_| SourceError::NotARepository {
        path: cwd.to_path_buf(),
        option,
    })
}

/// The work tree of `repo`, canonical.
pub(super) fn workdir(repo: &git2::Repository, what: &str) -> Result<PathBuf, SourceError> {
    repo.workdir()
        .ok_or_else(|| {
            SourceError::Git(format!("the repository is bare; {what} needs a work tree"))
        })?
        .canonicalize()
        .map_err(|e| SourceError::Git(e.to_string()))
}

/// The repository-relative forms of `paths` (relative to `cwd`); `""` is the whole repository.
pub(super) fn repo_prefixes(
    paths: &[PathBuf],
    cwd: &Path,
    workdir: &Path,
) -> Result<Vec<String>, SourceError> {
    paths
        .iter()
        .map(|p| {
            let abs = normalize(&cwd.join(p));
            let abs = abs.canonicalize().unwrap_or(abs);
            abs.strip_prefix(workdir)
                .map(rel_string)
                .map_err(|_| SourceError::OutsideRepository(p.clone()))
        })
        .collect()
}

/// Whether `path` is at or under one of `prefixes` (no prefixes: everything is).
pub(super) fn under(prefixes: &[String], path: &str) -> bool {
    prefixes.is_empty()
        || prefixes.iter().any(|pre| {
            pre.is_empty()
                || path == pre
                || (path.starts_with(pre.as_str()) && path.as_bytes().get(pre.len()) == Some(&b'/'))
        })
}

/// Changed paths with their new blob (`None`: ask the snapshot).
pub(super) type Changed = BTreeMap<String, Option<git2::Oid>>;

/// Diff options for a change: type changes included, submodules ignored, limited to
/// `prefixes` (libgit2's pathspec; [`under`] has the last word on segments).
pub(super) fn diff_options(prefixes: &[String]) -> git2::DiffOptions {
    let mut opts = git2::DiffOptions::new();
    opts.include_typechange(true).ignore_submodules(true);
    for p in prefixes.iter().filter(|p| !p.is_empty()) {
        opts.pathspec(p);
    }
    opts
}

/// The regular files `diff` adds or changes under `prefixes`, with their new blob, and for
/// renamed or copied ones the path they came from.
pub(super) fn diff_changes(
    diff: &git2::Diff<'_>,
    prefixes: &[String],
) -> (Changed, HashMap<String, String>) {
    use git2::Delta::*;
    let mut changed = BTreeMap::new();
    let mut renamed = HashMap::new();
    for d in diff.deltas() {
        if !matches!(d.status(), Added | Modified | Renamed | Copied | Typechange) {
            continue;
        }
        let f = d.new_file();
        let (true, Some(path)) = (is_regular(u32::from(f.mode())), f.path()) else {
            continue;
        };
        let path = rel_string(path);
        if !under(prefixes, &path) {
            continue;
        }
        if matches!(d.status(), Renamed | Copied) {
            if let Some(old) = d.old_file().path() {
                renamed.insert(path.clone(), rel_string(old));
            }
        }
        changed.insert(path, Some(f.id()));
    }
    (changed, renamed)
}

/// Scans the files of a change as `snap` holds them. `changed` maps each changed path to its
/// blob when the caller knows it (else `snap` is asked). Changed manifests are scanned; a changed
/// file that kustomizations around it read (an env file, a key file, a patch) is judged through
/// them, changed or not; files that changed kustomizations read come from `snap` too. A (path,
/// blob) that `cache` holds is not read again.
pub(super) fn scan_changes(
    scanner: &Scanner,
    repo: &git2::Repository,
    snap: &dyn Snapshot,
    changed: &Changed,
    cache: &mut BlobCache,
) -> Result<ScanResult, SourceError> {
    let mut result = ScanResult::default();
    let mut follows = Vec::new();
    let mut others = BTreeSet::new();
    for (path, id) in changed {
        let env = !Scanner::is_candidate_path(path);
        if env {
            // A file a kustomization may read (an env file, a key file).
            others.insert(path.as_str());
            if !scanner.reads_path(path) {
                continue;
            }
        }
        let Some(id) = id.map_or_else(|| snap.blob(path), |id| Ok(Some(id)))? else {
            continue;
        };
        result.files_scanned += 1;
        let key = BlobCache::key(path, id);
        let verdict = match cache.get(key) {
            Some(v) => v,
            // The scanner skips (with a note) a blob over its size limit; an env file may be a
            // SOPS dotenv store.
            None => match read_blob(repo, id) {
                Some(content) => {
                    let v = Verdict::judge(scanner, path, &content);
                    cache.put(key, v.clone());
                    v
                }
                None => Verdict::unreadable(scanner, path, id),
            },
        };
        // A manifest without a `kind` may be a patch file that a kustomization applies.
        if verdict.kindless {
            others.insert(path.as_str());
        }
        if let Some(r) = verdict.scan {
            let mut r = *r;
            follows.append(&mut r.follow);
            result.add(r);
        }
    }
    let mut readers = BTreeMap::new();
    for path in &others {
        for k in kustomizations_above(path) {
            if !changed.contains_key(&k) && snap.may_have(&k) {
                if let Some(id) = snap.blob(&k)? {
                    readers.insert(k, id);
                }
            }
        }
    }
    for (k, id) in readers {
        let Some(content) = read_blob(repo, id) else {
            result.add(scanner.unreadable_blob(&k, &id.to_string()));
            continue;
        };
        let r = scanner.scan_file(&k, &content);
        follows.extend(
            r.follow
                .into_iter()
                .filter(|f| others.contains(f.path.as_str())),
        );
    }
    let mut seen = BTreeSet::new();
    for req in follows {
        if !seen.insert((req.path.clone(), req.entry.clone())) {
            continue;
        }
        // Not in this version: not part of it.
        if let Some(id) = snap.blob(&req.path)? {
            match read_blob(repo, id) {
                Some(content) => result.add(scanner.scan_followed(&req, &content)),
                None => result.add(scanner.unreadable_blob(&req.path, &id.to_string())),
            }
        }
    }
    Ok(result)
}

/// What one blob holds at one path, whatever commit holds it: the scan of its bytes (`None`
/// when it found nothing), and whether it is a manifest without a `kind` (maybe a patch that a
/// kustomization applies, so the kustomizations around it must be read too).
#[derive(Clone, Debug, Default)]
pub(super) struct Verdict {
    pub scan: Option<Box<FileScan>>,
    pub kindless: bool,
}

impl Verdict {
    /// Scans `content` as the file at `path`.
    pub(super) fn judge(scanner: &Scanner, path: &str, content: &[u8]) -> Verdict {
        let r = scanner.scan_path(path, content);
        let kindless =
            Scanner::is_candidate_path(path) && memchr::memmem::find(content, b"kind").is_none();
        Verdict::of(r, kindless)
    }

    /// A blob that could not be read: an `unreadable-blob` finding.
    pub(super) fn unreadable(scanner: &Scanner, path: &str, id: git2::Oid) -> Verdict {
        Verdict::of(scanner.unreadable_blob(path, &id.to_string()), false)
    }

    fn of(r: FileScan, kindless: bool) -> Verdict {
        let empty = r.findings.is_empty() && r.notes.is_empty() && r.follow.is_empty();
        Verdict {
            scan: (!empty).then(|| Box::new(r)),
            kindless,
        }
    }
}

/// The verdicts on blobs already judged at a path, so that a history scan judges each (path,
/// blob) once: most blobs of a history appear in many commits' trees, and the parent side of a
/// change is mostly blobs an earlier commit added. Bounded: emptied when it holds
/// [`BlobCache::MAX`] entries.
#[derive(Default)]
pub(super) struct BlobCache {
    verdicts: HashMap<u64, Verdict>,
}

impl BlobCache {
    pub(super) const MAX: usize = 200_000;

    /// The key of a (path, blob): a hash of both.
    pub(super) fn key(path: &str, id: git2::Oid) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        (path, id.as_bytes()).hash(&mut h);
        h.finish()
    }

    pub(super) fn get(&self, key: u64) -> Option<Verdict> {
        self.verdicts.get(&key).cloned()
    }

    pub(super) fn contains(&self, key: u64) -> bool {
        self.verdicts.contains_key(&key)
    }

    pub(super) fn put(&mut self, key: u64, v: Verdict) {
        if self.verdicts.len() >= Self::MAX {
            self.verdicts.clear();
        }
        self.verdicts.insert(key, v);
    }

    /// Empties the cache unless `n` more verdicts fit under [`BlobCache::MAX`] (so that the
    /// verdicts of a batch are all there when its commits are judged).
    pub(super) fn make_room(&mut self, n: usize) {
        if self.verdicts.len() + n >= Self::MAX {
            self.verdicts.clear();
        }
    }
}

/// `git` on the repository at `git_dir`, with its caches bounded: git's defaults (a 96 MB
/// delta base cache, the whole pack mapped) would take a few hundred MB on a large history.
pub(super) fn command(git_dir: &Path) -> std::process::Command {
    let mut git = std::process::Command::new("git");
    git.arg("--git-dir").arg(git_dir).args([
        "-c",
        "core.deltaBaseCacheLimit=16m",
        "-c",
        "core.packedGitLimit=32m",
        "-c",
        "core.packedGitWindowSize=4m",
    ]);
    git
}

/// A blob's bytes: from libgit2, else from git's own `cat-file`, which fetches a blob that a
/// partial clone (`--filter=blob:none`) left on its promisor remote. `None` when neither can
/// read it (the caller reports an `unreadable-blob` finding and goes on).
pub(super) fn read_blob(
    repo: &git2::Repository,
    id: git2::Oid,
) -> Option<std::borrow::Cow<'static, [u8]>> {
    if let Ok(blob) = repo.find_blob(id) {
        return Some(std::borrow::Cow::Owned(blob.content().to_vec()));
    }
    let out = command(repo.path())
        .args(["cat-file", "blob", &id.to_string()])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then_some(std::borrow::Cow::Owned(out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_matches_whole_path_segments() {
        let pre = vec!["apps/a".to_string()];
        assert!(under(&pre, "apps/a"));
        assert!(under(&pre, "apps/a/x.yaml"));
        assert!(!under(&pre, "apps/ab/x.yaml"));
        assert!(under(&[String::new()], "x.yaml"));
        assert!(under(&[], "x.yaml"));
    }

    #[test]
    fn regular_modes() {
        assert!(is_regular(0o100644) && is_regular(0o100755));
        assert!(!is_regular(GITLINK) && !is_regular(SYMLINK) && !is_regular(0o040000));
    }
}
