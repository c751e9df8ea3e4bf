//! Secrets in a file: reading it (bounded, wiped after use), its two formats (one secret;
//! one secret per line), and the error that names the file, never its content.

use std::{
    fmt,
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
    sync::Arc,
};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Secret;

/// The largest secret file read: a file of secrets is a few hundred bytes; anything past
/// this is not one (a log, a binary written to the wrong path).
pub(crate) const MAX_FILE_LEN: usize = 64 * 1024;

/// A file's bytes, wiped from memory when dropped.
pub(crate) type Bytes = Zeroizing<Vec<u8>>;

/// Reads the whole file at `path`, up to [`MAX_FILE_LEN`] bytes.
pub(crate) fn read(path: &Path) -> Result<Bytes, SecretFileError> {
    let error = |kind, io| SecretFileError::new(path, kind, io);
    // The capacity is never exceeded (`take`), so the buffer never moves and leaves no
    // unwiped copy behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_FILE_LEN + 1));
    File::open(path)
        .and_then(|file| file.take(MAX_FILE_LEN as u64 + 1).read_to_end(&mut bytes))
        .map_err(|io| error(SecretFileErrorKind::Unreadable, Some(io)))?;
    if bytes.len() > MAX_FILE_LEN {
        return Err(error(SecretFileErrorKind::TooLarge, None));
    }
    Ok(bytes)
}

/// The one secret of a file: its bytes as they are, less one trailing newline (`\n` or
/// `\r\n`, which editors and `echo` add).
pub(crate) fn one_secret(path: &Path) -> Result<Secret, SecretFileError> {
    let bytes = read(path)?;
    let secret = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let secret = secret.strip_suffix(b"\r").unwrap_or(secret);
    if secret.is_empty() {
        return Err(SecretFileError::new(path, SecretFileErrorKind::Empty, None));
    }
    Ok(Secret::from(secret))
}

/// A file of secrets, read and parsed: the secrets in order, and a digest of the bytes to
/// tell a change without keeping them.
pub(crate) struct Listed {
    pub(crate) secrets: Vec<Secret>,
    pub(crate) digest: [u8; 32],
}

/// Reads the file of secrets at `path`: one secret per line, the first the current one.
/// Spaces, tabs and a `\r` around a line are not part of its secret; blank lines are
/// skipped. A file that is not UTF-8 text, or holds a control character other than tab,
/// carriage return and newline, is [`NotText`](SecretFileErrorKind::NotText); one without a
/// secret is [`Empty`](SecretFileErrorKind::Empty).
pub(crate) fn listed(path: &Path) -> Result<Listed, SecretFileError> {
    let bytes = read(path)?;
    let secrets = parse_lines(&bytes).map_err(|kind| SecretFileError::new(path, kind, None))?;
    Ok(Listed {
        secrets,
        digest: Sha256::digest(&bytes[..]).into(),
    })
}

/// The secrets of a file's bytes, one per line (see [`listed`]).
pub(crate) fn parse_lines(bytes: &[u8]) -> Result<Vec<Secret>, SecretFileErrorKind> {
    let text = std::str::from_utf8(bytes).map_err(|_| SecretFileErrorKind::NotText)?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err(SecretFileErrorKind::NotText);
    }
    let secrets: Vec<Secret> = text
        .split('\n')
        .map(|line| line.trim_matches([' ', '\t', '\r']))
        .filter(|line| !line.is_empty())
        .map(Secret::from)
        .collect();
    match secrets.is_empty() {
        true => Err(SecretFileErrorKind::Empty),
        false => Ok(secrets),
    }
}

/// A secret file that could not be used: named by its path, never showing its content.
///
/// Returned by [`Secret::from_file`] and [`Secrets::from_file`](crate::Secrets::from_file)
/// when the file cannot be used at start, and by
/// [`Secrets::problem`](crate::Secrets::problem) while a watched file cannot be used (the
/// last good secrets are kept meanwhile).
///
/// ```
/// use authgear_webhook::{Secret, SecretFileErrorKind};
///
/// let err = Secret::from_file("/surely/not/a/file").unwrap_err();
/// assert_eq!(err.kind(), SecretFileErrorKind::Unreadable);
/// assert_eq!(err.path(), std::path::Path::new("/surely/not/a/file"));
/// assert!(err.to_string().starts_with("secret file /surely/not/a/file could not be read"));
/// ```
#[derive(Debug, Clone)]
pub struct SecretFileError {
    path: PathBuf,
    kind: SecretFileErrorKind,
    io: Option<Arc<io::Error>>,
}

/// The kinds of [`SecretFileError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretFileErrorKind {
    /// The file could not be opened or read: missing, a directory, not permitted.
    Unreadable,
    /// The file holds no secret (nothing, or only blank lines).
    Empty,
    /// A file of secrets that is not text: not UTF-8, or with control characters.
    NotText,
    /// The file is larger than 64 KiB: not a file of secrets.
    TooLarge,
    /// The thread that watches the file could not be started.
    NotWatched,
}

impl SecretFileError {
    pub(crate) fn new(path: &Path, kind: SecretFileErrorKind, io: Option<io::Error>) -> Self {
        Self {
            path: path.to_owned(),
            kind,
            io: io.map(Arc::new),
        }
    }

    /// What went wrong.
    ///
    /// ```
    /// # use authgear_webhook::{Secret, SecretFileErrorKind};
    /// let err = Secret::from_file("/surely/not/a/file").unwrap_err();
    /// assert_eq!(err.kind(), SecretFileErrorKind::Unreadable);
    /// ```
    pub fn kind(&self) -> SecretFileErrorKind {
        self.kind
    }

    /// The file's path, as it was given.
    ///
    /// ```
    /// # use authgear_webhook::Secret;
    /// let err = Secret::from_file("/surely/not/a/file").unwrap_err();
    /// assert_eq!(err.path().to_str(), Some("/surely/not/a/file"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the problem was, told apart by its kind and the I/O error's kind, not by its
    /// message: the same problem seen twice is one problem.
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        let io_kind = |error: &Self| error.io.as_ref().map(|io| io.kind());
        self.kind == other.kind && io_kind(self) == io_kind(other)
    }
}

impl fmt::Display for SecretFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match (self.kind, &self.io) {
            (SecretFileErrorKind::Unreadable, Some(io)) => {
                write!(f, "secret file {path} could not be read: {io}")
            }
            (SecretFileErrorKind::Unreadable, None) => {
                write!(f, "secret file {path} could not be read")
            }
            (SecretFileErrorKind::Empty, _) => write!(f, "secret file {path} is empty"),
            (SecretFileErrorKind::NotText, _) => write!(
                f,
                "secret file {path} is not text (one secret per line expected)"
            ),
            (SecretFileErrorKind::TooLarge, _) => {
                write!(f, "secret file {path} is larger than 64 KiB")
            }
            (SecretFileErrorKind::NotWatched, Some(io)) => {
                write!(f, "secret file {path} cannot be watched: {io}")
            }
            (SecretFileErrorKind::NotWatched, None) => {
                write!(f, "secret file {path} cannot be watched")
            }
        }
    }
}

impl std::error::Error for SecretFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io
            .as_deref()
            .map(|io| io as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_secrets() {
        type Case<'a> = (&'a [u8], Result<&'a [&'a str], SecretFileErrorKind>);
        let cases: &[Case<'_>] = &[
            (b"new", Ok(&["new"])),
            (b"new\n", Ok(&["new"])),
            (b"new\r\nold\r\n", Ok(&["new", "old"])),
            (b"\n\n  new \t\n\n old\n\n", Ok(&["new", "old"])),
            (b"new\nnew\n", Ok(&["new", "new"])),
            (b"with inner space\n", Ok(&["with inner space"])),
            (b"", Err(SecretFileErrorKind::Empty)),
            (b"\n \r\n\t\n", Err(SecretFileErrorKind::Empty)),
            (b"new\n\0old\n", Err(SecretFileErrorKind::NotText)),
            (b"new\x1b[0m\n", Err(SecretFileErrorKind::NotText)),
            (b"\xff\xfe\x00n", Err(SecretFileErrorKind::NotText)),
            (b"caf\xc3\xa9\n", Ok(&["caf\u{e9}"])),
        ];
        for (bytes, want) in cases {
            let parsed = parse_lines(bytes);
            let got: Result<Vec<&str>, SecretFileErrorKind> = match &parsed {
                Ok(secrets) => Ok(secrets
                    .iter()
                    .map(|secret| std::str::from_utf8(secret.as_ref()).expect("utf-8"))
                    .collect()),
                Err(kind) => Err(*kind),
            };
            assert_eq!(got.as_deref().map_err(|k| *k), *want, "{bytes:?}");
        }
    }

    #[test]
    fn errors_name_the_path_never_the_content() {
        let dir =
            std::env::temp_dir().join(format!("authgear-webhook-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("secrets");
        for (content, kind) in [
            (&b"hunter2\0hunter2"[..], SecretFileErrorKind::NotText),
            (b"\n\n", SecretFileErrorKind::Empty),
        ] {
            std::fs::write(&file, content).expect("write");
            let Err(error) = listed(&file) else {
                panic!("{content:?} is refused");
            };
            assert_eq!(error.kind(), kind);
            let shown = format!("{error} {error:?}");
            assert!(shown.contains(&*file.to_string_lossy()), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        std::fs::write(&file, vec![b'a'; MAX_FILE_LEN + 1]).expect("write");
        assert_eq!(
            listed(&file).err().map(|e| e.kind()),
            Some(SecretFileErrorKind::TooLarge)
        );
        std::fs::write(&file, vec![b'a'; MAX_FILE_LEN]).expect("write");
        assert_eq!(listed(&file).map(|l| l.secrets.len()).ok(), Some(1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
