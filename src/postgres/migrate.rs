//! How a store's tables are brought to the newest version: its migrations (`schema/*.sql`
//! beside the store), applied in order, forward only, recorded in the versions table that
//! every store of one schema and prefix shares (one row per store).

use std::time::Duration;

use sqlx::{Executor, PgConnection, PgPool, Row};

use super::{Names, error};
use crate::store_error::{StoreError, StoreErrorKind};

/// A store's schema versions.
#[derive(Debug)]
pub(crate) struct Migrations {
    /// The store's row in `{schema}.{prefix}versions`.
    pub(crate) store: &'static str,
    /// `files[n]` takes the store's tables from version `n` to `n + 1`; a file a release
    /// shipped is never edited.
    pub(crate) files: &'static [&'static str],
    /// The refusal of tables at a version newer than `files` reaches.
    pub(crate) newer: &'static str,
}

impl Migrations {
    /// The version this build makes: the tables are at it once a store is open.
    fn latest(&self) -> i32 {
        i32::try_from(self.files.len()).unwrap_or(i32::MAX)
    }
}

/// Checks `names`, then brings the tables of `migrations` they name to the latest version
/// within `timeout`: in one transaction, under a transaction-level advisory lock on the
/// schema and prefix, so that instances starting together apply each migration once (the
/// others wait, then find it applied). A crash or a failing statement leaves the tables as
/// they were.
///
/// # Errors
///
/// Names that are not plain identifiers (nothing sent), a version this build does not know
/// ([`StoreErrorKind::Unavailable`], nothing written), Postgres unreachable or not done
/// within `timeout`, or a migration that fails (the transaction rolled back).
pub(crate) async fn migrate(
    pool: PgPool,
    names: &Names,
    migrations: &'static Migrations,
    timeout: Duration,
) -> Result<(), StoreError> {
    names.check()?;
    tokio::time::timeout(timeout, migrate_now(pool, names.clone(), migrations))
        .await
        .map_err(|_| super::late())?
}

/// [`migrate`] without the checks and the time limit.
async fn migrate_now(
    pool: PgPool,
    names: Names,
    migrations: &'static Migrations,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(error)?;
    match step(&mut tx, &names, migrations).await? {
        // Nothing written: the versions table was there.
        Some(version) => Err(unknown(version, migrations)),
        None => tx.commit().await.map_err(error),
    }
}

/// Inside `migrate`'s transaction: the migrations this database lacks. `Some(version)`
/// when the tables are at a version this build does not know.
async fn step(
    tx: &mut PgConnection,
    names: &Names,
    migrations: &Migrations,
) -> Result<Option<i32>, StoreError> {
    // The executor's own methods throughout: `Query::execute` and the like on a borrowed
    // connection make futures that are not `Send` for every lifetime (a known limit of
    // the compiler), and `open` must be usable in a spawned task.
    let lock = sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(format!(
        "authgear-webhook {}.{}",
        names.schema, names.prefix
    ));
    tx.execute(lock).await.map_err(error)?;
    let exists = sqlx::query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(&names.schema);
    let schema_exists: bool = tx
        .fetch_one(exists)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(error)?;
    if !schema_exists {
        // Only when missing: creating a schema needs a privilege that using one does not.
        let create = format!("CREATE SCHEMA IF NOT EXISTS {}", names.schema);
        tx.execute(&*create).await.map_err(error)?;
    }
    let versions = names.apply(
        "CREATE TABLE IF NOT EXISTS {schema}.{prefix}versions (
             store   text PRIMARY KEY,
             version integer NOT NULL
         )",
    );
    tx.execute(&*versions).await.map_err(error)?;
    let select = names.apply("SELECT version FROM {schema}.{prefix}versions WHERE store = $1");
    let row = tx
        .fetch_optional(sqlx::query(&select).bind(migrations.store))
        .await
        .map_err(error)?;
    let version: i32 = match row {
        Some(row) => row.try_get(0).map_err(error)?,
        None => 0,
    };
    let Some(missing) = usize::try_from(version)
        .ok()
        .and_then(|done| migrations.files.get(done..))
    else {
        return Ok(Some(version));
    };
    if missing.is_empty() {
        return Ok(None);
    }
    for migration in missing {
        // Several statements: the simple query protocol, no parameters.
        let migration = names.apply(migration);
        tx.execute(sqlx::raw_sql(&migration)).await.map_err(error)?;
    }
    let set = names.apply(
        "INSERT INTO {schema}.{prefix}versions (store, version) VALUES ($1, $2)
         ON CONFLICT (store) DO UPDATE SET version = excluded.version",
    );
    tx.execute(
        sqlx::query(&set)
            .bind(migrations.store)
            .bind(migrations.latest()),
    )
    .await
    .map_err(error)?;
    Ok(None)
}

/// The refusal of tables at `version`, which this build does not know.
fn unknown(version: i32, migrations: &Migrations) -> StoreError {
    let latest = migrations.latest();
    let message = if version > latest {
        migrations.newer
    } else {
        "tables have a schema version authgear-webhook never wrote"
    };
    let versions = format!(
        "{} schema version {version}; this build knows 0 to {latest}",
        migrations.store
    );
    StoreError::new(StoreErrorKind::Unavailable, message, Some(versions.into()))
}
