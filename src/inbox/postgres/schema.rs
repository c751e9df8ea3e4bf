//! The tables' schema: its versions, in `schema/*.sql`, and how a database is brought to
//! the newest (the parent module's docs, "Schema versions").

use sqlx::{Executor, PgConnection, PgPool, Row};

use super::{Names, error};
use crate::inbox::store::{StoreError, StoreErrorKind};

/// The migrations, in order: `MIGRATIONS[n]` takes the tables from version `n` to `n + 1`.
const MIGRATIONS: [&str; 1] = [include_str!("schema/1.sql")];

/// The version this build makes: the tables are at it once a store is open.
const LATEST: i32 = MIGRATIONS.len() as i32;

/// The row of the versions table that holds the inbox's version.
const STORE: &str = "inbox";

/// Brings the inbox's tables named by `names` to [`LATEST`]: in one transaction, under a
/// transaction-level advisory lock on the schema and prefix, so that instances starting
/// together apply each migration once (the others wait, then find it applied).
///
/// # Errors
///
/// A version this build does not know ([`StoreErrorKind::Unavailable`], nothing written),
/// Postgres unreachable, or a migration that fails (the transaction rolled back: the
/// tables at the version before it).
pub(super) async fn migrate(pool: PgPool, names: Names) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(error)?;
    match step(&mut tx, &names).await? {
        // Nothing written: the versions table was there.
        Some(version) => Err(unknown(version)),
        None => tx.commit().await.map_err(error),
    }
}

/// Inside `migrate`'s transaction: the migrations this database lacks. `Some(version)`
/// when the tables are at a version this build does not know.
async fn step(tx: &mut PgConnection, names: &Names) -> Result<Option<i32>, StoreError> {
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
        .fetch_optional(sqlx::query(&select).bind(STORE))
        .await
        .map_err(error)?;
    let version: i32 = match row {
        Some(row) => row.try_get(0).map_err(error)?,
        None => 0,
    };
    let Some(missing) = usize::try_from(version)
        .ok()
        .and_then(|done| MIGRATIONS.get(done..))
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
    tx.execute(sqlx::query(&set).bind(STORE).bind(LATEST))
        .await
        .map_err(error)?;
    Ok(None)
}

/// The refusal of tables at `version`, which this build does not know.
fn unknown(version: i32) -> StoreError {
    let message = if version > LATEST {
        "inbox tables were written by a newer version of authgear-webhook"
    } else {
        "inbox tables have a schema version authgear-webhook never wrote"
    };
    let versions = format!("schema version {version}; this build knows 0 to {LATEST}");
    StoreError::new(StoreErrorKind::Unavailable, message, Some(versions.into()))
}
