//! The [`Store`] methods: one statement each (a delivery: one transaction, to sync it), on
//! the table `{schema}.{prefix}inbox` of `schema/*.sql`, and the catch-up's leases and
//! checkpoints on `{schema}.{prefix}catchup`.

use std::{
    collections::HashSet,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use std::sync::Arc;

use sqlx::{Executor, PgPool, Row};

use super::{PostgresStore, Shared};
use crate::inbox::store::{
    Claimed, Counts, DeadLetter, EventKey, Failure, NewEvent, Store, StoreFuture, Stored,
    checkpoint_at, checkpoint_ms,
};
use crate::postgres::Names;

/// States, as stored in the `state` column.
const QUEUED: i16 = 0;
const CLAIMED: i16 = 1;
const DONE: i16 = 2;
const DEAD: i16 = 3;

/// The longest delay put in the table (about 100 years): a later due time is as good as
/// never, and a longer one would overflow Postgres's timestamps.
const MAX_DELAY_MS: i64 = 100 * 366 * 24 * 3600 * 1000;

/// The statements, written out for one schema and prefix. Each takes its values as
/// parameters (`$n`), so the pool prepares it once per connection.
#[derive(Debug)]
pub(super) struct Sql {
    /// The table, schema-qualified.
    pub(super) table: String,
    store: String,
    claim: String,
    extend: String,
    ack_many: String,
    pub(super) ack_claimed: String,
    fail: String,
    release: String,
    dead: String,
    redrive: String,
    counts: String,
    contains: String,
    prune: String,
    lease: String,
    release_lease: String,
    checkpoint: String,
    set_checkpoint: String,
}

impl Sql {
    pub(super) fn new(names: &Names) -> Self {
        let table = names.apply("{schema}.{prefix}inbox");
        let catchup = names.apply("{schema}.{prefix}catchup");
        let sql = |text: &str| text.replace("{t}", &table).replace("{c}", &catchup);
        Self {
            // One statement, run on its own: its transaction is the extended protocol's
            // implicit one, committed at the end of the call. `set_config(.., true)` is
            // `SET LOCAL`: it lasts to that commit, and the commit is what reads
            // `synchronous_commit`. The insert selects from `sync`, so it runs first.
            store: sql(
                "WITH sync AS (SELECT set_config('synchronous_commit', 'on', true))
                 INSERT INTO {t} (endpoint, id, type, body, state, due_at, received_at, recovered)
                 SELECT $1, $2, $3, $4, 0, now(), now(), $5 FROM sync
                 ON CONFLICT (endpoint, id) DO NOTHING",
            ),
            // SKIP LOCKED: rows another instance is claiming right now are left to it.
            claim: sql("WITH due AS (
                            SELECT endpoint, id FROM {t}
                            WHERE state IN (0, 1) AND due_at <= now()
                            ORDER BY due_at LIMIT $1
                            FOR UPDATE SKIP LOCKED)
                        UPDATE {t} AS i
                        SET state = 1, attempts = i.attempts + 1, token = $3,
                            due_at = now() + $2::int8 * interval '1 millisecond'
                        FROM due WHERE i.endpoint = due.endpoint AND i.id = due.id
                        RETURNING i.endpoint, i.id, i.type, i.body, i.attempts, i.recovered"),
            extend: sql(
                "UPDATE {t} SET due_at = now() + $1::int8 * interval '1 millisecond'
                         WHERE endpoint = $2 AND id = $3 AND state = 1 AND token = $4",
            ),
            // A key given twice joins its row twice: the row is updated (and returned) once.
            ack_many: sql("UPDATE {t} AS i
                           SET state = 2, due_at = now(), body = '', token = NULL,
                               last_error = NULL
                           FROM unnest($1::text[], $2::text[]) AS k (endpoint, id)
                           WHERE i.endpoint = k.endpoint AND i.id = k.id
                             AND i.state IN (0, 1)
                           RETURNING i.endpoint, i.id"),
            // The transactional ack: only while this claim holds the event.
            ack_claimed: sql("UPDATE {t}
                              SET state = 2, due_at = now(), body = '', token = NULL,
                                  last_error = NULL
                              WHERE endpoint = $1 AND id = $2 AND state = 1 AND token = $3"),
            fail: sql("UPDATE {t}
                       SET state = $1, due_at = now() + $2::int8 * interval '1 millisecond',
                           token = NULL, last_error = $3
                       WHERE endpoint = $4 AND id = $5 AND state = 1 AND token = $6"),
            release: sql("UPDATE {t}
                          SET state = 0, due_at = now(), token = NULL,
                              attempts = greatest(attempts - 1, 0)
                          WHERE endpoint = $1 AND id = $2 AND state = 1 AND token = $3"),
            dead: sql("SELECT endpoint, id, type, attempts,
                              (extract(epoch FROM due_at) * 1000)::int8, last_error
                       FROM {t}
                       WHERE state = 3 AND ($1::text IS NULL OR (endpoint, id) > ($1, $2))
                       ORDER BY endpoint, id LIMIT $3"),
            redrive: sql("UPDATE {t} SET state = 0, due_at = now(), attempts = 0
                          WHERE endpoint = $1 AND id = $2 AND state = 3"),
            counts: sql("SELECT state, count(*) FROM {t} GROUP BY state"),
            contains: sql("SELECT EXISTS (SELECT 1 FROM {t} WHERE endpoint = $1 AND id = $2)"),
            prune: sql("DELETE FROM {t} WHERE (endpoint, id) IN (
                            SELECT endpoint, id FROM {t}
                            WHERE state = 2 AND due_at < to_timestamp($1::float8 / 1000)
                            LIMIT $2)"),
            // Taken if nobody holds it, renewed by its holder, or taken over once expired.
            // Of two at once, the second waits for the first's row, then sees its lease.
            lease: sql("INSERT INTO {c} AS c (name, holder, lease_until)
                        VALUES ($1, $2, now() + $3::int8 * interval '1 millisecond')
                        ON CONFLICT (name) DO UPDATE
                        SET holder = excluded.holder, lease_until = excluded.lease_until
                        WHERE c.holder IS NULL OR c.holder = excluded.holder
                           OR c.lease_until <= now()"),
            release_lease: sql("UPDATE {c} SET holder = NULL, lease_until = NULL
                                WHERE name = $1 AND holder = $2"),
            checkpoint: sql("SELECT checkpoint_ms FROM {c} WHERE name = $1"),
            set_checkpoint: sql("UPDATE {c} SET checkpoint_ms = $1
                                 WHERE name = $2 AND holder = $3 AND lease_until > now()"),
            table,
        }
    }
}

/// A duration in milliseconds, at most [`MAX_DELAY_MS`].
fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).map_or(MAX_DELAY_MS, |ms| ms.min(MAX_DELAY_MS))
}

/// The token of `claim`: a number this store made, or -1 (which no claim has).
pub(super) fn token(claim: &Claimed) -> i64 {
    claim.token.parse().unwrap_or(-1)
}

fn limit(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

/// [`Store::store`]: one statement in a transaction of its own (autocommit on a connection
/// of the pool, never inside a `BEGIN`), synced before it resolves.
async fn insert(pool: PgPool, shared: Arc<Shared>, event: NewEvent) -> Result<Stored, sqlx::Error> {
    // One round trip (after the pool's check of the connection, if it makes one): the
    // 200 waits for the WAL on disk, whatever the server's default.
    let inserted = sqlx::query(&shared.sql.store)
        .bind(&event.key.endpoint)
        .bind(&event.key.id)
        .bind(&event.event_type)
        .bind(&event.body[..])
        .bind(event.recovered)
        .execute(&pool)
        .await?
        .rows_affected();
    Ok(match inserted {
        0 => Stored::Duplicate,
        _ => Stored::Stored,
    })
}

impl Store for PostgresStore {
    fn store(&self, event: NewEvent) -> StoreFuture<Stored> {
        self.call(|pool, shared| insert(pool, shared, event))
    }

    fn claim(&self, max: usize, claim_for: Duration) -> StoreFuture<Vec<Claimed>> {
        self.call(move |pool, shared| async move {
            let token = fastrand::i64(1..);
            let rows = sqlx::query(&shared.sql.claim)
                .bind(limit(max))
                .bind(ms(claim_for))
                .bind(token)
                .fetch_all(&pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(Claimed {
                        key: EventKey {
                            endpoint: row.try_get(0)?,
                            id: row.try_get(1)?,
                        },
                        event_type: row.try_get(2)?,
                        body: Bytes::from(row.try_get::<Vec<u8>, _>(3)?),
                        attempt: u32::try_from(row.try_get::<i32, _>(4)?).unwrap_or(0),
                        recovered: row.try_get(5)?,
                        token: token.to_string(),
                    })
                })
                .collect()
        })
    }

    fn extend(&self, claim: &Claimed, claim_for: Duration) -> StoreFuture<bool> {
        let (key, token) = (claim.key.clone(), token(claim));
        self.call(move |pool, shared| async move {
            let changed = sqlx::query(&shared.sql.extend)
                .bind(ms(claim_for))
                .bind(&key.endpoint)
                .bind(&key.id)
                .bind(token)
                .execute(&pool)
                .await?
                .rows_affected();
            Ok(changed == 1)
        })
    }

    fn ack(&self, claim: &Claimed) -> StoreFuture<bool> {
        let acked = self.ack_many(std::slice::from_ref(claim));
        Box::pin(async move { Ok(acked.await?.first().copied().unwrap_or(false)) })
    }

    fn ack_many(&self, claims: &[Claimed]) -> StoreFuture<Vec<bool>> {
        let keys: Vec<EventKey> = claims.iter().map(|claim| claim.key.clone()).collect();
        self.call(move |pool, shared| async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let (endpoints, ids): (Vec<&str>, Vec<&str>) = keys
                .iter()
                .map(|key| (key.endpoint.as_str(), key.id.as_str()))
                .unzip();
            // One statement: all or none.
            let rows = sqlx::query(&shared.sql.ack_many)
                .bind(endpoints)
                .bind(ids)
                .fetch_all(&pool)
                .await?;
            let mut acked = HashSet::with_capacity(rows.len());
            for row in &rows {
                acked.insert(EventKey {
                    endpoint: row.try_get(0)?,
                    id: row.try_get(1)?,
                });
            }
            // `true` for a key's first place in the list only.
            Ok(keys.iter().map(|key| acked.remove(key)).collect())
        })
    }

    fn fail(&self, claim: &Claimed, failure: Failure, error: &str) -> StoreFuture<bool> {
        let (key, token) = (claim.key.clone(), token(claim));
        let error: String = error.chars().take(1000).collect();
        self.call(move |pool, shared| async move {
            let (state, delay) = match failure {
                Failure::RetryAfter(delay) => (QUEUED, ms(delay)),
                Failure::Dead => (DEAD, 0),
            };
            let changed = sqlx::query(&shared.sql.fail)
                .bind(state)
                .bind(delay)
                .bind(&error)
                .bind(&key.endpoint)
                .bind(&key.id)
                .bind(token)
                .execute(&pool)
                .await?
                .rows_affected();
            Ok(changed == 1)
        })
    }

    fn release(&self, claim: &Claimed) -> StoreFuture<bool> {
        let (key, token) = (claim.key.clone(), token(claim));
        self.call(move |pool, shared| async move {
            let changed = sqlx::query(&shared.sql.release)
                .bind(&key.endpoint)
                .bind(&key.id)
                .bind(token)
                .execute(&pool)
                .await?
                .rows_affected();
            Ok(changed == 1)
        })
    }

    fn dead(&self, after: Option<EventKey>, max: usize) -> StoreFuture<Vec<DeadLetter>> {
        let (endpoint, id) = after.map_or((None, None), |key| (Some(key.endpoint), Some(key.id)));
        self.call(move |pool, shared| async move {
            let rows = sqlx::query(&shared.sql.dead)
                .bind(endpoint)
                .bind(id)
                .bind(limit(max))
                .fetch_all(&pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let died_at: i64 = row.try_get(4)?;
                    Ok(DeadLetter {
                        key: EventKey {
                            endpoint: row.try_get(0)?,
                            id: row.try_get(1)?,
                        },
                        event_type: row.try_get(2)?,
                        attempts: u32::try_from(row.try_get::<i32, _>(3)?).unwrap_or(0),
                        died_at: UNIX_EPOCH
                            + Duration::from_millis(u64::try_from(died_at).unwrap_or(0)),
                        last_error: row.try_get(5)?,
                    })
                })
                .collect()
        })
    }

    fn redrive(&self, key: &EventKey) -> StoreFuture<bool> {
        let key = key.clone();
        self.call(move |pool, shared| async move {
            let changed = sqlx::query(&shared.sql.redrive)
                .bind(&key.endpoint)
                .bind(&key.id)
                .execute(&pool)
                .await?
                .rows_affected();
            Ok(changed == 1)
        })
    }

    fn counts(&self) -> StoreFuture<Counts> {
        self.call(|pool, shared| async move {
            let rows = sqlx::query(&shared.sql.counts).fetch_all(&pool).await?;
            let mut counts = Counts::default();
            for row in &rows {
                let count = u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0);
                match row.try_get::<i16, _>(0)? {
                    QUEUED => counts.queued = count,
                    CLAIMED => counts.in_flight = count,
                    DONE => counts.done = count,
                    DEAD => counts.dead = count,
                    _ => {}
                }
            }
            Ok(counts)
        })
    }

    fn prune(&self, before: SystemTime, max: usize) -> StoreFuture<u64> {
        let before = before
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.call(move |pool, shared| async move {
            let removed = sqlx::query(&shared.sql.prune)
                .bind(before)
                .bind(limit(max))
                .execute(&pool)
                .await?
                .rows_affected();
            Ok(removed)
        })
    }

    fn size(&self) -> StoreFuture<u64> {
        self.call(|pool, shared| async move {
            // The table, its indexes and its TOAST (large bodies).
            let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
                .bind(&shared.sql.table)
                .fetch_one(&pool)
                .await?;
            Ok(u64::try_from(bytes).unwrap_or(0))
        })
    }

    fn contains(&self, key: &EventKey) -> StoreFuture<bool> {
        let key = key.clone();
        self.call(move |pool, shared| async move {
            sqlx::query_scalar(&shared.sql.contains)
                .bind(&key.endpoint)
                .bind(&key.id)
                .fetch_one(&pool)
                .await
        })
    }

    fn lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreFuture<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.call(move |pool, shared| async move {
            let changed = sqlx::query(&shared.sql.lease)
                .bind(&name)
                .bind(&holder)
                .bind(ms(ttl))
                .execute(&pool)
                .await?
                .rows_affected();
            Ok(changed == 1)
        })
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreFuture<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.call(move |pool, shared| async move {
            sqlx::query(&shared.sql.release_lease)
                .bind(&name)
                .bind(&holder)
                .execute(&pool)
                .await?;
            Ok(())
        })
    }

    fn checkpoint(&self, name: &str) -> StoreFuture<Option<SystemTime>> {
        let name = name.to_owned();
        self.call(move |pool, shared| async move {
            let at: Option<Option<i64>> = sqlx::query_scalar(&shared.sql.checkpoint)
                .bind(&name)
                .fetch_optional(&pool)
                .await?;
            Ok(at.flatten().map(checkpoint_at))
        })
    }

    fn set_checkpoint(&self, name: &str, holder: &str, at: SystemTime) -> StoreFuture<bool> {
        let (name, holder, at) = (name.to_owned(), holder.to_owned(), checkpoint_ms(at));
        self.call(move |pool, shared| async move {
            // Synced as a delivery is, whatever the server's default.
            let mut tx = pool
                .begin_with("BEGIN; SET LOCAL synchronous_commit = on")
                .await?;
            let set = sqlx::query(&shared.sql.set_checkpoint)
                .bind(at)
                .bind(&name)
                .bind(&holder);
            let changed = tx.execute(set).await?.rows_affected();
            tx.commit().await?;
            Ok(changed == 1)
        })
    }
}
