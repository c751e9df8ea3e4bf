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
