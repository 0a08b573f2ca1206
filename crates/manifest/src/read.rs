//! Bounded reads of regular files and streams: the one I/O helper every crate shares.
//!
//! Anything kustodian reads from a path a repository writer or an operator names (a manifest, a
//! SOPS store, `.sops.yaml`, an age key file, a plugin config, a token file) goes through
//! [`read_bounded`]: the path must be a regular file (no FIFO, device or socket, which could
//! block or never end) and at most `limit` bytes are read, so `/dev/zero` or a 1 GB file of NULs
//! fails at once with a message naming the file and the limit instead of filling memory.
//!
//! Confinement (is the file inside the repository?) is the caller's business: this module only
//! knows about one path at a time.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most a manifest, a SOPS store file or a plugin's input stream may hold: 32 MiB.
pub const MANIFEST_LIMIT: u64 = 32 * 1024 * 1024;

/// The most a small file may hold (age key files, `.sops.yaml`, plugin configs, tokens): 1 MiB.
pub const SMALL_FILE_LIMIT: u64 = 1024 * 1024;

/// Why a bounded read failed. Messages name the file and never show its contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{}: {}", path.display(), self.reason())]
    Io {
        /// The path as given.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a regular file (a folder, FIFO, device, socket).
    #[error("{}: {}", path.display(), self.reason())]
    NotRegular {
        /// The path as given.
        path: PathBuf,
        /// What it is instead: `a folder`, `a FIFO`, `a device`, ...
        what: &'static str,
    },
    /// The file (or stream) holds more than the limit.
    #[error("{}: {}", path.display(), self.reason())]
    TooLarge {
        /// The path as given (or `<stdin>`).
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{}: {}", path.display(), self.reason())]
    NotUtf8 {
        /// The path as given.
        path: PathBuf,
    },
}

impl ReadError {
    /// What went wrong and what to do, without the path (for callers that name the file their
    /// own way, such as a reference's path as written).
    pub fn reason(&self) -> String {
        match self {
            ReadError::Io { source, .. } => describe_io(source),
            ReadError::NotRegular { what, .. } => {
                format!("not a regular file (it is {what}); point kustodian at a plain file")
            }
            ReadError::TooLarge { limit, .. } => format!(
                "larger than the {} limit; kustodian refuses to read it (split the file, or check that the path is the one you meant)",
                Size(*limit)
            ),
            ReadError::NotUtf8 { .. } => {
                "not UTF-8 text; kustodian reads YAML, JSON and key files as UTF-8".into()
            }
        }
    }

    /// The underlying I/O error kind, when the failure was one (`NotFound`, `PermissionDenied`).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            ReadError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// An I/O error in words for a message: "no such file", "permission denied", or the system's
/// own text (never the `ErrorKind` debug words such as "entity not found").
pub fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// A byte count for messages: `32 MiB`, `1 MiB`, `512 bytes`.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1024 * 1024;
        const KIB: u64 = 1024;
        match self.0 {
            n if n >= MIB && n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n if n >= KIB && n % KIB == 0 => write!(f, "{} KiB", n / KIB),
            n => write!(f, "{n} bytes"),
        }
    }
}

/// Reads at most `limit` bytes of the regular file at `path` (symlinks followed).
///
/// Fails with [`ReadError::NotRegular`] for folders, FIFOs, devices and sockets (checked before
/// opening, so a FIFO never blocks, and again on the open file), and with
/// [`ReadError::TooLarge`] as soon as the file holds more than `limit` bytes, whatever its
/// reported size. Files under `/proc` and `/sys` (which claim to be regular) are refused too.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    check_regular(path, &std::fs::metadata(path).map_err(io)?)?;
    if let Some(what) = pseudo_file(path) {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            what,
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_regular(path, &meta)?;
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    read_stream_bounded(file, limit, path)
}

/// [`read_bounded`], then checks that the bytes are UTF-8 text.
pub fn read_to_string_bounded(path: &Path, limit: u64) -> Result<String, ReadError> {
    utf8(read_bounded(path, limit)?, path)
}

/// Reads a stream (stdin) to its end, failing once it holds more than `limit` bytes; `name`
/// (`<stdin>`) is used in messages.
pub fn read_stream_bounded(
    reader: impl Read,
    limit: u64,
    name: impl AsRef<Path>,
) -> Result<Vec<u8>, ReadError> {
    let name = name.as_ref();
    let mut buf = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| ReadError::Io {
            path: name.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            path: name.to_path_buf(),
            limit,
        });
    }
    Ok(buf)
}

/// [`read_stream_bounded`], then checks that the bytes are UTF-8 text.
pub fn read_stream_to_string_bounded(
    reader: impl Read,
    limit: u64,
    name: impl AsRef<Path>,
) -> Result<String, ReadError> {
    let name = name.as_ref();
    utf8(read_stream_bounded(reader, limit, name)?, name)
}

fn utf8(bytes: Vec<u8>, path: &Path) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Files under `/proc` and `/sys` claim to be regular but are the kernel's views of processes
/// (a process's environment, its memory maps): never input.
fn pseudo_file(path: &Path) -> Option<&'static str> {
    let real = path.canonicalize().ok()?;
    ["/proc", "/sys"]
        .iter()
        .any(|p| real.starts_with(p))
        .then_some("a kernel pseudo-file under /proc or /sys")
}

fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<(), ReadError> {
    if meta.is_file() {
        return Ok(());
    }
    Err(ReadError::NotRegular {
        path: path.to_path_buf(),
        what: kind_of(meta.file_type()),
    })
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    "not a plain file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kustodian-read-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_a_small_file() {
        let d = tmp("small");
        std::fs::write(d.join("a.yaml"), "a: 1\n").unwrap();
        assert_eq!(
            read_to_string_bounded(&d.join("a.yaml"), 100).unwrap(),
            "a: 1\n"
        );
    }

    #[test]
    fn refuses_a_file_over_the_limit_naming_file_and_limit() {
        let d = tmp("big");
        std::fs::write(d.join("big.yaml"), vec![b'a'; 2048]).unwrap();
        let e = read_bounded(&d.join("big.yaml"), 1024).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { limit: 1024, .. }));
        let msg = e.to_string();
        assert!(msg.contains("big.yaml") && msg.contains("1 KiB"), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_devices_and_folders_without_reading() {
        let e = read_bounded(Path::new("/dev/zero"), MANIFEST_LIMIT).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    what: "a device",
                    ..
                }
            ),
            "{e}"
        );
        let e = read_bounded(Path::new("/"), MANIFEST_LIMIT).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    what: "a folder",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn refuses_proc_files_that_claim_to_be_regular() {
        for p in ["/proc/self/environ", "/proc/self/maps"] {
            let e = read_bounded(Path::new(p), MANIFEST_LIMIT).unwrap_err();
            assert!(matches!(e, ReadError::NotRegular { .. }), "{e}");
        }
    }

    #[test]
    fn bounds_streams() {
        let e = read_stream_bounded(std::io::repeat(0), 10, "<stdin>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "<stdin>: larger than the 10 bytes limit; kustodian refuses to read it (split the file, or check that the path is the one you meant)"
        );
        assert_eq!(
            read_stream_bounded(&b"abc"[..], 3, "<stdin>").unwrap(),
            b"abc"
        );
    }

    #[test]
    fn missing_file_says_so() {
        let e = read_bounded(Path::new("/nonexistent/kustodian"), 10).unwrap_err();
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::NotFound));
        assert!(e.to_string().ends_with("no such file"), "{e}");
    }
}
