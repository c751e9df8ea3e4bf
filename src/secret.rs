//! The key material.

use std::{env, fmt};

use zeroize::Zeroize;

/// A webhook signing secret: the key Authgear signs bodies with.
///
/// In Authgear's portal it is under *Advanced > Hooks > Webhook Signature*. The key is the
/// secret's bytes as they are (nothing is base64-decoded). `Debug` never shows them, and
/// they are wiped from memory when the `Secret` is dropped.
///
/// ```
/// use authgear_webhook::Secret;
///
/// let secret = Secret::from("my-webhook-secret");
/// assert_eq!(format!("{secret:?}"), "Secret(..)");
/// ```
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Reads the secret from the environment variable `name`.
    ///
    /// Fails, naming the variable, when it is unset, empty or not valid UTF-8.
    ///
    /// ```
    /// use authgear_webhook::Secret;
    ///
    /// let err = Secret::from_env("SURELY_NOT_SET_ANYWHERE").unwrap_err();
    /// assert_eq!(err.to_string(), "environment variable SURELY_NOT_SET_ANYWHERE is not set");
    /// ```
    ///
    /// # Errors
    ///
    /// A [`FromEnvError`] naming the variable (never its value) when it is unset, empty or
    /// not valid UTF-8.
    pub fn from_env(name: &str) -> Result<Self, FromEnvError> {
        let error = |reason| FromEnvError {
            name: name.to_owned(),
            reason,
        };
        match env::var(name) {
            Ok(value) if value.is_empty() => Err(error(Reason::Empty)),
            Ok(value) => Ok(Self::from(value)),
            Err(env::VarError::NotPresent) => Err(error(Reason::NotSet)),
            Err(env::VarError::NotUnicode(_)) => Err(error(Reason::NotUnicode)),
        }
    }
}

impl Secret {
    /// Reads the secret from the file at `path`: its bytes as they are, less one trailing
    /// newline (`\n` or `\r\n`). For a secret mounted as a file (a Kubernetes or Docker
    /// secret), kept out of the environment. Read once: for a file re-read when it
    /// changes, see [`Secrets::from_file`](crate::Secrets::from_file).
    ///
    /// ```
    /// use authgear_webhook::Secret;
    /// # let path = std::env::temp_dir().join(format!("doc-secret-{}", std::process::id()));
    /// std::fs::write(&path, "my-webhook-secret\n")?;
    /// let secret = Secret::from_file(&path)?;
    /// assert_eq!(secret.as_ref(), b"my-webhook-secret");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`SecretFileError`](crate::SecretFileError) naming the file (never its content)
    /// when it cannot be read, is empty (a newline alone included) or is larger than 64 KiB.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, crate::SecretFileError> {
        crate::secrets::one_secret(path.as_ref())
    }
}

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self(secret.as_bytes().into())
    }
}

impl From<String> for Secret {
    fn from(mut secret: String) -> Self {
        // Copied, not shrunk in place: a reallocation would leave a copy behind unwiped.
        let copy = Self(secret.as_bytes().into());
        secret.zeroize();
        copy
    }
}

impl From<&[u8]> for Secret {
    fn from(secret: &[u8]) -> Self {
        Self(secret.into())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(mut secret: Vec<u8>) -> Self {
        let copy = Self(secret.as_slice().into());
        secret.zeroize();
        copy
    }
}

/// The secret a [`secrecy::SecretString`] holds (which wipes its own copy when dropped).
///
/// ```
/// use authgear_webhook::Secret;
/// use secrecy::SecretString;
///
/// let secret = Secret::from(SecretString::from("my-webhook-secret"));
/// assert_eq!(secret.as_ref(), b"my-webhook-secret");
/// ```
#[cfg(feature = "secrecy")]
#[cfg_attr(docsrs, doc(cfg(feature = "secrecy")))]
impl From<secrecy::SecretString> for Secret {
    fn from(secret: secrecy::SecretString) -> Self {
        Self::from(&secret)
    }
}

/// A copy of the secret a [`secrecy::SecretString`] holds.
///
/// ```
/// use authgear_webhook::Secret;
/// use secrecy::SecretString;
///
/// let config = SecretString::from("my-webhook-secret");
/// let secret = Secret::from(&config);
/// assert_eq!(secret.as_ref(), b"my-webhook-secret");
/// ```
#[cfg(feature = "secrecy")]
#[cfg_attr(docsrs, doc(cfg(feature = "secrecy")))]
impl From<&secrecy::SecretString> for Secret {
    fn from(secret: &secrecy::SecretString) -> Self {
        use secrecy::ExposeSecret;
        Self::from(secret.expose_secret())
    }
}

/// The secret a [`secrecy::SecretSlice<u8>`] holds (which wipes its own copy when dropped).
///
/// ```
/// use authgear_webhook::Secret;
/// use secrecy::SecretSlice;
///
/// let secret = Secret::from(SecretSlice::from(b"raw bytes".to_vec()));
/// assert_eq!(secret.as_ref(), b"raw bytes");
/// ```
#[cfg(feature = "secrecy")]
#[cfg_attr(docsrs, doc(cfg(feature = "secrecy")))]
impl From<secrecy::SecretSlice<u8>> for Secret {
    fn from(secret: secrecy::SecretSlice<u8>) -> Self {
        Self::from(&secret)
    }
}

/// A copy of the secret a [`secrecy::SecretSlice<u8>`] holds.
///
/// ```
/// use authgear_webhook::Secret;
/// use secrecy::SecretSlice;
///
/// let config = SecretSlice::from(b"raw bytes".to_vec());
/// assert_eq!(Secret::from(&config).as_ref(), b"raw bytes");
/// ```
#[cfg(feature = "secrecy")]
#[cfg_attr(docsrs, doc(cfg(feature = "secrecy")))]
impl From<&secrecy::SecretSlice<u8>> for Secret {
    fn from(secret: &secrecy::SecretSlice<u8>) -> Self {
        use secrecy::ExposeSecret;
        Self::from(secret.expose_secret())
    }
}

/// The secret as a [`secrecy::SecretSlice<u8>`], for an application that keeps its secrets
/// in secrecy's types.
///
/// ```
/// use authgear_webhook::Secret;
/// use secrecy::{ExposeSecret, SecretSlice};
///
/// let slice = SecretSlice::<u8>::from(Secret::from("my-webhook-secret"));
/// assert_eq!(slice.expose_secret(), b"my-webhook-secret");
/// ```
#[cfg(feature = "secrecy")]
#[cfg_attr(docsrs, doc(cfg(feature = "secrecy")))]
impl From<Secret> for secrecy::SecretSlice<u8> {
    fn from(secret: Secret) -> Self {
        Self::from(secret.as_ref().to_vec())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for Secret {}

/// The error of [`Secret::from_env`]: names the variable, never shows a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromEnvError {
    name: String,
    reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    NotSet,
    Empty,
    NotUnicode,
}

impl FromEnvError {
    /// The name of the environment variable that was read.
    ///
    /// ```
    /// let err = authgear_webhook::Secret::from_env("SURELY_NOT_SET_ANYWHERE").unwrap_err();
    /// assert_eq!(err.name(), "SURELY_NOT_SET_ANYWHERE");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for FromEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.reason {
            Reason::NotSet => "is not set",
            Reason::Empty => "is empty",
            Reason::NotUnicode => "is not valid UTF-8",
        };
        write!(f, "environment variable {} {reason}", self.name)
    }
}

impl std::error::Error for FromEnvError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        for secret in [
            Secret::from("hunter2hunter2"),
            Secret::from(String::from("hunter2hunter2")),
            Secret::from(&b"hunter2hunter2"[..]),
            Secret::from(b"hunter2hunter2".to_vec()),
        ] {
            assert_eq!(secret.as_ref(), b"hunter2hunter2");
            let debug = format!("{secret:?} {secret:#?}");
            assert!(!debug.contains("hunter2"), "{debug}");
        }
    }

    #[test]
    fn key_material_is_wiped_on_drop() {
        // Compile-time proof: the secret wipes itself when dropped, and so do the SHA-256
        // states an HMAC keyed with it holds (inner and outer pad; sha2's `zeroize`).
        fn wiped<T: zeroize::ZeroizeOnDrop>() {}
        wiped::<Secret>();
        wiped::<<sha2::Sha256 as hmac::digest::block_api::CoreProxy>::Core>();
    }

    #[test]
    fn from_file_trims_one_newline_and_names_the_path() {
        use crate::SecretFileErrorKind;
        let dir =
            std::env::temp_dir().join(format!("authgear-webhook-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("secret");
        for (content, want) in [
            (&b"hunter2"[..], Ok(&b"hunter2"[..])),
            (b"hunter2\n", Ok(b"hunter2")),
            (b"hunter2\r\n", Ok(b"hunter2")),
            (b"hunter2\n\n", Ok(b"hunter2\n")),
            (b" hunter2 ", Ok(b" hunter2 ")),
            (b"\xff\x00", Ok(b"\xff\x00")),
            (b"", Err(SecretFileErrorKind::Empty)),
            (b"\n", Err(SecretFileErrorKind::Empty)),
            (b"\r\n", Err(SecretFileErrorKind::Empty)),
        ] {
            std::fs::write(&path, content).expect("write");
            let got = Secret::from_file(&path);
            assert_eq!(
                got.as_ref().map(AsRef::as_ref).map_err(|e| e.kind()),
                want,
                "{content:?}"
            );
            if let Err(error) = got {
                assert_eq!(error.path(), path);
                assert_eq!(
                    error.to_string(),
                    format!("secret file {} is empty", path.display())
                );
            }
        }
        let missing = Secret::from_file(dir.join("missing")).unwrap_err();
        assert_eq!(missing.kind(), SecretFileErrorKind::Unreadable);
        assert!(std::error::Error::source(&missing).is_some());
        let directory = Secret::from_file(&dir).unwrap_err();
        assert_eq!(directory.kind(), SecretFileErrorKind::Unreadable);
        assert!(directory.to_string().contains(&*dir.to_string_lossy()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(feature = "secrecy")]
    #[test]
    fn secrecy_both_ways() {
        use secrecy::{ExposeSecret, SecretSlice, SecretString};
        let from_string = Secret::from(SecretString::from("hunter2"));
        let from_ref = Secret::from(&SecretString::from("hunter2"));
        let from_slice = Secret::from(SecretSlice::from(b"hunter2".to_vec()));
        let from_slice_ref = Secret::from(&SecretSlice::from(b"hunter2".to_vec()));
        for secret in [&from_string, &from_ref, &from_slice, &from_slice_ref] {
            assert_eq!(secret.as_ref(), b"hunter2");
        }
        let back = SecretSlice::<u8>::from(from_string);
        assert_eq!(back.expose_secret(), b"hunter2");
        // The layer and the handle take them as they take any secret.
        let _ = crate::VerifySignatureLayer::new(SecretString::from("hunter2"));
        let _ = crate::Secrets::new(SecretSlice::from(b"hunter2".to_vec()));
    }

    #[test]
    fn from_env_names_the_variable() {
        // Setting variables needs `unsafe` in edition 2024; the empty case is tested by
        // running the example server with an empty secret (tests/suite/example_server.rs).
        let unset = Secret::from_env("AUTHGEAR_WEBHOOK_TEST_UNSET").unwrap_err();
        assert_eq!(unset.name(), "AUTHGEAR_WEBHOOK_TEST_UNSET");
        assert_eq!(
            unset.to_string(),
            "environment variable AUTHGEAR_WEBHOOK_TEST_UNSET is not set"
        );
    }
}
