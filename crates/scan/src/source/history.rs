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
//!
//! How, for speed and bounded memory: git lists every commit's changes with `git diff-tree
//! --stdin` (a long history split into one run per core), each run read as it streams on a
//! thread of its own. The commits are taken in batches of
//! about [`BATCH`] changed blobs; each (path, blob) of a batch not judged before is read once
//! through one long-lived `git cat-file --batch` (which also fetches what a partial clone left
//! on its promisor remote) and judged on rayon's threads, a blob at several paths read once.
//! Then the batch's commits are judged in order from those verdicts, and only what needs a
//! commit's tree goes to libgit2: a kustomization that may read a changed file (known from the
//! listing without reading trees), a generator's files, and the parents' side of a commit with
//! findings. Without a `git` to run, libgit2 does everything, one commit at a time.

use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::mpsc;

use rayon::iter::{ParallelBridge, ParallelIterator};

use super::git::{self, BlobCache, Changed, Snapshot, TreeSnapshot, Verdict};
use super::{Commits, ScanResult, SourceError};
use crate::engine::Scanner;
use crate::finding::{Commit, Note};

/// About how many (path, blob)s a batch of commits reads: enough to keep every core busy,
/// few enough that a batch's verdicts stay small.
const BATCH: usize = 4096;

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
    // Each commit is read once for its parents; libgit2's object cache would keep them all.
    // The setting is process-wide: a history scan is the last thing the `scan` verb does.
    git2::opts::enable_caching(false);
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
    let oids = walk.collect::<Result<Vec<_>, _>>()?;
    let shallow = shallow_boundary(&repo);

    let mut listing = Listing::start(&repo, &oids, &shallow)?;
    let mut blobs = Blobs::start(&repo);
    let mut judge = Judge {
        scanner,
        repo: &repo,
        prefixes: &prefixes,
        shallow: &shallow,
        cache: BlobCache::default(),
        reported: HashSet::new(),
        result: ScanResult::default(),
    };
    let mut next = oids.iter();
    loop {
        // A batch of commits, and the (path, blob)s of theirs not judged yet, by blob.
        judge.cache.make_room(2 * BATCH);
        let mut batch = Vec::new();
        let mut wanted: Vec<(git2::Oid, Vec<String>)> = Vec::new();
        let mut slot: HashMap<git2::Oid, usize> = HashMap::new();
        let mut keys = HashSet::new();
        while keys.len() < BATCH && batch.len() < 4 * BATCH {
            let Some(&oid) = next.next() else { break };
            let change = listing.changes(&repo, oid, &prefixes)?;
            for (path, id) in &change.changed {
                let Some(id) = *id else { continue };
                let key = BlobCache::key(path, id);
                if !scanner.reads_path(path) || judge.cache.contains(key) || !keys.insert(key) {
                    continue;
                }
                let i = *slot.entry(id).or_insert_with(|| {
                    wanted.push((id, Vec::new()));
                    wanted.len() - 1
                });
                wanted[i].1.push(path.clone());
            }
            batch.push((oid, change));
        }
        if batch.is_empty() {
            break;
        }
        for (key, v) in blobs.judge(scanner, wanted) {
            judge.cache.put(key, v);
        }
        for (oid, change) in batch {
            judge.commit(oid, &change, &listing.kustomizations)?;
        }
    }
    Ok(judge.result)
}

/// The commit-order half of a history scan: each commit judged from the verdicts on its blobs.
struct Judge<'s, 'r> {
    scanner: &'s Scanner,
    repo: &'r git2::Repository,
    prefixes: &'s [String],
    shallow: &'s HashSet<git2::Oid>,
    cache: BlobCache,
    /// The fingerprints reported so far: a value is reported at the first commit that adds it.
    reported: HashSet<String>,
    result: ScanResult,
}

impl<'r> Judge<'_, 'r> {
    /// Judges the files `oid` adds or changes (`changed`).
    fn commit(
        &mut self,
        oid: git2::Oid,
        change: &Change,
        kustomizations: &Kustomizations<'r>,
    ) -> Result<(), SourceError> {
        let changed = &change.changed;
        let repo = self.repo;
        self.result.commits_scanned += 1;
        if self.shallow.contains(&oid) {
            self.result.notes.push(Note::info(
                format!("commit {oid}"),
                "the shallow clone ends here: its whole tree is scanned as if this commit added \
                 it; fetch more history (`git fetch --unshallow`, actions/checkout \
                 `fetch-depth: 0`) to see which commit did",
            ));
        }
        if changed.is_empty() {
            return Ok(());
        }
        let snap = CommitSnapshot {
            repo,
            oid,
            tree: OnceCell::new(),
            kustomizations,
            known: None,
        };
        let mut found = git::scan_changes(self.scanner, repo, &snap, changed, &mut self.cache)?;
        self.result.files_scanned += found.files_scanned;
        if found.findings.is_empty() && found.notes.is_empty() {
            return Ok(());
        }
        let commit = repo.find_commit(oid)?;
        let info = commit_info(&commit);
        for mut n in found.notes.drain(..) {
            n.message = format!("{} (commit {})", n.message, info.short_id());
            self.result.notes.push(n);
        }
        if found.findings.is_empty() {
            return Ok(());
        }
        // What the parents already had, judged as if at this commit's paths.
        let mut before = HashSet::new();
        let old_changed: Changed = changed.keys().map(|p| (p.clone(), None)).collect();
        let mut had = |snap: &dyn Snapshot, cache: &mut BlobCache| -> Result<(), SourceError> {
            let old = git::scan_changes(self.scanner, repo, snap, &old_changed, cache)?;
            before.extend(old.findings.into_iter().map(|f| f.fingerprint));
            Ok(())
        };
        match (&change.parent, commit.parent_count()) {
            _ if self.shallow.contains(&oid) => {}
            (_, 0) => {}
            // One parent, and the listing says what it had at these paths.
            (Some(known), 1) => {
                let snap = CommitSnapshot {
                    repo,
                    oid: commit.parent_id(0)?,
                    tree: OnceCell::new(),
                    kustomizations,
                    known: Some(known),
                };
                had(&snap, &mut self.cache)?;
            }
            // A merge, or a possible rename (looked for only now that there is something to
            // compare: it compares contents): libgit2 reads the trees.
            _ => {
                let (_, renamed) = changes(repo, &commit, self.prefixes, true)?;
                for parent in commit.parents() {
                    let snap = TreeSnapshot {
                        tree: parent.tree()?,
                        renamed: Some(&renamed),
                    };
                    had(&snap, &mut self.cache)?;
                }
            }
        }
        for mut f in found.findings {
            if !before.contains(&f.fingerprint) && self.reported.insert(f.fingerprint.clone()) {
                f.commit = Some(info.clone());
                self.result.findings.push(f);
            }
        }
        Ok(())
    }
}

/// A commit's tree, read only when a change needs it.
struct CommitSnapshot<'k, 'r> {
    repo: &'r git2::Repository,
    oid: git2::Oid,
    tree: OnceCell<git2::Tree<'r>>,
    kustomizations: &'k Kustomizations<'r>,
    /// The blobs of paths the listing already told (for the parent of a change).
    known: Option<&'k HashMap<String, Option<git2::Oid>>>,
}

impl Snapshot for CommitSnapshot<'_, '_> {
    fn blob(&self, path: &str) -> Result<Option<git2::Oid>, SourceError> {
        if let Some(id) = self.known.and_then(|k| k.get(path)) {
            return Ok(*id);
        }
        let tree = match self.tree.get() {
            Some(t) => t,
            None => {
                let t = self.repo.find_commit(self.oid)?.tree()?;
                self.tree.get_or_init(|| t)
            }
        };
        git::tree_blob(tree, path)
    }

    fn may_have(&self, path: &str) -> bool {
        self.kustomizations.may_exist(path)
    }
}

/// Where the commits of a range may hold a kustomization, without reading their trees: a
/// commit's file is one that a commit of the range added or changed (the listing shows it), or
/// one that a commit just outside the range (a boundary: the parent the range starts from, the
/// other side of a merge) already had.
struct Kustomizations<'r> {
    /// Whether the listing showed every path (else every path may be one).
    known: bool,
    /// Kustomization files the range's commits touch, whatever they did with them.
    touched: HashSet<String>,
    /// The trees of the commits the range starts from.
    boundary: Vec<git2::Tree<'r>>,
    /// What [`Kustomizations::boundary`] says of each path asked about.
    in_boundary: RefCell<HashMap<String, bool>>,
}

impl Kustomizations<'_> {
    /// More boundary trees than this, and every path may be a kustomization.
    const MAX_BOUNDARY: usize = 64;

    /// Whether a file a kustomization's name and path may exist in a commit of the range.
    fn may_exist(&self, path: &str) -> bool {
        if !self.known || !is_kustomization(path) || self.touched.contains(path) {
            return true;
        }
        *self
            .in_boundary
            .borrow_mut()
            .entry(path.to_string())
            .or_insert_with(|| {
                self.boundary
                    .iter()
                    .any(|t| !matches!(git::tree_blob(t, path), Ok(None)))
            })
    }
}

/// Whether `path` has a name kustomize reads as a kustomization.
fn is_kustomization(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// Every commit's changes: from `git diff-tree --stdin` runs (see [`run_ends`]), each read on
/// a thread as it streams, else (git does not run, or fails) from libgit2 one commit at a time.
struct Listing<'r> {
    /// The diff-tree runs, each over a run of the commits given, in order: each the index
    /// after its last commit and its groups. `None` once libgit2 lists.
    git: Option<Vec<(usize, mpsc::Receiver<Listed>)>>,
    /// Which run lists the commit asked for next.
    part: usize,
    /// How many commits were asked for.
    asked: usize,
    /// A group read but not yet asked for (a later commit's).
    pending: Option<Listed>,
    kustomizations: Kustomizations<'r>,
}

/// What the diff-tree thread sends.
enum Listed {
    /// A commit with changes.
    Commit(git2::Oid, Vec<RawChange>),
    /// The end of the listing; `false` when git failed or wrote what could not be read.
    End(bool),
}

/// One file of `git diff-tree --raw`.
struct RawChange {
    path: String,
    old_mode: u32,
    mode: u32,
    old: git2::Oid,
    new: git2::Oid,
    /// `A`dded, `M`odified, `T`ype changed, `D`eleted.
    status: u8,
}

/// The files a commit adds or changes, and when the listing tells, what its first parent had
/// at each of those paths.
struct Change {
    changed: Changed,
    /// The first parent's blob at each changed path (`None`: no regular file there); `None`
    /// when the listing cannot tell (libgit2 listed it, or a file it deletes may have been
    /// renamed to one it adds).
    parent: Option<HashMap<String, Option<git2::Oid>>>,
}

impl<'r> Listing<'r> {
    fn start(
        repo: &'r git2::Repository,
        oids: &[git2::Oid],
        shallow: &HashSet<git2::Oid>,
    ) -> Result<Listing<'r>, SourceError> {
        let in_range: HashSet<git2::Oid> = oids.iter().copied().collect();
        // git lists a long history in parallel runs: the tree diffs are most of its work.
        let ends = run_ends(oids.len());
        let mut inputs = Vec::new();
        let mut input = String::new();
        let mut boundary = HashSet::new();
        for (i, oid) in oids.iter().enumerate() {
            if i > 0 && ends.contains(&i) {
                inputs.push((i, std::mem::take(&mut input)));
            }
            let commit = repo.find_commit(*oid)?;
            let parents: Vec<git2::Oid> = if shallow.contains(oid) {
                Vec::new()
            } else {
                commit.parent_ids().collect()
            };
            boundary.extend(parents.iter().filter(|p| !in_range.contains(p)));
            match parents.first() {
                Some(p) => input.push_str(&format!("{oid} {p}\n")),
                None => input.push_str(&format!("{oid}\n")),
            }
        }
        let trees = if boundary.len() <= Kustomizations::MAX_BOUNDARY {
            boundary
                .iter()
                .map(|b| repo.find_commit(*b).and_then(|c| c.tree()).ok())
                .collect::<Option<Vec<_>>>()
        } else {
            None
        };
        inputs.push((oids.len(), input));
        let git = inputs
            .into_iter()
            .map(|(end, input)| Some((end, diff_tree(repo.path(), input)?)))
            .collect::<Option<Vec<_>>>();
        Ok(Listing {
            kustomizations: Kustomizations {
                known: git.is_some() && trees.is_some(),
                touched: HashSet::new(),
                boundary: trees.unwrap_or_default(),
                in_boundary: RefCell::default(),
            },
            git,
            part: 0,
            asked: 0,
            pending: None,
        })
    }

    /// The regular files `oid` adds or changes against its first parent (all of a root
    /// commit's), under `prefixes`, with their new blobs. Commits must be asked for in the
    /// order given to [`Listing::start`].
    fn changes(
        &mut self,
        repo: &git2::Repository,
        oid: git2::Oid,
        prefixes: &[String],
    ) -> Result<Change, SourceError> {
        let at = self.asked;
        self.asked += 1;
        while let Some(runs) = &self.git {
            let Some((end, rx)) = runs.get(self.part) else {
                break;
            };
            if at >= *end {
                self.part += 1;
                self.pending = None;
                continue;
            }
            match self.pending.take() {
                None => self.pending = Some(rx.recv().unwrap_or(Listed::End(false))),
                Some(Listed::Commit(id, files)) if id == oid => {
                    return Ok(self.keep(files, prefixes));
                }
                // git went past this commit: it changes nothing.
                Some(p @ (Listed::Commit(..) | Listed::End(true))) => {
                    self.pending = Some(p);
                    return Ok(Change {
                        changed: Changed::new(),
                        parent: Some(HashMap::new()),
                    });
                }
                Some(Listed::End(false)) => {
                    self.git = None;
                    self.kustomizations.known = false;
                }
            }
        }
        Ok(Change {
            changed: changes(repo, &repo.find_commit(oid)?, prefixes, false)?.0,
            parent: None,
        })
    }

    /// Of a commit's listed files, notes the kustomizations and keeps the added or changed
    /// regular files under `prefixes`, with what the first parent had at their paths.
    fn keep(&mut self, files: Vec<RawChange>, prefixes: &[String]) -> Change {
        let mut changed = Changed::new();
        let mut parent = HashMap::new();
        let mut deletes = false;
        for f in files {
            if is_kustomization(&f.path) {
                self.kustomizations.touched.insert(f.path.clone());
            }
            deletes |= f.status == b'D';
            if matches!(f.status, b'A' | b'M' | b'T')
                && git::is_regular(f.mode)
                && git::under(prefixes, &f.path)
            {
                let old = (f.status != b'A' && git::is_regular(f.old_mode)).then_some(f.old);
                parent.insert(f.path.clone(), old);
                changed.insert(f.path, Some(f.new));
            }
        }
        let renames = deletes && parent.values().any(Option::is_none);
        Change {
            changed,
            parent: (!renames).then_some(parent),
        }
    }
}

/// Where the diff-tree runs over `n` commits end (each an index after its last commit). A long
/// history is listed by one run per core (at most 4; each git holds up to about 100 MB on a
/// large history); later commits have larger trees to compare, so the runs shorten towards the
/// end (run `k` of `r` ends at `n·√(k/r)`).
fn run_ends(n: usize) -> Vec<usize> {
    let runs = if n < 1024 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |c| c.get().min(4))
    };
    let mut ends: Vec<usize> = (1..runs)
        .map(|k| (n as f64 * (k as f64 / runs as f64).sqrt()) as usize)
        .filter(|&e| e > 0 && e < n)
        .collect();
    ends.push(n);
    ends.dedup();
    ends
}

/// Runs `git diff-tree --stdin` over `input` (a line per commit: the commit and its first
/// parent, or the commit alone for a root), its output parsed on a thread as it streams and
/// sent a commit at a time. `None` when git does not run.
fn diff_tree(git_dir: &Path, input: String) -> Option<mpsc::Receiver<Listed>> {
    let mut child = git::command(git_dir)
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
    let out = BufReader::with_capacity(1 << 16, child.stdout.take()?);
    // Room for a run's whole listing of a few thousand commits, so that the later runs go on
    // while the first is consumed.
    let (tx, rx) = mpsc::sync_channel(8 * BATCH);
    std::thread::spawn(move || {
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let last = parse_diff_tree(out, &tx);
        // Whatever was parsed, git must have ended well for the listing to be whole; the last
        // commit's files are only known to be all of them then (else libgit2 lists it).
        let ok = last.is_some()
            && writer.join().is_ok_and(|w| w.is_ok())
            && child.wait().is_ok_and(|s| s.success());
        if !ok {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(Some((c, files))) = last.filter(|_| ok) {
            let _ = tx.send(Listed::Commit(c, files));
        }
        let _ = tx.send(Listed::End(ok));
    });
    Some(rx)
}

/// Reads `git diff-tree --stdin -r -z --no-abbrev` output: a commit id, then for each file
/// `:OLDMODE NEWMODE OLDID NEWID STATUS` and the path. Sends each commit but the last, which
/// it returns (`Some(None)`: none); `None` on anything unexpected, a token cut short included
/// (or when the receiver is gone).
fn parse_diff_tree(
    mut out: impl BufRead,
    tx: &mpsc::SyncSender<Listed>,
) -> Option<Option<(git2::Oid, Vec<RawChange>)>> {
    let mut token = Vec::new();
    let mut next = move || -> Option<Option<Vec<u8>>> {
        token.clear();
        match out.read_until(0, &mut token) {
            Ok(0) => Some(None),
            // Every token ends with a NUL: one without was cut short.
            Ok(_) if token.pop() == Some(0) => Some(Some(token.clone())),
            Ok(_) | Err(_) => None,
        }
    };
    let mut current: Option<(git2::Oid, Vec<_>)> = None;
    while let Some(t) = next()? {
        if t.is_empty() {
            continue;
        }
        if let Some(meta) = t.strip_prefix(b":") {
            let path = next()??;
            let meta = std::str::from_utf8(meta).ok()?;
            let f: Vec<&str> = meta.split(' ').collect();
            let [old_mode, mode, old, new, status] = f[..] else {
                return None;
            };
            current.as_mut()?.1.push(RawChange {
                path: String::from_utf8(path).ok()?,
                old_mode: u32::from_str_radix(old_mode, 8).ok()?,
                mode: u32::from_str_radix(mode, 8).ok()?,
                old: git2::Oid::from_str(old).ok()?,
                new: git2::Oid::from_str(new).ok()?,
                status: *status.as_bytes().first()?,
            });
        } else {
            let id = git2::Oid::from_str(std::str::from_utf8(&t).ok()?.trim()).ok()?;
            if let Some((c, files)) = current.replace((id, Vec::new())) {
                tx.send(Listed::Commit(c, files)).ok()?;
            }
        }
    }
    Some(current)
}

/// Reads blobs: through one long-lived `git cat-file --batch` (which fetches a blob a partial
/// clone left on its promisor remote), else with libgit2.
struct Blobs {
    git_dir: PathBuf,
    cat: Option<CatFile>,
}

struct CatFile {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for CatFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Blobs {
    fn start(repo: &git2::Repository) -> Blobs {
        let cat = git::command(repo.path())
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .and_then(|mut child| {
                let stdin = child.stdin.take()?;
                let stdout = BufReader::with_capacity(1 << 16, child.stdout.take()?);
                Some(CatFile {
                    child,
                    stdin,
                    stdout,
                })
            });
        Blobs {
            git_dir: repo.path().to_path_buf(),
            cat,
        }
    }

    /// The verdicts on each blob of `wanted` at each of its paths, keyed by
    /// [`BlobCache::key`]: each blob read once, judged on rayon's threads as the blobs come.
    fn judge(
        &mut self,
        scanner: &Scanner,
        wanted: Vec<(git2::Oid, Vec<String>)>,
    ) -> Vec<(u64, Verdict)> {
        if wanted.is_empty() {
            return Vec::new();
        }
        let ids: Vec<git2::Oid> = wanted.iter().map(|w| w.0).collect();
        let mut reader = Reader {
            cat: None,
            repo: None,
            git_dir: &self.git_dir,
        };
        let mut broken = false;
        let verdicts = std::thread::scope(|s| {
            if let Some(cat) = self.cat.as_mut() {
                let stdin = &mut cat.stdin;
                s.spawn(move || {
                    let mut w = BufWriter::new(stdin);
                    for id in ids {
                        writeln!(w, "{id}")?;
                    }
                    w.flush()
                });
                reader.cat = Some((&mut cat.stdout, &mut cat.child));
            }
            let v = wanted
                .into_iter()
                .map(|(id, paths)| {
                    let content = reader.read(id);
                    (id, paths, content)
                })
                .par_bridge()
                .flat_map_iter(|(id, paths, content)| {
                    paths
                        .into_iter()
                        .map(|path| {
                            let v = match &content {
                                Some(c) => Verdict::judge(scanner, &path, c),
                                None => Verdict::unreadable(scanner, &path, id),
                            };
                            (BlobCache::key(&path, id), v)
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            broken = reader.cat.is_none();
            v
        });
        if broken {
            self.cat = None;
        }
        verdicts
    }
}

/// Reads the blobs of one batch in the order they were asked of `git cat-file --batch`.
struct Reader<'a> {
    /// `None` when git does not run, or once its answer could not be read (then git is
    /// stopped, so that the batch's writer does not wait on it).
    cat: Option<(&'a mut BufReader<ChildStdout>, &'a mut Child)>,
    /// libgit2, opened when git cannot answer.
    repo: Option<git2::Repository>,
    git_dir: &'a Path,
}

impl Reader<'_> {
    /// The blob's bytes; `None` when it cannot be read.
    fn read(&mut self, id: git2::Oid) -> Option<Vec<u8>> {
        if let Some((out, child)) = self.cat.as_mut() {
            match cat_file_answer(out, id) {
                Ok(content) => return content,
                Err(()) => {
                    let _ = child.kill();
                    self.cat = None;
                }
            }
        }
        if self.repo.is_none() {
            self.repo = git2::Repository::open(self.git_dir).ok();
        }
        git::read_blob(self.repo.as_ref()?, id).map(|c| c.into_owned())
    }
}

/// One answer of `git cat-file --batch`: `ID blob SIZE`, the bytes and a newline, or `ID
/// missing`. `Ok(None)` for a missing blob, `Err` when the answer is not for `id` or cannot be
/// read (git is gone).
fn cat_file_answer(out: &mut impl BufRead, id: git2::Oid) -> Result<Option<Vec<u8>>, ()> {
    let mut line = String::new();
    out.read_line(&mut line).map_err(|_| ())?;
    let mut f = line.trim_end().split(' ');
    if f.next() != Some(id.to_string().as_str()) {
        return Err(());
    }
    match (f.next(), f.next()) {
        (Some("missing"), None) => Ok(None),
        (Some(kind), Some(size)) => {
            let size: usize = size.parse().map_err(|_| ())?;
            let mut content = vec![0; size + 1];
            out.read_exact(&mut content).map_err(|_| ())?;
            if content.pop() != Some(b'\n') {
                return Err(());
            }
            Ok((kind == "blob").then_some(content))
        }
        _ => Err(()),
    }
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
    #[test]
    fn a_listing_cut_short_is_not_taken_and_the_last_commit_is_returned() {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let a = "1".repeat(40);
        let b = "2".repeat(40);
        let z = "0".repeat(40);
        let file = format!(":000000 100644 {z} {b} A\0x.yaml\0");
        let whole = format!("{a}\0{file}{b}\0{file}");
        let last = super::parse_diff_tree(whole.as_bytes(), &tx)
            .unwrap()
            .unwrap();
        assert_eq!(last.0.to_string(), b);
        assert_eq!(last.1.len(), 1);
        assert!(matches!(rx.try_recv(), Ok(super::Listed::Commit(c, _)) if c.to_string() == a));
        // A path without its NUL was cut short: the listing is not taken.
        let cut = &whole[..whole.len() - 1];
        assert!(super::parse_diff_tree(cut.as_bytes(), &tx).is_none());
    }

    use super::*;

    #[test]
    fn diff_tree_runs_cover_every_commit_in_order() {
        assert_eq!(run_ends(10), vec![10]);
        for n in [1024, 5000, 31_000] {
            let ends = run_ends(n);
            assert_eq!(ends.last(), Some(&n));
            assert!(ends.windows(2).all(|w| w[0] < w[1]), "{ends:?}");
        }
    }

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
