//! Secrets that change while the server runs: a handle the application updates, or a file
//! re-read when it changes; and a source that picks the secrets per request.

mod file;
mod source;
mod watch;

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock},
};

pub(crate) use self::file::one_secret;
pub use self::{
    file::{SecretFileError, SecretFileErrorKind},
    source::SecretSource,
};
use crate::{Secret, Verifier};

/// The secrets a webhook accepts, changeable while the server runs: rotate the secret
/// without a restart.
///
/// A cheap handle (an `Arc`): its clones share one set. The first secret is the current
/// one, every one is accepted; the set is keyed once per change, never per request. Give
/// it to [`VerifySignatureLayer::with_secrets`](crate::VerifySignatureLayer::with_secrets),
/// keep a clone, and [`set`](Self::set) the new set when the secret changes: a request
/// takes the set in use when it arrives and keeps it for its whole body, so a request in
/// flight is never refused for a change. Or read the secrets from a file that is re-read
/// when it changes: [`from_file`](Self::from_file).
///
/// The set is never empty: [`set`](Self::set) refuses a set with no secret, or only empty
/// ones (which would match nothing), and a file that lists none keeps the last good
/// secrets. An empty secret beside others matches nothing, as with [`Verifier`].
///
/// ```
/// use authgear_webhook::{sign, Secrets};
///
/// let secrets = Secrets::new("old-secret");
/// // Rotating: accept both while Authgear moves to the new one...
/// secrets.set(["new-secret", "old-secret"]).unwrap();
/// let body = b"{}";
/// assert!(secrets.verifier().verify(sign("old-secret", body).as_bytes(), body).is_ok());
/// // ...then only the new one.
/// secrets.set(["new-secret"]).unwrap();
/// assert!(secrets.verifier().verify(sign("old-secret", body).as_bytes(), body).is_err());
/// assert!(secrets.set(Vec::<String>::new()).is_err());
/// ```
///
/// `Debug` shows how many secrets there are and where they come from, never a secret.
#[derive(Clone)]
pub struct Secrets {
    shared: Arc<Shared>,
}

/// What the handles share.
pub(crate) struct Shared {
    /// The secrets in use, keyed: each request takes a reference.
    verifier: RwLock<Arc<Verifier>>,
    /// The watched file, if the secrets come from one.
    file: Option<PathBuf>,
    /// Why the watched file cannot be used, while it cannot.
    problem: Mutex<Option<SecretFileError>>,
}

impl Shared {
    fn new(verifier: Verifier, file: Option<PathBuf>) -> Self {
        Self {
            verifier: RwLock::new(Arc::new(verifier)),
            file,
            problem: Mutex::new(None),
        }
    }

    /// Keys `secrets` and puts them in use, unless there are none.
    fn replace(
        &self,
        secrets: impl IntoIterator<Item = impl Into<Secret>>,
    ) -> Result<(), EmptySecretsError> {
        let verifier = Verifier::from_secrets(secrets).ok_or(EmptySecretsError(()))?;
        // Keyed above, outside the lock: writers hold it only to swap a pointer.
        let verifier = Arc::new(verifier);
        let old = std::mem::replace(
            &mut *self
                .verifier
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            verifier,
        );
        // The old keys are dropped (and wiped) outside the lock, or by the last request
        // that holds them.
        drop(old);
        Ok(())
    }

    fn set_problem(&self, problem: Option<SecretFileError>) {
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = problem;
    }
}

impl Secrets {
    /// A set of one secret, the current one.
    ///
    /// ```
    /// use authgear_webhook::{Secret, Secrets};
    ///
    /// let secrets = Secrets::new("my-webhook-secret");
    /// let secrets = Secrets::new(Secret::from(b"raw bytes".to_vec()));
    /// ```
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self {
            shared: Arc::new(Shared::new(Verifier::new(secret), None)),
        }
    }

    /// Also accepts `secret`, after those already in the set: to build a set of several at
    /// start. It changes the set every clone of this handle shares, as [`set`](Self::set)
    /// does.
    ///
    /// ```
    /// use authgear_webhook::{sign, Secrets};
    ///
    /// let secrets = Secrets::new("new-secret").also_accept("old-secret");
    /// let verified = secrets.verifier().verify(sign("old-secret", b"{}").as_bytes(), b"{}");
    /// assert_eq!(verified.unwrap().secret_index(), 1);
    /// ```
    pub fn also_accept(self, secret: impl Into<Secret>) -> Self {
        {
            let mut verifier = self
                .shared
                .verifier
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::make_mut(&mut verifier).accept(secret.into());
        }
        self
    }

    /// Replaces the set: `secrets`, in order, the first the current one. Effective for the
    /// next request each clone of the handle serves; a request already in flight finishes
    /// with the set it started with.
    ///
    /// On a handle [read from a file](Self::from_file), the file's next change replaces
    /// the set again.
    ///
    /// ```
    /// use authgear_webhook::Secrets;
    ///
    /// let secrets = Secrets::new("old-secret");
    /// secrets.set(["new-secret", "old-secret"])?;
    /// secrets.set(vec![String::from("new-secret")])?;
    /// # Ok::<(), authgear_webhook::EmptySecretsError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EmptySecretsError`] when `secrets` is empty, or all of them are: the set in use is
    /// left as it was.
    pub fn set(
        &self,
        secrets: impl IntoIterator<Item = impl Into<Secret>>,
    ) -> Result<(), EmptySecretsError> {
        self.shared.replace(secrets)
    }

    /// The secrets in use now, keyed, as a [`Verifier`]: take it once per request (before
    /// reading the body) and verify with it, as the layer does. Costs a read lock and a
    /// reference count.
    ///
    /// ```
    /// use authgear_webhook::{sign, Secrets};
    ///
    /// let secrets = Secrets::new("my-webhook-secret");
    /// let verifier = secrets.verifier();
    /// let signature = sign("my-webhook-secret", b"{}");
    /// assert!(verifier.verify(signature.as_bytes(), b"{}").is_ok());
    /// ```
    #[inline]
    pub fn verifier(&self) -> Arc<Verifier> {
        self.shared
            .verifier
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the secrets from the file at `path`, one per line, the first the current
    /// one, and re-reads it when it changes: a new content is in use within about two
    /// seconds (it is read once a second, and taken once two reads in a row agree, so a
    /// file caught half-written by a writer that pauses less than a second is never taken).
    ///
    /// Spaces, tabs and `\r` around a line are not part of its secret; blank lines are
    /// skipped. A file that later becomes empty, unreadable (removed, replaced by a
    /// directory, not permitted) or not text keeps the last good secrets in use, logs a
    /// warning (feature `tracing`) and is reported by [`problem`](Self::problem) until it
    /// can be used again.
    ///
    /// A thread reads the file; it ends at its next read once every clone of the handle is
    /// dropped. Write the file in one go, or better, write another and rename it over this
    /// one (as Kubernetes does for a secret volume): then no read sees it half-written.
    ///
    /// ```
    /// use authgear_webhook::{sign, Secrets};
    /// # let dir = std::env::temp_dir().join(format!("doc-secrets-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("webhook-secrets");
    /// std::fs::write(&path, "new-secret\nold-secret\n")?;
    ///
    /// let secrets = Secrets::from_file(&path)?;
    /// let signature = sign("old-secret", b"{}");
    /// assert!(secrets.verifier().verify(signature.as_bytes(), b"{}").is_ok());
    /// assert!(secrets.problem().is_none());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`SecretFileError`] naming the file (never its content) when it cannot be read,
    /// is empty, is not text or is larger than 64 KiB, or when its thread cannot start.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SecretFileError> {
        let path = path.as_ref();
        let listed = file::listed(path)?;
        let Some(verifier) = Verifier::from_secrets(listed.secrets) else {
            return Err(SecretFileError::new(path, SecretFileErrorKind::Empty, None));
        };
        let shared = Arc::new(Shared::new(verifier, Some(path.to_owned())));
        watch::spawn(Arc::downgrade(&shared), path.to_owned(), listed.digest)?;
        Ok(Self { shared })
    }

    /// Why the file the secrets are read from cannot be used now (the last good secrets
    /// are in use meanwhile), or `None` when it can (and always for secrets not read from
    /// a file). For a health check: its `Display` names the file, never a secret.
    ///
    /// ```
    /// use authgear_webhook::Secrets;
    ///
    /// let secrets = Secrets::new("my-webhook-secret");
    /// assert!(secrets.problem().is_none());
    /// ```
    pub fn problem(&self) -> Option<SecretFileError> {
        self.shared
            .problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The file the secrets are read from, if they are.
    ///
    /// ```
    /// use authgear_webhook::Secrets;
    ///
    /// assert_eq!(Secrets::new("my-webhook-secret").file(), None);
    /// ```
    pub fn file(&self) -> Option<&Path> {
        self.shared.file.as_deref()
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("verifier", &self.verifier())
            .field("file", &self.shared.file)
            .field("problem", &self.problem().map(|p| p.kind()))
            .finish()
    }
}

/// The error of [`Secrets::set`] given no secret: the set in use is left as it was.
///
/// ```
/// let secrets = authgear_webhook::Secrets::new("my-webhook-secret");
/// let err = secrets.set(Vec::<&str>::new()).unwrap_err();
/// assert_eq!(err.to_string(), "no secret given (or only empty ones): the secrets in use are kept");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptySecretsError(());

impl fmt::Display for EmptySecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no secret given (or only empty ones): the secrets in use are kept")
    }
}

impl std::error::Error for EmptySecretsError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign;

    #[test]
    fn a_verifier_taken_keeps_its_set() {
        let secrets = Secrets::new("old");
        let before = secrets.verifier();
        secrets.set(["new"]).expect("not empty");
        let after = secrets.verifier();
        let old = sign("old", b"{}");
        let new = sign("new", b"{}");
        assert!(before.verify(old.as_bytes(), b"{}").is_ok());
        assert!(before.verify(new.as_bytes(), b"{}").is_err());
        assert!(after.verify(old.as_bytes(), b"{}").is_err());
        assert!(after.verify(new.as_bytes(), b"{}").is_ok());
    }

    #[test]
    fn an_empty_set_is_refused_an_empty_secret_matches_nothing() {
        let secrets = Secrets::new("kept");
        assert_eq!(
            secrets.set(Vec::<Secret>::new()),
            Err(EmptySecretsError(()))
        );
        let kept = sign("kept", b"{}");
        assert!(secrets.verifier().verify(kept.as_bytes(), b"{}").is_ok());
        // Only empty secrets would match nothing: refused too, the set kept.
        assert_eq!(secrets.set(["", ""]), Err(EmptySecretsError(())));
        assert!(secrets.verifier().verify(kept.as_bytes(), b"{}").is_ok());
        // An empty one beside another matches nothing.
        secrets.set(["", "next"]).expect("one secret not empty");
        let empty = sign("", b"{}");
        assert!(secrets.verifier().verify(empty.as_bytes(), b"{}").is_err());
        assert!(secrets.verifier().verify(kept.as_bytes(), b"{}").is_err());
        let next = sign("next", b"{}");
        assert!(secrets.verifier().verify(next.as_bytes(), b"{}").is_ok());
    }

    #[test]
    fn clones_share_one_set_and_debug_hides_it() {
        let secrets = Secrets::new("hunter2hunter2").also_accept("hunter3hunter3");
        let clone = secrets.clone();
        secrets.set(["hunter4hunter4"]).expect("not empty");
        let signed = sign("hunter4hunter4", b"{}");
        assert!(clone.verifier().verify(signed.as_bytes(), b"{}").is_ok());
        let debug = format!("{secrets:?} {secrets:#?}");
        assert!(!debug.contains("hunter"), "{debug}");
        assert!(debug.contains("secrets: 1"), "{debug}");
    }
}
