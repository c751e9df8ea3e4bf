//! The Postgres seen-ids store, shared by every instance: one table in the application's
//! own database, its versions in `schema/*.sql` (applied as every Postgres store's are:
//! `crate::postgres`).

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use sqlx::PgPool;
use tokio::runtime::Handle;

use super::{SeenIds, StoreError, StoreFuture};
use crate::postgres::{Migrations, Names, migrate, within};

/// The store's schema versions.
static MIGRATIONS: Migrations = Migrations {
    store: "replay",
    files: &[include_str!("schema/1.sql")],
    newer: "replay tables were written by a newer version of authgear-webhook",
};

/// How often the rows past their window are swept (by whichever call comes first after).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The most rows one sweep removes: a short statement; the next sweep takes the rest.
const SWEEP_MAX: i64 = 10_000;

/// Remembers deliveries and their answers in Postgres, in the database the application
/// already runs, so that any number of instances behind a load balancer share them and
/// behave as one. Each step is one atomic statement on one table (`authgear_webhook_replay`
/// by default): claim (insert the key unless a row within its window holds it, or read
/// that row's value), record the answer (compare and set), release (compare and delete).
///
/// It takes the application's own [`PgPool`](sqlx::PgPool) (sqlx is re-exported as
/// [`authgear_webhook::sqlx`](crate::sqlx)); the table is created or migrated when the
/// store is opened, as the inbox's are, and may share the inbox's schema and prefix. Rows
/// past their window count as absent and are deleted about once a minute. Its commits do not
/// wait for the disk (`synchronous_commit` off for its own statements, as Redis without
/// `appendfsync always`): a crash of Postgres may forget the last deliveries seen, which
/// then run the handler once more if Authgear repeats them.
///
/// An unreachable or slow Postgres (more than the [`timeout`](PostgresBuilder::timeout),
/// default one second, waiting for a connection included) is a [`StoreError`]: the delivery
/// is refused with 503 unless [`fail_open`](super::ReplayProtection::fail_open) was chosen.
/// Recording an answer and releasing a claim run in the background on the Tokio runtime the
/// store was opened in; if one fails, the key keeps its claim until its window ends.
///
/// ```no_run
/// use authgear_webhook::{replay::{PostgresStore, ReplayProtection}, sqlx::PgPool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
/// let store = PostgresStore::open(pool).await?;
/// let layer = ReplayProtection::new(store).layer();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    shared: Arc<Shared>,
    runtime: Option<Handle>,
}

/// Settings for [`PostgresStore`]: [`PostgresStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresBuilder {
    pool: PgPool,
    names: Names,
    timeout: Duration,
}

/// What the clones of a store share.
#[derive(Debug)]
struct Shared {
    names: Names,
    sql: Sql,
    timeout: Duration,
    /// When the store was opened: the clock of `next_sweep`.
    opened: Instant,
    /// Milliseconds after `opened` when the next sweep is due.
    next_sweep: AtomicU64,
}

/// The statements, written out for one schema and prefix.
#[derive(Debug)]
struct Sql {
    /// The table, schema-qualified.
    table: String,
    /// The row's value after the step: this copy's own when it was absent or past its
    /// window (now claimed), the value there otherwise. Always one row, written atomically
    /// under the key's lock, whatever another instance does at the same moment.
    insert_if_absent: String,
    replace: String,
    remove: String,
    sweep: String,
}

impl Sql {
    fn new(names: &Names) -> Self {
        let table = names.apply("{schema}.{prefix}replay");
        // Each statement's commit does not wait for the disk (`synchronous_commit` off for
        // its own implicit transaction, set by the statement itself): a claim or an answer
        // lost in a crash of Postgres costs at most one more run of a handler, while a
        // synced commit would make every delivery wait for an `fsync` before its handler.
        let sql = |text: &str| {
            let text = text.replace("{t}", &table);
            format!("WITH async AS (SELECT set_config('synchronous_commit', 'off', true)) {text}")
        };
        Self {
            insert_if_absent: sql("INSERT INTO {t} AS s (key, value, expires_at)
                 SELECT $1, $2, now() + $3::int8 * interval '1 millisecond' FROM async
                 ON CONFLICT (key) DO UPDATE SET
                     value = CASE WHEN s.expires_at <= now()
                                  THEN excluded.value ELSE s.value END,
                     expires_at = CASE WHEN s.expires_at <= now()
                                       THEN excluded.expires_at ELSE s.expires_at END
                 RETURNING value"),
            replace: sql("UPDATE {t}
                 SET value = $3, expires_at = now() + $4::int8 * interval '1 millisecond'
                 FROM async WHERE key = $1 AND value = $2"),
            remove: sql("DELETE FROM {t} USING async WHERE key = $1 AND value = $2"),
            sweep: sql("DELETE FROM {t} USING async WHERE key IN (
                 SELECT key FROM {t} WHERE expires_at < now() LIMIT $1)"),
            table,
        }
    }
}

impl PostgresStore {
    /// A store on `pool` with the default settings (schema `public`, table
    /// `authgear_webhook_replay`, versions in `authgear_webhook_versions`), its table
    /// created or migrated. Call it within the Tokio runtime that serves the deliveries.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = authgear_webhook::sqlx::PgPool::connect("postgres://app@localhost/app").await?;
    /// let store = authgear_webhook::replay::PostgresStore::open(pool).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`PostgresBuilder::open`].
    ///
    /// # Cancel safety
    ///
    /// As [`PostgresBuilder::open`].
    pub async fn open(pool: PgPool) -> Result<Self, StoreError> {
        Self::builder(pool).open().await
    }

    /// Settings for a store on `pool`.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = authgear_webhook::sqlx::PgPool::connect("postgres://app@localhost/app").await?;
    /// let store = authgear_webhook::replay::PostgresStore::builder(pool)
    ///     .schema("webhooks")
    ///     .timeout(Duration::from_millis(500))
    ///     .open()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(pool: PgPool) -> PostgresBuilder {
        PostgresBuilder {
            pool,
            names: Names::default_names(),
            timeout: Duration::from_secs(1),
        }
    }

    /// The store's table, schema-qualified (`public.authgear_webhook_replay` by default).
    ///
    /// ```no_run
    /// # async fn f(store: authgear_webhook::replay::PostgresStore) {
    /// println!("seen deliveries are in {}", store.table());
    /// # }
    /// ```
    pub fn table(&self) -> &str {
        &self.shared.sql.table
    }

    /// Runs `statement` (one of the store's, with its arguments) in the background within
    /// the timeout: nobody waits for a recorded answer, a release or a sweep.
    fn spawn(&self, statement: impl FnOnce(PgPool) -> BoxedExecute) {
        let task = within(self.shared.timeout, statement(self.pool.clone()));
        if let Some(runtime) = Handle::try_current().ok().or_else(|| self.runtime.clone()) {
            runtime.spawn(async move {
                let _ = task.await;
            });
        }
    }

    /// Sweeps the rows past their window when a sweep is due (about once a minute).
    fn sweep_when_due(&self) {
        let now = u64::try_from(self.shared.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.shared.next_sweep.load(Ordering::Relaxed);
        let next = now.saturating_add(u64::try_from(SWEEP_EVERY.as_millis()).unwrap_or(0));
        // One caller wins the due sweep; the others see the next time.
        if now >= due
            && self
                .shared
                .next_sweep
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let shared = self.shared.clone();
            self.spawn(move |pool| {
                Box::pin(async move {
                    sqlx::query(&shared.sql.sweep)
                        .bind(SWEEP_MAX)
                        .execute(&pool)
                        .await
                        .map(drop)
                })
            });
        }
    }
}

/// A statement running on its own, its result dropped.
type BoxedExecute =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send>>;

impl PostgresBuilder {
    /// The schema of the table (default `public`), created at [`open`](Self::open) if it is
    /// missing. A plain lower-case identifier: letters, digits and `_`, not starting with a
    /// digit.
    ///
    /// ```no_run
    /// # fn f(pool: authgear_webhook::sqlx::PgPool) {
    /// let builder = authgear_webhook::replay::PostgresStore::builder(pool).schema("webhooks");
    /// # }
    /// ```
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.names.schema = schema.into();
        self
    }

    /// The start of the table's and index's names (default `authgear_webhook_`: table
    /// `authgear_webhook_replay`, versions in `authgear_webhook_versions`). Lower-case
    /// letters, digits and `_`, not starting with a digit, at most 48 bytes; may be empty.
    ///
    /// ```no_run
    /// # fn f(pool: authgear_webhook::sqlx::PgPool) {
    /// let builder = authgear_webhook::replay::PostgresStore::builder(pool).table_prefix("staging_");
    /// # }
    /// ```
    pub fn table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.names.prefix = prefix.into();
        self
    }

    /// How long each step may take, waiting for a connection included, before it fails
    /// (default 1 s; Authgear waits 5 s for a blocking event's answer).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # fn f(pool: authgear_webhook::sqlx::PgPool) {
    /// let builder = authgear_webhook::replay::PostgresStore::builder(pool)
    ///     .timeout(Duration::from_millis(500));
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Creates or migrates the table and makes the store. Call it within the Tokio runtime
    /// that serves the deliveries.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = authgear_webhook::sqlx::PgPool::connect("postgres://app@localhost/app").await?;
    /// let store = authgear_webhook::replay::PostgresStore::builder(pool).open().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] of kind [`Unavailable`](super::StoreErrorKind::Unavailable) when
    /// the schema or the prefix is not a plain lower-case identifier, Postgres cannot be
    /// reached within five times the [`timeout`](Self::timeout) (a migration may wait for
    /// another instance's), the user lacks a privilege the migration needs, or the table was
    /// written by a newer version of this crate (left as it is).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the migrations run in one transaction, which a dropped future rolls
    /// back.
    pub async fn open(self) -> Result<PostgresStore, StoreError> {
        // Five times the timeout: a migration may wait for another instance's.
        migrate(
            self.pool.clone(),
            &self.names,
            &MIGRATIONS,
            self.timeout * 5,
        )
        .await?;
        Ok(PostgresStore {
            pool: self.pool,
            shared: Arc::new(Shared {
                sql: Sql::new(&self.names),
                names: self.names,
                timeout: self.timeout,
                opened: Instant::now(),
                next_sweep: AtomicU64::new(0),
            }),
            runtime: Handle::try_current().ok(),
        })
    }
}

/// A duration in milliseconds, at least one.
fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

impl SeenIds for PostgresStore {
    fn insert_if_absent(
        &self,
        key: String,
        value: Bytes,
        ttl: Duration,
    ) -> StoreFuture<Option<Bytes>> {
        self.sweep_when_due();
        let (pool, shared) = (self.pool.clone(), self.shared.clone());
        Box::pin(async move {
            let statement = sqlx::query_scalar::<_, Vec<u8>>(&shared.sql.insert_if_absent)
                .bind(&key)
                .bind(&value[..])
                .bind(millis(ttl))
                .fetch_one(&pool);
            let current = within(shared.timeout, statement).await?;
            // Claim values are unique (each carries a token of its own): the row holds
            // this copy's value only if this copy set it.
            Ok((current != value[..]).then(|| Bytes::from(current)))
        })
    }

    fn replace(&self, key: String, current: Bytes, value: Bytes, ttl: Duration) {
        let shared = self.shared.clone();
        self.spawn(move |pool| {
            Box::pin(async move {
                sqlx::query(&shared.sql.replace)
                    .bind(key)
                    .bind(&current[..])
                    .bind(&value[..])
                    .bind(millis(ttl))
                    .execute(&pool)
                    .await
                    .map(drop)
            })
        });
    }

    fn remove(&self, key: String, current: Bytes) {
        let shared = self.shared.clone();
        self.spawn(move |pool| {
            Box::pin(async move {
                sqlx::query(&shared.sql.remove)
                    .bind(key)
                    .bind(&current[..])
                    .execute(&pool)
                    .await
                    .map(drop)
            })
        });
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's options hold the connection's password: not shown.
        f.debug_struct("PostgresStore")
            .field("schema", &self.shared.names.schema)
            .field("prefix", &self.shared.names.prefix)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}
