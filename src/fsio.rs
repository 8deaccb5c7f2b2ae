//! Files in and out, so that nothing is lost and nothing grows without bound.
//!
//! * Every file sqnn writes goes through [`write_atomic`]: a temporary file in the same
//!   directory, written, synced, then renamed over the target (and the directory synced). A
//!   failure at any point, or a kill, leaves the previous file as it was. Secret files are
//!   created owner-only ([`Secrecy::OwnerOnly`]) before a byte is written. A target that is a
//!   symbolic link is written where the link points (the link stays); one that is a device,
//!   pipe or socket (`/dev/null`, `/dev/stdout`, a FIFO) is written into, never replaced by a
//!   regular file.
//! * Outputs are checked before long work starts ([`check_output`]): the directory exists and
//!   takes new files, the path is not a directory, and it is not one of the command's inputs.
//! * Every reader has a size limit checked before reading ([`read_limited`], [`Limited`]): the
//!   file's size when the system knows it, and the bytes actually read in any case (pipes,
//!   devices, decompressed streams).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Who may read a file sqnn writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrecy {
    /// Ordinary output (models, circuits, reports, pictures, public keys): read-write for the
    /// owner, readable by others as the umask allows.
    Public,
    /// Secret (a client key): mode 0600 from creation on, never readable by anyone else.
    OwnerOnly,
}

/// One MiB.
pub const MIB: u64 = 1 << 20;

/// The directory a file path lives in (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_builder(secrecy: Secrecy) -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(".sqnn-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match secrecy {
            Secrecy::Public => 0o666,
            Secrecy::OwnerOnly => 0o600,
        };
        b.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = secrecy;
    b
}

/// A file being written: a synced temporary file in the target's directory, renamed over the
/// target by [`Staged::commit`]; dropped uncommitted, it is removed and the target untouched.
/// A target that exists and is not a regular file (a device, a pipe) is written into at
/// [`Staged::commit`] instead: renaming over it would replace it (as root, `/dev/null` itself).
pub struct Staged {
    inner: Inner,
    target: PathBuf,
}

enum Inner {
    /// The temporary file, renamed over the target at commit.
    Temp(tempfile::NamedTempFile),
    /// The bytes to write into an existing device or pipe at commit.
    Stream(Vec<u8>),
}

/// Where a write to `target` goes, and whether it is an existing non-regular file (device,
/// pipe, socket): a symbolic link is followed, so that renaming replaces the file it points
/// to and keeps the link.
fn resolve_target(target: &Path) -> Result<(PathBuf, bool)> {
    // Written through the path as given: `/dev/stdout` may point at a pipe with no path.
    if std::fs::metadata(target).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return Ok((target.to_path_buf(), true));
    }
    if !std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink()) {
        return Ok((target.to_path_buf(), false));
    }
    let real = std::fs::canonicalize(target).map_err(|e| {
        Error::io(
            target,
            std::io::Error::new(
                e.kind(),
                format!(
                    "a symbolic link whose target cannot be resolved ({e}); point it at an \
                     existing file or write to another path"
                ),
            ),
        )
    })?;
    Ok((real, false))
}

impl Staged {
    /// Starts writing `target` (nothing visible changes until [`Staged::commit`]).
    pub fn new(target: &Path, secrecy: Secrecy) -> Result<Staged> {
        let (real, special) = resolve_target(target)?;
        let inner = if special {
            if secrecy == Secrecy::OwnerOnly {
                return Err(Error::io(
                    target,
                    std::io::Error::other(
                        "a secret file must be a regular file (created owner-only), not a \
                         device or pipe; choose another path",
                    ),
                ));
            }
            Inner::Stream(Vec::new())
        } else {
            Inner::Temp(
                temp_builder(secrecy)
                    .tempfile_in(parent_dir(&real))
                    .map_err(|e| Error::io(target, e))?,
            )
        };
        Ok(Staged {
            inner,
            target: real,
        })
    }

    /// Writes the whole content and syncs it to disk (a device or pipe: keeps it for commit).
    pub fn write(mut self, bytes: &[u8]) -> Result<Staged> {
        let target = self.target.clone();
        match &mut self.inner {
            Inner::Temp(file) => file
                .write_all(bytes)
                .and_then(|()| file.as_file().sync_all())
                .map_err(|e| Error::io(&target, e))?,
            Inner::Stream(buf) => buf.extend_from_slice(bytes),
        }
        Ok(self)
    }

    /// Renames the written file over the target, then syncs the directory (a device or pipe:
    /// writes the bytes into it).
    pub fn commit(self) -> Result<()> {
        let target = self.target;
        match self.inner {
            Inner::Temp(file) => {
                file.persist(&target)
                    .map_err(|e| Error::io(&target, e.error))?;
                sync_dir(parent_dir(&target));
            }
            Inner::Stream(bytes) => std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(|e| Error::io(&target, e))?,
        }
        Ok(())
    }
}

/// Syncs a directory's entries to disk (best effort: not every system can).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `path` atomically: the previous file stays intact on any failure.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("a.txt");
/// sqnn::fsio::write_atomic(&p, b"one", sqnn::fsio::Secrecy::Public)?;
/// sqnn::fsio::write_atomic(&p, b"two", sqnn::fsio::Secrecy::Public)?;
/// assert_eq!(std::fs::read(&p)?, b"two");
/// assert_eq!(std::fs::read_dir(dir.path())?.count(), 1); // no temporary file left
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8], secrecy: Secrecy) -> Result<()> {
    Staged::new(path, secrecy)?.write(bytes)?.commit()
}

/// Whether two paths name the same file (the same inode, through links and `..`), when both
/// exist; else whether they are the same path once their directories are resolved.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    let resolve = |p: &Path| {
        let dir = std::fs::canonicalize(parent_dir(p)).ok()?;
        Some(dir.join(p.file_name()?))
    };
    match (resolve(a), resolve(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Checks an output path before any long work: not a directory, in an existing directory that
/// accepts new files, and not one of `inputs` (writing it would destroy the input).
/// `flag` names the option that chose the path, for the message.
pub fn check_output(path: &Path, flag: &'static str, inputs: &[&Path]) -> Result<()> {
    let shown = path.display();
    if let Some(i) = inputs.iter().find(|i| same_file(path, i)) {
        return Err(Error::param(
            flag,
            format!(
                "{shown} is also an input ({}): writing it would destroy that input; choose \
                 another output path",
                i.display()
            ),
        ));
    }
    if path.is_dir() {
        return Err(Error::param(
            flag,
            format!("{shown} is a directory; give a file path inside it"),
        ));
    }
    let (real, special) = resolve_target(path).map_err(|e| Error::param(flag, e.to_string()))?;
    if special {
        // Written into at the end, not replaced: its directory need not take new files.
        return Ok(());
    }
    let dir = parent_dir(&real);
    if !dir.is_dir() {
        return Err(Error::param(
            flag,
            format!(
                "{shown}: the directory {} does not exist; create it first or choose another path",
                dir.display()
            ),
        ));
    }
    temp_builder(Secrecy::Public)
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            Error::param(
                flag,
                format!(
                    "{shown}: cannot create files in {} ({e}); choose a writable directory",
                    dir.display()
                ),
            )
        })
}

/// A reader that fails once more than its limit has been read: a size limit for streams whose
/// size is unknown up front (pipes, devices, decompressed data).
pub struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Limited<R> {
    /// Reads at most `limit` bytes of `inner`; more is an error of kind `FileTooLarge`.
    pub fn new(inner: R, limit: u64) -> Limited<R> {
        Limited {
            inner,
            left: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more than the limit is enough to know it is exceeded.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(too_large(self.limit)),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= crate::cast::to_u64(n);
        Ok(n)
    }
}

/// The error a [`Limited`] reader returns past its limit.
fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!("larger than the {} limit", size_text(limit)),
    )
}

/// `256 MiB`, `64 KiB` or `100 bytes`.
pub fn size_text(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Opens `path` for reading at most `limit` bytes; a regular file known to be larger is
/// refused before a byte is read. `what` names the file kind for the message.
pub fn open_limited(path: &Path, limit: u64, what: &str) -> Result<Limited<File>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::Input(format!(
            "{}: is a directory, not a {what}",
            path.display()
        )));
    }
    if meta.is_file() && meta.len() > limit {
        return Err(Error::Input(format!(
            "{}: {} bytes is larger than any {what} sqnn accepts ({}); check the path",
            path.display(),
            meta.len(),
            size_text(limit)
        )));
    }
    Ok(Limited::new(file, limit))
}

/// Reads a whole file of at most `limit` bytes (see [`open_limited`]).
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut r = open_limited(path, limit, what)?;
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)
        .map_err(|e| limit_error(path, e, what))?;
    Ok(bytes)
}

/// Reads a whole UTF-8 text file of at most `limit` bytes.
pub fn read_text_limited(path: &Path, limit: u64, what: &str) -> Result<String> {
    String::from_utf8(read_limited(path, limit, what)?).map_err(|e| {
        Error::Input(format!(
            "{}: not UTF-8 text at byte {} (not a {what})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// A read error, with the limit's message when that was the cause.
pub fn limit_error(path: &Path, e: std::io::Error, what: &str) -> Error {
    if e.kind() == std::io::ErrorKind::FileTooLarge {
        Error::Input(format!(
            "{}: {e} for a {what}; check the path",
            path.display()
        ))
    } else {
        Error::io(path, e)
    }
}

/// At most `max` characters of `s` (a longer text ends with `...`): error messages quote
/// input, and input can be arbitrarily long.
///
/// ```
/// assert_eq!(sqnn::fsio::bounded("abcdef", 3), "abc...");
/// assert_eq!(sqnn::fsio::bounded("abc", 3), "abc");
/// ```
pub fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// The SHA-256 of `bytes`, in lowercase hex: how sqnn names contents it checks (key file
/// payloads, circuits, training rows).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
