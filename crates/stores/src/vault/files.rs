//! Reading the small files the Vault store depends on (the service-account JWT, a token file,
//! token cache entries) without trusting them: regular files only, a size limit, and an open
//! that cannot block on a FIFO or stream from a device such as `/dev/zero`.
//!
//! (A workspace-wide `read_bounded` helper is planned; this one stays local to `vault/` until
//! it lands.)

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read as _};
use std::path::Path;

use zeroize::Zeroizing;

/// The most a credential or a cache entry may hold.
pub(crate) const LIMIT: u64 = 64 * 1024;

/// Why a file was not read. Says what the file is, never what it holds.
#[derive(Debug)]
pub(crate) enum FileError {
    /// The operating system refused or the file is missing.
    Io(io::Error),
    /// A FIFO, a device, a folder, a socket, or (when links are not followed) a symlink.
    NotRegular(&'static str),
    /// Larger than the limit.
    TooLarge(u64),
}

impl FileError {
    /// Whether the file does not exist.
    pub(crate) fn is_missing(&self) -> bool {
        matches!(self, FileError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io(e) if is_symlink_refusal(e) => {
                f.write_str("it is a symbolic link, which is not followed here")
            }
            FileError::Io(e) => f.write_str(&kustodian_manifest::read::describe_io(e)),
            FileError::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            FileError::TooLarge(limit) => {
                write!(f, "it is larger than {} KiB", limit / 1024)
            }
        }
    }
}

/// Opens `path` for reading without blocking (a FIFO opens at once and is then refused) and
/// checks that it is a regular file. With `follow` false a symlink is refused.
pub(crate) fn open_regular(path: &Path, follow: bool) -> Result<(File, Metadata), FileError> {
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC;
        if !follow {
            flags |= rustix::fs::OFlags::NOFOLLOW;
        }
        o.custom_flags(flags.bits() as i32);
    }
    let file = o.open(path).map_err(FileError::Io)?;
    let meta = file.metadata().map_err(FileError::Io)?;
    check_regular(&meta)?;
    Ok((file, meta))
}

/// Refuses anything but a regular file, naming what it is.
pub(crate) fn check_regular(meta: &Metadata) -> Result<(), FileError> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    Err(FileError::NotRegular(kind_name(&t)))
}

fn kind_name(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Reads at most `limit` bytes of an open regular file; more is an error.
pub(crate) fn read_limited(
    mut file: File,
    meta: &Metadata,
    limit: u64,
) -> Result<Zeroizing<Vec<u8>>, FileError> {
    if meta.len() > limit {
        return Err(FileError::TooLarge(limit));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(FileError::Io)?;
    if buf.len() as u64 > limit {
        return Err(FileError::TooLarge(limit));
    }
    Ok(buf)
}

/// A small regular file's bytes (symlinks followed, as Kubernetes mounts the service-account
/// token through one).
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let (file, meta) = open_regular(path, true)?;
    read_limited(file, &meta, limit)
}

fn is_symlink_refusal(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_large_files_are_refused() {
        let e = read_bounded(Path::new("/dev/zero"), LIMIT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is a character device, not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; LIMIT as usize + 1]).unwrap();
        assert!(matches!(
            read_bounded(&big, LIMIT),
            Err(FileError::TooLarge(_))
        ));
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "token").unwrap();
        assert_eq!(&read_bounded(&ok, LIMIT).unwrap()[..], b"token");
        assert!(read_bounded(&dir.path().join("nope"), LIMIT)
            .unwrap_err()
            .is_missing());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open_regular(&link, true).is_ok());
        let e = open_regular(&link, false).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }
}
