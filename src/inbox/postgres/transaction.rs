//! Exactly-once effects: a handler that writes in the transaction that marks its event
//! handled.

use std::{
    fmt,
    future::Future,
    ops::{Deref, DerefMut},
    sync::Arc,
};

use sqlx::{PgConnection, Postgres, Transaction};

use super::PostgresStore;
use crate::inbox::{
    store::{EventKey, StoreError},
    worker::{Delivery, Handler, HandlerFuture},
};
use crate::postgres::error;

/// The transaction a [`transactional`](PostgresStore::transactional) handler writes in:
/// the one that marks its event handled. It dereferences to the connection
/// ([`PgConnection`]), so `sqlx::query(..).execute(&mut *tx)` runs a statement in it.
///
/// The handler gives it back when it succeeds; the store then marks the event handled in
/// it and commits. Dropped (the handler failed, panicked, or was dropped), it rolls back.
/// Don't commit it yourself: the event would stay unacknowledged and be handled again.
pub struct AckTransaction {
    tx: Transaction<'static, Postgres>,
    key: EventKey,
}

impl Deref for AckTransaction {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for AckTransaction {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl fmt::Debug for AckTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckTransaction")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A [`Handler`] whose writes commit with its event's acknowledgement, or not at all:
/// [`PostgresStore::transactional`].
pub struct Transactional<F> {
    store: PostgresStore,
    handler: Arc<F>,
}

impl<F> Clone for Transactional<F> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            handler: self.handler.clone(),
        }
    }
}

impl<F> fmt::Debug for Transactional<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transactional")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// `handler` as a [`Handler`] that writes in the transaction that acknowledges its
    /// event: what it writes there is committed together with the event's `done`, or not at
    /// all. Exactly-once effects, where the plain handler gets at least once.
    ///
    /// For each event, the worker begins a transaction on this store's pool and calls
    /// `handler` with it ([`AckTransaction`]) and the [`Delivery`]. When the handler gives
    /// the transaction back (`Ok`), the event's row is marked handled in it, if this
    /// worker's claim still holds the event, and the transaction commits. Otherwise
    /// nothing the handler wrote is committed:
    ///
    /// - the handler fails (`Err`) or panics: rolled back; the event is retried, as with
    ///   any handler;
    /// - the claim was lost (its deadline passed and another worker claimed the event):
    ///   rolled back; the other worker's attempt is the one that counts;
    /// - the process dies, the connection breaks, or the handler's future is dropped, at
    ///   any point before the commit: rolled back (by Postgres, or by sqlx when the
    ///   transaction is dropped); the event is handed over when its claim expires;
    /// - the commit's answer is lost (the connection breaks during `COMMIT`): both were
    ///   committed or neither; an event committed is not handled again.
    ///
    /// The handler's writes and the event's row must be in the same database, through this
    /// store's pool. Keep the handler's transaction short: it holds a connection of the pool
    /// and the locks it takes until it commits. Use it with the [`Worker`](crate::inbox::Worker)
    /// of an [`Inbox`](crate::inbox::Inbox) on this store.
    ///
    /// ```no_run
    /// use authgear_webhook::{
    ///     inbox::{AckTransaction, CancellationToken, Delivery, Inbox, PostgresStore, Worker},
    ///     sqlx::{self, PgPool},
    /// };
    ///
    /// async fn handle(mut tx: AckTransaction, delivery: Delivery) -> Result<AckTransaction, sqlx::Error> {
    ///     sqlx::query("INSERT INTO handled (event_id, event_type) VALUES ($1, $2)")
    ///         .bind(&delivery.event.id)
    ///         .bind(delivery.event.event_type())
    ///         .execute(&mut *tx)
    ///         .await?;
    ///     Ok(tx)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
    /// let store = PostgresStore::open(pool).await?;
    /// let inbox = Inbox::new(store.clone());
    /// let shutdown = CancellationToken::new();
    /// let worker = tokio::spawn(Worker::new(inbox).run(store.transactional(handle), shutdown.clone()));
    /// // ... serve until told to stop, then:
    /// shutdown.cancel();
    /// worker.await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn transactional<F, Fut, E>(&self, handler: F) -> Transactional<F>
    where
        F: Fn(AckTransaction, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<AckTransaction, E>> + Send + 'static,
        E: fmt::Display,
    {
        Transactional {
            store: self.clone(),
            handler: Arc::new(handler),
        }
    }
}

impl<F, Fut, E> Handler for Transactional<F>
where
    F: Fn(AckTransaction, Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AckTransaction, E>> + Send + 'static,
    E: fmt::Display,
{
    fn handle(&self, delivery: Delivery) -> HandlerFuture {
        let (store, handler) = (self.store.clone(), self.handler.clone());
        Box::pin(async move {
            let key = delivery.key.clone();
            let token = delivery.token.parse::<i64>().unwrap_or(-1);
            let timeout = store.shared.timeout;
            let begin = tokio::time::timeout(timeout, store.pool.begin());
            let tx = match begin.await {
                Ok(Ok(tx)) => tx,
                Ok(Err(e)) => return Err(described("cannot begin", &error(e))),
                Err(_) => return Err("cannot begin: Postgres did not answer in time".into()),
            };
            let tx = AckTransaction {
                tx,
                key: key.clone(),
            };
            let AckTransaction { mut tx, key: given } =
                handler(tx, delivery).await.map_err(|e| e.to_string())?;
            if given != key {
                // Dropped: rolled back.
                return Err("the handler gave back another event's transaction".into());
            }
            let acked = sqlx::query(&store.shared.sql.ack_claimed)
                .bind(&key.endpoint)
                .bind(&key.id)
                .bind(token);
            let finish = async move {
                if acked.execute(&mut *tx).await?.rows_affected() != 1 {
                    return Ok(false);
                }
                tx.commit().await.map(|()| true)
            };
            match tokio::time::timeout(timeout, finish).await {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) => {
                    Err("claim lost while handling: rolled back; another worker has it".into())
                }
                Ok(Err(e)) => Err(described("cannot commit", &error(e))),
                Err(_) => Err("cannot commit: Postgres did not answer in time".into()),
            }
        })
    }
}

/// `what` and the store error, for the event's last error (never a value or a URL).
fn described(what: &str, error: &StoreError) -> String {
    format!("{what}: {error}")
}
