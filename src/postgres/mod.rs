//! What the Postgres stores share (features `inbox-postgres` and `replay-postgres`): where
//! their tables are ([`Names`]), how a sqlx error becomes a store error ([`error`]), and
//! how a store's tables are created and migrated ([`migrate`]).

mod migrate;

use std::{future::Future, time::Duration};

pub(crate) use self::migrate::{Migrations, migrate};
use crate::store_error::{StoreError, StoreErrorKind};

/// Where a store's tables are: a schema, and a prefix to their names.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) schema: String,
    pub(crate) prefix: String,
}

impl Names {
    /// Schema `public`, prefix `authgear_webhook_`.
    pub(crate) fn default_names() -> Self {
        Self {
            schema: "public".to_owned(),
            prefix: "authgear_webhook_".to_owned(),
        }
    }

    /// `sql` with `{schema}` and `{prefix}` replaced.
    pub(crate) fn apply(&self, sql: &str) -> String {
        sql.replace("{schema}", &self.schema)
            .replace("{prefix}", &self.prefix)
    }

    /// Plain lower-case identifiers (ASCII letters, digits, `_`; a letter or `_` first),
    /// short enough for every name made from them (Postgres cuts names at 63 bytes).
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        let plain = |name: &str, max: usize| {
            name.len() <= max
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        };
        if !self.schema.is_empty() && plain(&self.schema, 63) && plain(&self.prefix, 48) {
            Ok(())
        } else {
            Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "invalid Postgres schema or table prefix",
                None,
            ))
        }
    }
}

/// `work` within `timeout`; its errors made store errors, and no answer in time an
/// [`Unavailable`](StoreErrorKind::Unavailable) one.
pub(crate) async fn within<T>(
    timeout: Duration,
    work: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.map_err(error),
        Err(_) => Err(late()),
    }
}

/// The error of a call Postgres did not answer in time.
pub(crate) fn late() -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        "Postgres did not answer in time",
        None,
    )
}

/// A sqlx error as a store error: what happened in a few words (never a URL or a value);
/// the cause as its source.
pub(crate) fn error(error: sqlx::Error) -> StoreError {
    use StoreErrorKind::{Busy, Full, Unavailable};
    let (kind, message) = match &error {
        sqlx::Error::Database(database) => match database.code().as_deref().unwrap_or("") {
            "25006" => (Unavailable, "Postgres is read-only"),
            "57014" => (Unavailable, "Postgres cancelled the statement (timeout)"),
            "53100" => (Full, "Postgres's disk is full"),
            "53300" => (Busy, "Postgres has too many connections"),
            "40001" | "40P01" | "55P03" => (Busy, "Postgres is busy"),
            code if code.starts_with("08") || code.starts_with("57P") => {
                (Unavailable, "Postgres is unreachable")
            }
            code if code.starts_with("53") => (Full, "Postgres is out of resources"),
            code if code.starts_with("42") => (Unavailable, "Postgres refused the store's SQL"),
            _ => (Unavailable, "Postgres refused the statement"),
        },
        sqlx::Error::PoolTimedOut => (Busy, "no Postgres connection in time"),
        sqlx::Error::PoolClosed => (Unavailable, "the Postgres pool is closed"),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => (Unavailable, "Postgres is unreachable"),
        _ => (Unavailable, "Postgres store failed"),
    };
    StoreError::new(kind, message, Some(Box::new(error)))
}

#[cfg(test)]
mod tests {
    use super::Names;

    #[test]
    fn schemas_and_prefixes_are_plain_lower_case_identifiers() {
        let long = "a".repeat(64);
        #[rustfmt::skip]
        let cases = [
            ("public", "authgear_webhook_", true),
            ("hooks_2", "", true),
            ("_x", "p1_", true),
            ("", "p_", false),
            ("Public", "p_", false),
            ("public", "P_", false),
            ("1abc", "p_", false),
            ("public", "1p_", false),
            ("pub lic", "p_", false),
            ("public", "p\"; DROP TABLE x; --", false),
            ("public", "é_", false),
            (long.as_str(), "p_", false),
            (&long[..63], "p_", true),
        ];
        for (schema, prefix, ok) in cases {
            let names = Names {
                schema: schema.into(),
                prefix: prefix.into(),
            };
            assert_eq!(names.check().is_ok(), ok, "{schema:?} {prefix:?}");
        }
    }
}
