//! Watching a file of secrets: a thread reads it once a second and adopts what it lists
//! once two reads in a row agree; a file that cannot be used keeps the last good secrets
//! and is reported, once, until it can be used again.
//!
//! Polling, not file-system events: it works the same on every platform and file system
//! (NFS, the symlink swaps of a Kubernetes secret volume, an editor's rename), and reading a
//! few hundred bytes a second costs nothing. A thread, not a task: a read that blocks (a
//! hung network mount) blocks no async runtime, and the handle works under any runtime or
//! none. The thread ends at its next read once every handle is dropped.

use std::{
    path::{Path, PathBuf},
    sync::Weak,
    thread,
    time::Duration,
};

use super::{
    Shared,
    file::{self, Listed, SecretFileError, SecretFileErrorKind},
};
use crate::Secret;

/// How often the file is read.
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// Starts the thread that watches `path` for `shared`, whose secrets were read from a file
/// with `digest`.
pub(super) fn spawn(
    shared: Weak<Shared>,
    path: PathBuf,
    digest: [u8; 32],
) -> Result<(), SecretFileError> {
    let mut watch = Watch::new(digest);
    // The thread logs where the code that started it would: to its subscriber.
    #[cfg(feature = "tracing")]
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let thread = thread::Builder::new().name("authgear-webhook-secrets".to_owned());
    let spawned = thread.spawn({
        let path = path.clone();
        move || {
            #[cfg(feature = "tracing")]
            let _logging = tracing::dispatcher::set_default(&dispatch);
            loop {
                thread::sleep(POLL);
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let step = watch.step(file::listed(&path));
                act(&shared, &path, step);
            }
        }
    });
    match spawned {
        Ok(_) => Ok(()),
        Err(io) => Err(SecretFileError::new(
            &path,
            SecretFileErrorKind::NotWatched,
            Some(io),
        )),
    }
}

/// What one read of the file asks for.
pub(crate) enum Step {
    /// Nothing to do: the same as what is in use, or not yet seen twice.
    Wait,
    /// New secrets, seen twice in a row: use them.
    Adopt(Vec<Secret>),
    /// The file cannot be used, seen twice in a row: keep the secrets, report this.
    Problem(SecretFileError),
    /// The file lists again the secrets in use, after a problem.
    Recovered,
}

/// What a read of the file saw, without the secrets: to tell whether two reads agree.
#[derive(Clone)]
enum Seen {
    Listed([u8; 32]),
    Unusable(SecretFileError),
}

impl Seen {
    fn of(read: &Result<Listed, SecretFileError>) -> Self {
        match read {
            Ok(listed) => Self::Listed(listed.digest),
            Err(error) => Self::Unusable(error.clone()),
        }
    }

    fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Listed(a), Self::Listed(b)) => a == b,
            (Self::Unusable(a), Self::Unusable(b)) => a.same_as(b),
            _ => false,
        }
    }
}

/// The watcher's memory: what is in use, the previous read, and whether a problem is
/// being reported. Pure, so that the rules are tested without a file or a clock.
pub(crate) struct Watch {
    /// The digest of the file whose secrets are in use.
    adopted: [u8; 32],
    /// What the previous read saw.
    last: Seen,
    /// Whether a problem is reported (and which).
    problem: Option<SecretFileError>,
}

impl Watch {
    pub(crate) fn new(adopted: [u8; 32]) -> Self {
        Self {
            adopted,
            last: Seen::Listed(adopted),
            problem: None,
        }
    }

    /// Takes one read of the file. Acts only on what two reads in a row agree on: a file
    /// caught half-written (changing between reads), or truncated for a moment before it
    /// is rewritten, is never adopted nor reported.
    pub(crate) fn step(&mut self, read: Result<Listed, SecretFileError>) -> Step {
        let seen = Seen::of(&read);
        let stable = seen.same_as(&self.last);
        self.last = seen;
        if !stable {
            return Step::Wait;
        }
        match read {
            Ok(listed) if listed.digest == self.adopted => match self.problem.take() {
                Some(_) => Step::Recovered,
                None => Step::Wait,
            },
            Ok(listed) => {
                self.adopted = listed.digest;
                self.problem = None;
                Step::Adopt(listed.secrets)
            }
            Err(error) => {
                if self
                    .problem
                    .as_ref()
                    .is_some_and(|seen| seen.same_as(&error))
                {
                    return Step::Wait;
                }
                self.problem = Some(error.clone());
                Step::Problem(error)
            }
        }
    }
}

/// Carries out a step on the shared secrets, with a log event (feature `tracing`) that
/// names the file and never shows a secret.
fn act(shared: &Shared, path: &Path, step: Step) {
    #[cfg(not(feature = "tracing"))]
    let _ = path;
    match step {
        Step::Wait => {}
        Step::Adopt(secrets) => {
            #[cfg(feature = "tracing")]
            let count = secrets.len();
            if shared.replace(secrets).is_ok() {
                shared.set_problem(None);
                #[cfg(feature = "tracing")]
                tracing::info!(
                    path = %path.display(),
                    secrets = count,
                    "authgear webhook secrets reloaded"
                );
            }
        }
        Step::Problem(error) => {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                path = %path.display(),
                problem = %error,
                "authgear webhook secrets file unusable; the last good secrets are kept"
            );
            shared.set_problem(Some(error));
        }
        Step::Recovered => {
            shared.set_problem(None);
            #[cfg(feature = "tracing")]
            tracing::info!(
                path = %path.display(),
                "authgear webhook secrets file usable again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn listed(text: &str) -> Result<Listed, SecretFileError> {
        let digest = sha2::Digest::finalize(sha2::Digest::chain_update(
            <sha2::Sha256 as sha2::Digest>::new(),
            text,
        ))
        .into();
        file::parse_lines(text.as_bytes())
            .map(|secrets| Listed { secrets, digest })
            .map_err(|kind| SecretFileError::new(Path::new("/secrets"), kind, None))
    }

    fn unreadable(io: std::io::ErrorKind) -> Result<Listed, SecretFileError> {
        Err(SecretFileError::new(
            Path::new("/secrets"),
            SecretFileErrorKind::Unreadable,
            Some(io.into()),
        ))
    }

    fn digest(text: &str) -> [u8; 32] {
        listed(text).map(|l| l.digest).unwrap_or_default()
    }

    /// What a step did, in a word.
    fn word(step: Step) -> String {
        match step {
            Step::Wait => "wait".to_owned(),
            Step::Adopt(secrets) => {
                let first = secrets.first().map(|s| s.as_ref().to_vec());
                format!(
                    "adopt {}",
                    String::from_utf8_lossy(&first.unwrap_or_default())
                )
            }
            Step::Problem(error) => format!("problem {:?}", error.kind()),
            Step::Recovered => "recovered".to_owned(),
        }
    }

    #[test]
    fn acts_on_two_reads_that_agree() {
        use std::io::ErrorKind::{IsADirectory, NotFound};
        let mut watch = Watch::new(digest("a\n"));
        let reads: Vec<(Result<Listed, SecretFileError>, &str)> = vec![
            (listed("a\n"), "wait"),
            // Half-written: each read differs, nothing adopted until two agree.
            (listed("b"), "wait"),
            (listed("b\nol"), "wait"),
            (listed("b\nold\n"), "wait"),
            (listed("b\nold\n"), "adopt b"),
            (listed("b\nold\n"), "wait"),
            // Truncated for a moment, then rewritten: never reported, never adopted.
            (listed(""), "wait"),
            (listed("c\n"), "wait"),
            (listed("c\n"), "adopt c"),
            // Empty for good: reported once; then unreadable, reported again.
            (listed(""), "wait"),
            (listed(""), "problem Empty"),
            (listed(""), "wait"),
            (listed("\n\n"), "wait"),
            (unreadable(NotFound), "wait"),
            (unreadable(NotFound), "problem Unreadable"),
            (unreadable(NotFound), "wait"),
            (unreadable(IsADirectory), "wait"),
            (unreadable(IsADirectory), "problem Unreadable"),
            // Back as it was: recovered, nothing to adopt.
            (listed("c\n"), "wait"),
            (listed("c\n"), "recovered"),
            (listed("c\n"), "wait"),
            // Garbage, then new secrets: the problem ends with the adoption.
            (listed("\0\0"), "wait"),
            (listed("\0\0"), "problem NotText"),
            (listed("d\n"), "wait"),
            (listed("d\n"), "adopt d"),
        ];
        for (at, (read, want)) in reads.into_iter().enumerate() {
            assert_eq!(word(watch.step(read)), want, "read {at}");
        }
    }
}
