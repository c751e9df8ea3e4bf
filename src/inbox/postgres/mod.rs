//! The Postgres store: one table in the application's own database, for many instances,
//! and handlers whose writes commit with their event's acknowledgement.
//!
//! [`PostgresStore`] and [`PostgresBuilder`] here, with the schema's versions (its SQL in
//! `schema/*.sql`, applied as every Postgres store's are: `crate::postgres`); the [`Store`] methods, one statement each, in
//! `store_impl.rs`; the transaction a handler writes in, in `transaction.rs`.
//!
//! # Opening
//!
//! [`PostgresBuilder::open`] takes these steps, in order:
//!
//! 1. The schema and the table prefix checked: plain lower-case identifiers, so that they
//!    go into SQL as they are.
//! 2. One transaction: a transaction-level advisory lock on the schema and prefix (an
//!    instance starting at the same moment waits here); the schema created if it is
//!    missing; the versions table (`{prefix}versions`) created if it is missing; the
//!    inbox's version read from it and every migration after it applied, in order, with
//!    the version they reach; commit. A crash or a failing statement leaves the tables as
//!    they were before the transaction.
//! 3. The statements of the [`Store`] methods written out for the schema and prefix.
//!
//! # Schema versions
//!
//! Version `n` is what the migrations `schema/1.sql` to `schema/n.sql` make, applied in
//! order, forward only; the row `inbox` of the table `{schema}.{prefix}versions` holds it.
//! Tables at a version newer than this build knows (a later release wrote them) are
//! refused, [`StoreErrorKind::Unavailable`], "inbox tables were written by a newer
//! version of authgear-webhook", and left as they are. A change of schema is a new file,
//! `schema/{n+1}.sql`, listed in `MIGRATIONS`; a file a release shipped is never
//! edited.

mod store_impl;
mod transaction;

use std::{fmt, future::Future, sync::Arc, time::Duration};

use sqlx::PgPool;

pub use self::transaction::{AckTransaction, Transactional};
// For the docs' links: the store's methods are implemented in `store_impl.rs`.
use super::store::StoreError;
#[cfg(doc)]
use super::store::{Store, StoreErrorKind};
use crate::postgres::{Migrations, Names, within};

/// The inbox's schema versions (the module's docs, "Schema versions").
static MIGRATIONS: Migrations = Migrations {
    store: "inbox",
    files: &[include_str!("schema/1.sql")],
    newer: "inbox tables were written by a newer version of authgear-webhook",
};

/// The inbox in Postgres, in the database the application already runs: one table that
/// every instance fills and empties, so each event is handled by one of them, and
/// handlers whose writes commit in the same transaction as their event's acknowledgement
/// ([`transactional`](Self::transactional)).
///
/// It takes the application's own [`PgPool`](sqlx::PgPool) (sqlx is re-exported as
/// [`authgear_webhook::sqlx`](crate::sqlx), so that both name the same version).
///
/// # Durability
///
/// [`store`](Store::store) commits with `synchronous_commit` set to `on` for its own
/// transaction, whatever the server's or the connection's setting: its `Ok` (the 200)
/// comes after the event is in the server's WAL on disk (`fsync`), so an acknowledged
/// event survives a crash of Postgres and of its machine, given `fsync = on` (Postgres's
/// default; never turn it off) and a disk that honours it. With synchronous replication
/// (`synchronous_standby_names`), `on` also waits for the standby to have it on disk, so a
/// failover to that standby loses nothing acknowledged either; asynchronous replicas may
/// lack the last acknowledged events when promoted.
///
/// # Many instances
///
/// Any number of stores (processes) share one table. A claim takes the due rows with
/// `FOR UPDATE SKIP LOCKED`, so two instances never claim one event and never wait for
/// each other. A claim holds until its deadline (the worker's `claim_for`, renewed while the
/// handler runs); the rows of an instance that died are claimable again once their
/// deadline passes: handed over, as one more attempt. Times are the database's clock, one
/// for all instances; only [`prune`](Store::prune)'s `before` comes from the caller's.
///
/// The catch-up's leases and checkpoints ([`Store::lease`], [`Store::set_checkpoint`]) are
/// rows of a second table, `{prefix}catchup`: a lease runs on the database's clock too, and
/// a checkpoint is committed with `synchronous_commit` on, as a delivery is.
///
/// # Faults
///
/// Every call has a [`timeout`](PostgresBuilder::timeout) (default 5 s), waiting for a
/// connection from the pool included. Postgres unreachable or restarting, read-only
/// (`default_transaction_read_only`, a standby, a failover in progress), a statement
/// cancelled (`statement_timeout`), or no answer within the timeout:
/// [`StoreErrorKind::Unavailable`]; disk full: [`StoreErrorKind::Full`]; no connection
/// to be had (pool exhausted, too many connections): [`StoreErrorKind::Busy`]. The layer
/// answers 503, the worker backs off; the pool makes new connections when Postgres is
/// back, and the store works again.
///
/// # Sizing the pool
///
/// Each call takes a connection for one statement (a delivery too: one round trip, its own
/// transaction, held until the commit's WAL flush). A
/// [`transactional`](Self::transactional) handler holds one for as long as it runs, and its
/// heartbeat needs another now and then: give the pool at least the worker's
/// [`concurrency`](super::Worker::concurrency) plus the deliveries you expect at once.
///
/// ```no_run
/// use authgear_webhook::{inbox::{Inbox, PostgresStore}, sqlx::PgPool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
/// let store = PostgresStore::open(pool).await?;
/// let inbox = Inbox::new(store);
/// println!("{:?}", inbox.counts().await?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    shared: Arc<Shared>,
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
    sql: store_impl::Sql,
    timeout: Duration,
}

impl PostgresStore {
    /// A store on `pool` with the default settings (schema `public`, tables
    /// `authgear_webhook_inbox`, `authgear_webhook_catchup` and `authgear_webhook_versions`),
    /// its tables created or migrated.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = authgear_webhook::sqlx::PgPool::connect("postgres://app@localhost/app").await?;
    /// let store = authgear_webhook::inbox::PostgresStore::open(pool).await?;
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
    /// let store = authgear_webhook::inbox::PostgresStore::builder(pool)
    ///     .schema("webhooks")
    ///     .table_prefix("billing_")
    ///     .timeout(Duration::from_secs(2))
    ///     .open()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(pool: PgPool) -> PostgresBuilder {
        PostgresBuilder {
            pool,
            names: Names::default_names(),
            timeout: Duration::from_secs(5),
        }
    }

    /// The pool the store uses (the one it was opened with).
    ///
    /// ```no_run
    /// # async fn f(store: authgear_webhook::inbox::PostgresStore) {
    /// let pool = store.pool().clone();
    /// # }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The inbox's table, schema-qualified (`public.authgear_webhook_inbox` by default):
    /// for monitoring queries of your own.
    ///
    /// ```no_run
    /// # async fn f(store: authgear_webhook::inbox::PostgresStore) {
    /// println!("the inbox is {}", store.table());
    /// # }
    /// ```
    pub fn table(&self) -> &str {
        &self.shared.sql.table
    }

    /// Runs `work` within the store's timeout; its errors made store errors.
    fn call<T, F>(&self, work: impl FnOnce(PgPool, Arc<Shared>) -> F) -> super::StoreFuture<T>
    where
        F: Future<Output = Result<T, sqlx::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let work = work(self.pool.clone(), self.shared.clone());
        Box::pin(within(self.shared.timeout, work))
    }
}

impl PostgresBuilder {
    /// The schema of the tables (default `public`), created at [`open`](Self::open) if it
    /// is missing (which needs the `CREATE` privilege on the database; an existing one
    /// needs only `USAGE` and `CREATE` on it). A plain lower-case identifier: letters,
    /// digits and `_`, not starting with a digit.
    ///
    /// ```no_run
    /// # fn f(pool: authgear_webhook::sqlx::PgPool) {
    /// let builder = authgear_webhook::inbox::PostgresStore::builder(pool).schema("webhooks");
    /// # }
    /// ```
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.names.schema = schema.into();
        self
    }

    /// The start of the tables' and indexes' names (default `authgear_webhook_`: tables
    /// `authgear_webhook_inbox`, `authgear_webhook_catchup` and `authgear_webhook_versions`).
    /// Stores with different prefixes (or schemas) are independent inboxes in one database.
    /// Lower-case letters, digits and `_`, not starting with a digit, at most 48 bytes; may
    /// be empty.
    ///
    /// ```no_run
    /// # fn f(pool: authgear_webhook::sqlx::PgPool) {
    /// let builder = authgear_webhook::inbox::PostgresStore::builder(pool).table_prefix("staging_");
    /// # }
    /// ```
    pub fn table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.names.prefix = prefix.into();
        self
    }

    /// How long each call may take, waiting for a connection included, before it fails
    /// (default 5 s): a delivery gets 503 this soon when Postgres is unreachable or stalled.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # fn f(pool: authgear_webhook::sqlx::PgPool) {
    /// let builder = authgear_webhook::inbox::PostgresStore::builder(pool)
    ///     .timeout(Duration::from_secs(2));
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Creates or migrates the tables (the module's steps) and makes the store.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = authgear_webhook::sqlx::PgPool::connect("postgres://app@localhost/app").await?;
    /// let store = authgear_webhook::inbox::PostgresStore::builder(pool).open().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] of kind [`Unavailable`](StoreErrorKind::Unavailable) when the
    /// schema or the prefix is not a plain lower-case identifier, Postgres cannot be reached
    /// within the [`timeout`](Self::timeout) (doubled: a migration may wait for another
    /// instance's), the user lacks a privilege the migration needs, or the tables were
    /// written by a newer version of this crate (left as they are).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the migrations run in one transaction, which a dropped future rolls
    /// back (the connection returns to the pool and finishes it there).
    pub async fn open(self) -> Result<PostgresStore, StoreError> {
        // Twice the timeout: a migration may wait for another instance's.
        crate::postgres::migrate(
            self.pool.clone(),
            &self.names,
            &MIGRATIONS,
            self.timeout * 2,
        )
        .await?;
        Ok(PostgresStore {
            pool: self.pool,
            shared: Arc::new(Shared {
                sql: store_impl::Sql::new(&self.names),
                names: self.names,
                timeout: self.timeout,
            }),
        })
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

#[cfg(test)]
mod tests {
    use super::PostgresStore;

    /// `open` can be awaited in a spawned task (sqlx's executors on a transaction make
    /// futures that are not always `Send`).
    #[allow(dead_code)]
    fn open_is_send(pool: sqlx::PgPool) {
        fn send<T: Send>(_: T) {}
        send(PostgresStore::open(pool));
    }
}
