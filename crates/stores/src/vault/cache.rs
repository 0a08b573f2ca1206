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
//! Tokens given directly (`VAULT_TOKEN`, a token file) are never written here.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

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

    /// Runs `f` while holding the slot's exclusive lock (waiting for other renders).
    pub(crate) fn locked<T>(&self, f: impl FnOnce(&Self) -> T) -> io::Result<T> {
        make_private_dir(&self.dir)?;
        let file = open_private(&self.dir.join(format!("{}.lock", self.name)), false)?;
        let mut lock = fd_lock::RwLock::new(file);
        let _guard = lock.write()?;
        Ok(f(self))
    }

    /// The entry, if there is a readable one.
    pub(crate) fn read(&self) -> Option<Entry> {
        let mut text = fs::read_to_string(self.path()).ok()?;
        let entry = serde_json::from_str(&text).ok();
        text.zeroize();
        entry
    }

    /// Replaces the entry (mode 0600, atomic).
    pub(crate) fn write(&self, e: &Entry) -> io::Result<()> {
        make_private_dir(&self.dir)?;
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
            let expired = fs::read_to_string(&p)
                .ok()
                .and_then(|mut t| {
                    let e: Option<Entry> = serde_json::from_str(&t).ok();
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

fn make_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
}

fn open_private(path: &Path, truncate: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
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
        assert!(s.read().is_none());
        s.locked(|s| s.write(&entry("tok", Some(5))))
            .unwrap()
            .unwrap();
        let e = s.read().unwrap();
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
        assert!(s.read().is_none());
    }

    #[test]
    fn sweep_removes_long_expired_entries_only() {
        let tmp = tempfile::tempdir().unwrap();
        let old = Slot::new(tmp.path(), &["old"]);
        let live = Slot::new(tmp.path(), &["live"]);
        old.write(&entry("o", Some(1))).unwrap();
        live.write(&entry("l", None)).unwrap();
        Slot::new(tmp.path(), &["new"])
            .write(&entry("n", Some(now_ms() + 1000)))
            .unwrap();
        assert!(old.read().is_none());
        assert!(live.read().is_some());
    }

    #[test]
    fn the_lock_serializes_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
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
