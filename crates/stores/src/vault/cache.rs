//! The token cache on disk: one small JSON file per (address, namespace, auth method, mount,
//! identity), so that renders running one after another (or at once, as Argo CD runs them)
//! log in once and share the token until it nears its end.
//!
//! Files live in a folder made with mode 0700 and are written with mode 0600, atomically
//! (a temporary file renamed into place). The file name is a SHA-256 of the key, which also
//! covers a fingerprint of the credential, so two roles, two service accounts or two
//! AppRole secret IDs never share a token. An exclusive `fd-lock` on a sibling `.lock` file
//! is held while a render reads, renews or replaces the entry: the first render logs in,
//! the others wait for it and reuse its token.
//!
//! The cache is trusted only as ssh trusts `~/.ssh`: the folder must be a real folder (not a
//! symlink) owned by the user running kustodian with no access for others, and each entry a
//! regular file owned by that user with mode 0600 and at most 64 KiB. Anything else (a file
//! others can read or write, a planted token owned by someone else, a FIFO, a symlink) is a
//! [`Refused`] cache: the store warns with the path and logs in without it.
//!
//! Tokens given directly (`VAULT_TOKEN`, a token file) are never written here.

use kustodian_manifest::read::describe_io;
use std::fmt;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::files::{self, FileError};

/// Entries whose token expired this long ago are removed when another entry is written.
const STALE_MS: u64 = 60 * 60 * 1000;

/// A cached token.
#[derive(Serialize, Deserialize)]
pub(crate) struct Entry {
    pub token: String,
    /// When the token stops working (Unix ms); `None`: it does not expire.
    pub expires_at_ms: Option<u64>,
    /// The lease it was granted or last renewed for, in ms (0: no expiry).
    pub lease_ms: u64,
    pub renewable: bool,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.token.zeroize();
    }
}

/// Why the cache is not used: the path and what is wrong with it.
#[derive(Debug)]
pub(crate) struct Refused {
    pub path: PathBuf,
    pub why: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.why)
    }
}

fn refused(path: &Path, why: impl fmt::Display) -> Refused {
    Refused {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One cache slot.
pub(crate) struct Slot {
    dir: PathBuf,
    name: String,
}

impl Slot {
    /// The slot for these key parts (joined unambiguously, then hashed).
    pub(crate) fn new(dir: &Path, parts: &[&str]) -> Self {
        let mut h = Sha256::new();
        h.update(b"kustodian-vault-token-v1");
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
        }
        Slot {
            dir: dir.to_path_buf(),
            name: hex::encode(h.finalize()),
        }
    }

    /// The entry's file.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.name))
    }

    /// Runs `f` while holding the slot's exclusive lock (waiting for other renders); refuses
    /// a folder or lock file that others could have planted or can read.
    pub(crate) fn locked<T>(&self, f: impl FnOnce(&Self) -> T) -> Result<T, Refused> {
        make_private_dir(&self.dir)?;
        let path = self.dir.join(format!("{}.lock", self.name));
        let file = open_private(&path, false).map_err(|e| refused(&path, FileError::Io(e)))?;
        let meta = file
            .metadata()
            .map_err(|e| refused(&path, describe_io(&e)))?;
        files::check_regular(&meta).map_err(|e| refused(&path, e))?;
        check_private(&meta, false).map_err(|why| refused(&path, why))?;
        let mut lock = fd_lock::RwLock::new(file);
        let _guard = lock.write().map_err(|e| refused(&path, describe_io(&e)))?;
        Ok(f(self))
    }

    /// The entry: `Ok(None)` when there is none (or it is unreadable JSON, which a new login
    /// replaces); `Err` when the file is not one kustodian would have written.
    pub(crate) fn read(&self) -> Result<Option<Entry>, Refused> {
        let path = self.path();
        match read_private(&path) {
            Ok(mut bytes) => {
                let entry = serde_json::from_slice(&bytes).ok();
                bytes.zeroize();
                Ok(entry)
            }
            Err(Refusal::Missing) => Ok(None),
            Err(Refusal::Bad(why)) => Err(refused(&path, why)),
        }
    }

    /// Replaces the entry (mode 0600, atomic).
    pub(crate) fn write(&self, e: &Entry) -> io::Result<()> {
        make_private_dir(&self.dir).map_err(|r| io::Error::other(r.why))?;
        let mut text = serde_json::to_string(e).map_err(io::Error::other)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        let written = tmp
            .write_all(text.as_bytes())
            .and_then(|_| tmp.as_file().sync_all());
        text.zeroize();
        written?;
        tmp.persist(self.path()).map_err(|e| e.error)?;
        self.sweep();
        Ok(())
    }

    /// Removes the entry.
    pub(crate) fn remove(&self) {
        let _ = fs::remove_file(self.path());
    }

    /// Removes other entries that expired long ago (rotated service-account tokens leave
    /// them behind). Best effort.
    fn sweep(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = now_ms();
        for f in dir.flatten() {
            let p = f.path();
            let is_entry = p.extension().is_some_and(|e| e == "json")
                && p.file_stem().is_some_and(|s| s != self.name.as_str());
            if !is_entry {
                continue;
            }
            let expired = read_private(&p)
                .ok()
                .and_then(|mut t| {
                    let e: Option<Entry> = serde_json::from_slice(&t).ok();
                    t.zeroize();
                    e
                })
                .and_then(|e| e.expires_at_ms)
                .is_some_and(|at| at + STALE_MS < now);
            if expired {
                let _ = fs::remove_file(&p);
            }
        }
    }
}

/// Why an entry was not read.
enum Refusal {
    Missing,
    Bad(String),
}

/// An entry's bytes: a regular file (a symlink is not followed, a FIFO does not block), owned
/// by this user, mode 0600 or stricter, at most 64 KiB.
fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let (file, meta) = files::open_regular(path, false).map_err(|e| {
        if e.is_missing() {
            Refusal::Missing
        } else {
            Refusal::Bad(e.to_string())
        }
    })?;
    check_private(&meta, false).map_err(Refusal::Bad)?;
    files::read_limited(file, &meta, files::LIMIT).map_err(|e| Refusal::Bad(e.to_string()))
}

/// Owned by the user running kustodian, and no access for group or others (ssh's rule for
/// `~/.ssh`).
fn check_private(meta: &Metadata, is_dir: bool) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!(
                "it is owned by another user (uid {}, not {me}); remove it",
                meta.uid()
            ));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            let fix = if is_dir {
                "chmod 700"
            } else {
                "remove it or chmod 600"
            };
            return Err(format!(
                "other users can access it (mode {mode:04o}); {fix}"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (meta, is_dir);
    Ok(())
}

/// Creates the folder (mode 0700) or checks the one that is there: a real folder, not a
/// symlink, private to this user.
fn make_private_dir(dir: &Path) -> Result<(), Refused> {
    match fs::symlink_metadata(dir) {
        Ok(meta) => {
            if meta.file_type().is_symlink() {
                return Err(refused(
                    dir,
                    "it is a symbolic link, which is not followed here; remove it",
                ));
            }
            if !meta.is_dir() {
                return Err(refused(dir, "it is not a folder"));
            }
            check_private(&meta, true).map_err(|why| refused(dir, why))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut b = fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                b.mode(0o700);
            }
            b.create(dir).map_err(|e| refused(dir, describe_io(&e)))?;
            let meta = fs::symlink_metadata(dir).map_err(|e| refused(dir, describe_io(&e)))?;
            check_private(&meta, true).map_err(|why| refused(dir, why))
        }
        Err(e) => Err(refused(dir, describe_io(&e))),
    }
}

fn open_private(path: &Path, truncate: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600).custom_flags(
            (rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::NONBLOCK
                | rustix::fs::OFlags::CLOEXEC)
                .bits() as i32,
        );
    }
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(token: &str, expires_at_ms: Option<u64>) -> Entry {
        Entry {
            token: token.into(),
            expires_at_ms,
            lease_ms: 60_000,
            renewable: true,
        }
    }

    #[test]
    fn keys_separate_every_part() {
        let d = Path::new("/c");
        let a = Slot::new(d, &["http://v", "", "k8s", "auth/kubernetes", "role-a"]);
        let b = Slot::new(d, &["http://v", "", "k8s", "auth/kubernetes", "role-b"]);
        let c = Slot::new(d, &["http://v", "", "k8s", "auth/kubernetesrole-a", ""]);
        assert_ne!(a.path(), b.path());
        assert_ne!(a.path(), c.path());
        assert_eq!(
            a.path(),
            Slot::new(d, &["http://v", "", "k8s", "auth/kubernetes", "role-a"]).path()
        );
    }

    #[test]
    fn round_trip_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache/vault-tokens");
        let s = Slot::new(&dir, &["a"]);
        assert!(s.read().unwrap().is_none());
        s.locked(|s| s.write(&entry("tok", Some(5))))
            .unwrap()
            .unwrap();
        let e = s.read().unwrap().unwrap();
        assert_eq!((e.token.as_str(), e.expires_at_ms), ("tok", Some(5)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                fs::metadata(s.path()).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        s.remove();
        assert!(s.read().unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn unsafe_entries_and_folders_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tokens");
        let s = Slot::new(&dir, &["a"]);
        s.locked(|s| s.write(&entry("tok", None))).unwrap().unwrap();
        fs::set_permissions(s.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let e = s.read().err().unwrap().to_string();
        assert!(
            e.contains("mode 0644") && e.contains(&s.path().display().to_string()),
            "{e}"
        );
        fs::remove_file(s.path()).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(s.path())
            .status()
            .unwrap()
            .success());
        let e = s.read().err().unwrap().to_string();
        assert!(e.contains("FIFO"), "{e}");
        fs::remove_file(s.path()).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), s.path()).unwrap();
        assert!(s
            .read()
            .err()
            .unwrap()
            .to_string()
            .contains("symbolic link"));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let e = s.locked(|_| ()).err().unwrap().to_string();
        assert!(e.contains("chmod 700"), "{e}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        if std::os::unix::fs::chown(&dir, Some(4242), None).is_ok() {
            let e = s.locked(|_| ()).err().unwrap().to_string();
            assert!(e.contains("owned by another user"), "{e}");
            std::os::unix::fs::chown(&dir, Some(rustix::process::geteuid().as_raw()), None)
                .unwrap();
        }
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let e = Slot::new(&link, &["a"])
            .locked(|_| ())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn sweep_removes_long_expired_entries_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tokens");
        let old = Slot::new(&dir, &["old"]);
        let live = Slot::new(&dir, &["live"]);
        old.write(&entry("o", Some(1))).unwrap();
        live.write(&entry("l", None)).unwrap();
        Slot::new(&dir, &["new"])
            .write(&entry("n", Some(now_ms() + 1000)))
            .unwrap();
        assert!(old.read().unwrap().is_none());
        assert!(live.read().unwrap().is_some());
    }

    #[test]
    fn the_lock_serializes_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tokens");
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (dir, inside) = (dir.clone(), inside.clone());
                std::thread::spawn(move || {
                    Slot::new(&dir, &["k"])
                        .locked(|_| {
                            let n = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                            n
                        })
                        .unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 0, "two holders at once");
        }
    }
}
