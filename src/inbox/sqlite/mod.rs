//! The embedded store: one SQLite file, one writer thread, group commits.
//!
//! # Opening
//!
//! [`SqliteBuilder::open`] takes these steps, in order:
//!
//! 1. The connection's settings: the busy timeout ([`SqliteBuilder::lock_timeout`]);
//!    `locking_mode=EXCLUSIVE` before `journal_mode=WAL`, so that the file is locked from
//!    its first access until the store closes and WAL needs no shared memory;
//!    `synchronous=FULL`; the journal's size limit. None of them writes to the file but
//!    WAL's mark in its header, which every file this crate wrote carries already.
//! 2. The schema brought to this build's version (`schema.rs`; below).
//! 3. The size cap (`max_page_count`, set at each open: SQLite does not keep it).
//! 4. Claims left in the file handed over: nobody else can have it open, so they were a
//!    dead process's.
//! 5. The writer thread started; it owns the connection from then on.
//!
//! # Schema versions
//!
//! The schema's version is SQLite's `PRAGMA user_version`, a number in the file's header
//! (0 in a new file). Version `n` is what the migrations `schema/1.sql` to `schema/n.sql`
//! make, applied in order, forward only. Each runs in a transaction of its own
//! (`BEGIN IMMEDIATE`) that reads the version, runs the migration and sets the version it
//! reaches, all or nothing: a crash or a failing statement mid-migration leaves the file
//! at the version before it, and the next open runs that migration again from its start.
//! As the version is read inside the write transaction, two connections opening the file
//! at once cannot both apply one (the exclusive lock already lets only one through).
//!
//! - A new file (version 0, no `inbox` table) gets every migration.
//! - A file of release 0.1.0, which made version 1's schema but set no version
//!   (`user_version` 0 and an `inbox` table), is taken as version 1 as it is: its version
//!   is set to 1 without running `1.sql`, then the later migrations follow.
//! - A file at a version newer than this build knows (a later release wrote it) is
//!   refused, [`StoreErrorKind::Unavailable`], "inbox file was written by a newer version
//!   of authgear-webhook", before anything is written to it: what its rows mean is not
//!   this build's to know. A negative version, which no release writes, is refused too.
//!
//! A change of schema is a new file, `schema/{n+1}.sql`, listed in `schema::MIGRATIONS`;
//! a file a release shipped is never edited (the files in the field were made by it).

mod schema;

use std::{
    fmt,
    path::{Path, PathBuf},
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use rusqlite::{Connection, ErrorCode, params};
use tokio::sync::{mpsc, oneshot};

use super::store::{
    Claimed, Counts, DeadLetter, EventKey, Failure, NewEvent, PROBE, Store, StoreError,
    StoreErrorKind, StoreFuture, Stored, checkpoint_at, checkpoint_ms,
};

/// States, as stored in the `state` column.
const QUEUED: i64 = 0;
const CLAIMED: i64 = 1;
const DONE: i64 = 2;
const DEAD: i64 = 3;

/// At most this many calls share one transaction (one sync).
const MAX_BATCH: usize = 512;

/// The embedded [`Store`]: a single SQLite file, no server to run.
///
/// # Durability
///
/// The file is in WAL mode with `synchronous=FULL`: every commit is synced to disk
/// (`fsync`) before [`store`](Store::store) resolves, so an event answered 200 survives a
/// crash of the process and of the machine (given a disk that honours `fsync`). SQLite's
/// `synchronous=NORMAL`, often advised with WAL, does not sync each commit and is not used.
///
/// # One writer, group commits
///
/// One thread of its own owns the connection (rusqlite is blocking; nothing runs on the
/// async runtime's threads). Calls reach it through a bounded channel; it takes every call
/// waiting (up to 512) into one transaction, commits once (one sync for the batch), then
/// answers each. Concurrent deliveries share one sync: that is where the throughput comes
/// from. A full channel is an immediate [`StoreErrorKind::Busy`] (the layer answers 503),
/// never an unbounded wait.
///
/// # One process per file
///
/// The file is locked while the store is open (SQLite's exclusive locking mode): a second
/// process opening it fails with "inbox file is in use by another process". So, at open,
/// claims still in the file are those of a process that died: they are handed over at
/// once, not when their deadline passes. For several instances, use a shared store
/// (Redis).
///
/// # Upgrades
///
/// The file carries its schema's version. Opening a file that an earlier release wrote
/// (0.1.0's included) brings it to this release's schema in place, every event kept, one
/// transaction per step: a crash midway leaves the file as the step before left it. There
/// is no way back: a file that a later release wrote is refused at open
/// ([`StoreErrorKind::Unavailable`], "inbox file was written by a newer version of
/// authgear-webhook") and left untouched.
///
/// # Bounded
///
/// The file grows to [`max_size`](SqliteBuilder::max_size) at most (default 1 GiB; SQLite's
/// `max_page_count`); past it, [`store`](Store::store) fails with
/// [`StoreErrorKind::Full`] while acks, failures and pruning still work. Handled events
/// lose their body and are pruned after the retention; [`size`](Store::size) reports the
/// file's size, its write-ahead log included.
///
/// # Catch-up
///
/// The catch-up's leases and checkpoints ([`Store::lease`], [`Store::set_checkpoint`]) are
/// rows of the file, committed and synced as events are; a lease runs on this process's
/// clock. One process opens the file, so a lease only keeps that process's own tasks from
/// running two catch-up passes at once.
///
/// ```
/// use authgear_webhook::inbox::{SqliteStore, Store, NewEvent, EventKey, Stored};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("inbox-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let store = SqliteStore::open(dir.join("inbox.sqlite3"))?;
/// let event = NewEvent {
///     key: EventKey::new("/", "0001"),
///     event_type: "user.created".into(),
///     body: r#"{"id":"0001"}"#.into(),
///     recovered: false,
/// };
/// assert_eq!(store.store(event.clone()).await?, Stored::Stored);
/// assert_eq!(store.store(event).await?, Stored::Duplicate);
/// assert_eq!(store.counts().await?.queued, 1);
/// # drop(store);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Job>>,
    path: PathBuf,
}

/// Settings for [`SqliteStore`]: [`SqliteStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteBuilder {
    path: PathBuf,
    max_size: u64,
    capacity: usize,
    lock_timeout: Duration,
}

impl SqliteStore {
    /// Opens (or creates) the store in the file at `path`, with the default settings.
    ///
    /// Opening does blocking file I/O, briefly: call it at startup.
    ///
    /// ```no_run
    /// let store = authgear_webhook::inbox::SqliteStore::open("inbox.sqlite3")?;
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`SqliteBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder(path).open()
    }

    /// Settings for a store in the file at `path`.
    ///
    /// ```no_run
    /// let store = authgear_webhook::inbox::SqliteStore::builder("inbox.sqlite3")
    ///     .max_size(64 << 20)
    ///     .open()?;
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> SqliteBuilder {
        SqliteBuilder {
            path: path.as_ref().to_owned(),
            max_size: 1 << 30,
            capacity: 4096,
            lock_timeout: Duration::from_secs(5),
        }
    }

    /// Sends `work` to the writer thread; it runs inside the next batch's transaction.
    fn call<T, F>(&self, work: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Call {
            work,
            result: None,
            reply,
        });
        let sent = self.jobs.try_send(job);
        Box::pin(async move {
            match sent {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(StoreError::new(
                        StoreErrorKind::Busy,
                        "inbox store is busy",
                        None,
                    ));
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(closed()),
            }
            answer.await.unwrap_or_else(|_| Err(closed()))
        })
    }
}

impl SqliteBuilder {
    /// The largest the file may grow (default 1 GiB). Past it, new events are refused
    /// ([`StoreErrorKind::Full`]). Rounded down to whole pages.
    ///
    /// ```
    /// let builder = authgear_webhook::inbox::SqliteStore::builder("inbox.sqlite3")
    ///     .max_size(256 << 20);
    /// ```
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// How many calls may wait for the writer (default 4096); past it, calls fail at once
    /// with [`StoreErrorKind::Busy`].
    ///
    /// ```
    /// let builder = authgear_webhook::inbox::SqliteStore::builder("inbox.sqlite3")
    ///     .capacity(1024);
    /// ```
    pub fn capacity(mut self, calls: usize) -> Self {
        self.capacity = calls.max(1);
        self
    }

    /// How long [`open`](Self::open) waits for the file while another process holds it
    /// (default 5 s), before it fails with "inbox file is in use by another process". A
    /// server holds it as long as it runs; a tool that only looks (counts, dead letters)
    /// may want to give up sooner.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = authgear_webhook::inbox::SqliteStore::builder("inbox.sqlite3")
    ///     .lock_timeout(Duration::from_secs(1));
    /// ```
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Opens (or creates) the file and starts the writer thread.
    ///
    /// ```no_run
    /// let store = authgear_webhook::inbox::SqliteStore::builder("inbox.sqlite3").open()?;
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] of kind [`Unavailable`](StoreErrorKind::Unavailable) when the file
    /// cannot be opened or created, is held by another process past the
    /// [`lock_timeout`](Self::lock_timeout), is not an inbox file, or was written by a
    /// newer version of this crate (left untouched); [`Full`](StoreErrorKind::Full) when
    /// the disk is full.
    pub fn open(self) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(&self.path).map_err(error)?;
        setup(&conn, self.max_size, self.lock_timeout)?;
        let (jobs, receiver) = mpsc::channel(self.capacity);
        thread::Builder::new()
            .name("authgear-inbox-sqlite".into())
            .spawn(move || writer(conn, receiver))
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Unavailable,
                    "cannot start the inbox writer",
                    Some(Box::new(e)),
                )
            })?;
        Ok(SqliteStore {
            jobs,
            path: self.path,
        })
    }
}

/// Opening's steps after the file is open, in order (the module's docs).
fn setup(conn: &Connection, max_size: u64, lock_timeout: Duration) -> Result<(), StoreError> {
    configure(conn, lock_timeout).map_err(opening)?;
    schema::migrate(conn)?;
    cap(conn, max_size)
        .and_then(|()| hand_over(conn))
        .map_err(opening)
}

/// The connection's settings: none writes to the file but the WAL mark in its header.
fn configure(conn: &Connection, lock_timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(lock_timeout)?;
    // One process per file: the lock is held from the first transaction until the
    // connection closes (a process that dies releases it). WAL then needs no shared memory.
    let _: String = conn.query_row("PRAGMA locking_mode=EXCLUSIVE", [], |row| row.get(0))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some("cannot use WAL mode".into()),
        ));
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL;
         PRAGMA journal_size_limit=67108864;",
    )
}

/// The file's largest size, in pages (not stored in the file: set at each open).
fn cap(conn: &Connection, max_size: u64) -> rusqlite::Result<()> {
    let page_size: u64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    let pages = (max_size / page_size.max(1)).max(8);
    let _: i64 = conn.query_row(&format!("PRAGMA max_page_count={pages}"), [], |row| {
        row.get(0)
    })?;
    Ok(())
}

/// Nobody else can have the file open: claims still held were a dead process's. Hand
/// them over now rather than when their deadline passes.
fn hand_over(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    conn.execute(
        "UPDATE inbox SET due_at = ?1 WHERE state = ?2 AND due_at > ?1",
        params![now_ms(), CLAIMED],
    )?;
    conn.execute_batch("COMMIT")
}

/// The writer thread: batches of waiting calls, one transaction (one sync) each.
fn writer(conn: Connection, mut jobs: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match run_all(&conn, &mut batch) {
            Ok(()) => batch.drain(..).for_each(|job| job.answer(None)),
            Err(_) => {
                // One call failed (a full disk, say): the batch was rolled back. Run each
                // call in a transaction of its own so that only the failing ones fail.
                for mut job in batch.drain(..) {
                    let result = run_all(&conn, std::slice::from_mut(&mut job));
                    job.answer(result.err().map(error));
                }
            }
        }
    }
}

/// Runs `batch` in one transaction: all committed, or none.
fn run_all(conn: &Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = batch
        .iter_mut()
        .try_for_each(|job| job.run(conn))
        .and_then(|()| conn.execute_batch("COMMIT"));
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// One call waiting for the writer.
trait Job: Send {
    /// Runs inside the batch's transaction; may run twice (the batch was rolled back).
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()>;
    /// Sends the result, or `error` if the transaction failed.
    fn answer(self: Box<Self>, error: Option<StoreError>);
}

struct Call<T, F> {
    work: F,
    result: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Call<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> rusqlite::Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.result = Some((self.work)(conn)?);
        Ok(())
    }

    fn answer(self: Box<Self>, error: Option<StoreError>) {
        let result = match (error, self.result) {
            (Some(error), _) => Err(error),
            (None, Some(value)) => Ok(value),
            (None, None) => Err(closed()),
        };
        let _ = self.reply.send(result);
    }
}

fn closed() -> StoreError {
    StoreError::new(StoreErrorKind::Unavailable, "inbox store is closed", None)
}

/// An error while opening: the file is locked by another process, or as [`error`].
fn opening(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::new(
            StoreErrorKind::Unavailable,
            "inbox file is in use by another process",
            Some(Box::new(e)),
        ),
        _ => error(e),
    }
}

fn error(error: rusqlite::Error) -> StoreError {
    let kind = match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreErrorKind::Full,
        _ => StoreErrorKind::Unavailable,
    };
    let message = match kind {
        StoreErrorKind::Full => "inbox store is full",
        _ => "inbox store cannot write",
    };
    StoreError::new(kind, message, Some(Box::new(error)))
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

fn to_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn token(claim: &Claimed) -> i64 {
    claim.token.parse().unwrap_or(-1)
}

/// Marks `key` done if it is queued or claimed: [`Store::ack`].
fn ack(conn: &Connection, key: &EventKey) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE inbox
             SET state = ?1, due_at = ?2, body = x'', token = NULL, last_error = NULL
             WHERE endpoint = ?3 AND id = ?4 AND state IN (?5, ?6)",
        )?
        .execute(params![
            DONE,
            now_ms(),
            key.endpoint,
            key.id,
            QUEUED,
            CLAIMED
        ])?;
    Ok(changed == 1)
}

impl Store for SqliteStore {
    fn store(&self, event: NewEvent) -> StoreFuture<Stored> {
        self.call(move |conn| {
            let now = now_ms();
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO inbox (endpoint, id, type, body, state, due_at, received_at,
                                        recovered)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
                     ON CONFLICT (endpoint, id) DO NOTHING",
                )?
                .execute(params![
                    event.key.endpoint,
                    event.key.id,
                    event.event_type,
                    &event.body[..],
                    QUEUED,
                    now,
                    event.recovered
                ])?;
            Ok(match inserted {
                0 => Stored::Duplicate,
                _ => Stored::Stored,
            })
        })
    }

    fn claim(&self, max: usize, claim_for: Duration) -> StoreFuture<Vec<Claimed>> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.call(move |conn| {
            let now = now_ms();
            let token = fastrand::i64(1..);
            let mut statement = conn.prepare_cached(
                "UPDATE inbox SET state = ?1, attempts = attempts + 1, due_at = ?2, token = ?3
                 WHERE rowid IN (
                     SELECT rowid FROM inbox WHERE state IN (?4, ?1) AND due_at <= ?5
                     ORDER BY due_at LIMIT ?6)
                 RETURNING endpoint, id, type, body, attempts, recovered",
            )?;
            let rows = statement.query_map(
                params![
                    CLAIMED,
                    now.saturating_add(ms(claim_for)),
                    token,
                    QUEUED,
                    now,
                    max
                ],
                |row| {
                    Ok(Claimed {
                        key: EventKey {
                            endpoint: row.get(0)?,
                            id: row.get(1)?,
                        },
                        event_type: row.get(2)?,
                        body: Bytes::from(row.get::<_, Vec<u8>>(3)?),
                        attempt: row.get(4)?,
                        recovered: row.get(5)?,
                        token: token.to_string(),
                    })
                },
            )?;
            rows.collect()
        })
    }

    fn extend(&self, claim: &Claimed, claim_for: Duration) -> StoreFuture<bool> {
        let (key, token) = (claim.key.clone(), token(claim));
        self.call(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE inbox SET due_at = ?1
                     WHERE endpoint = ?2 AND id = ?3 AND state = ?4 AND token = ?5",
                )?
                .execute(params![
                    now_ms().saturating_add(ms(claim_for)),
                    key.endpoint,
                    key.id,
                    CLAIMED,
                    token
                ])?;
            Ok(changed == 1)
        })
    }

    fn ack(&self, claim: &Claimed) -> StoreFuture<bool> {
        let key = claim.key.clone();
        self.call(move |conn| ack(conn, &key))
    }

    fn ack_many(&self, claims: &[Claimed]) -> StoreFuture<Vec<bool>> {
        let keys: Vec<EventKey> = claims.iter().map(|claim| claim.key.clone()).collect();
        // One call: one transaction, all or none.
        self.call(move |conn| keys.iter().map(|key| ack(conn, key)).collect())
    }

    fn fail(&self, claim: &Claimed, failure: Failure, error: &str) -> StoreFuture<bool> {
        let (key, token) = (claim.key.clone(), token(claim));
        let error: String = error.chars().take(1000).collect();
        self.call(move |conn| {
            let now = now_ms();
            let (state, due_at) = match failure {
                Failure::RetryAfter(delay) => (QUEUED, now.saturating_add(ms(delay))),
                Failure::Dead => (DEAD, now),
            };
            let changed = conn
                .prepare_cached(
                    "UPDATE inbox SET state = ?1, due_at = ?2, token = NULL, last_error = ?3
                     WHERE endpoint = ?4 AND id = ?5 AND state = ?6 AND token = ?7",
                )?
                .execute(params![
                    state,
                    due_at,
                    error,
                    key.endpoint,
                    key.id,
                    CLAIMED,
                    token
                ])?;
            Ok(changed == 1)
        })
    }

    fn release(&self, claim: &Claimed) -> StoreFuture<bool> {
        let (key, token) = (claim.key.clone(), token(claim));
        self.call(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE inbox
                     SET state = ?1, due_at = ?2, token = NULL, attempts = max(attempts - 1, 0)
                     WHERE endpoint = ?3 AND id = ?4 AND state = ?5 AND token = ?6",
                )?
                .execute(params![
                    QUEUED,
                    now_ms(),
                    key.endpoint,
                    key.id,
                    CLAIMED,
                    token
                ])?;
            Ok(changed == 1)
        })
    }

    fn dead(&self, after: Option<EventKey>, max: usize) -> StoreFuture<Vec<DeadLetter>> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let (endpoint, id) = after.map_or((None, None), |key| (Some(key.endpoint), Some(key.id)));
        self.call(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT endpoint, id, type, attempts, due_at, last_error FROM inbox
                 WHERE state = ?1 AND (?2 IS NULL OR (endpoint, id) > (?2, ?3))
                 ORDER BY endpoint, id LIMIT ?4",
            )?;
            let rows = statement.query_map(params![DEAD, endpoint, id, max], |row| {
                let died_at: i64 = row.get(4)?;
                Ok(DeadLetter {
                    key: EventKey {
                        endpoint: row.get(0)?,
                        id: row.get(1)?,
                    },
                    event_type: row.get(2)?,
                    attempts: row.get(3)?,
                    died_at: UNIX_EPOCH
                        + Duration::from_millis(u64::try_from(died_at).unwrap_or(0)),
                    last_error: row.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    fn redrive(&self, key: &EventKey) -> StoreFuture<bool> {
        let key = key.clone();
        self.call(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE inbox SET state = ?1, due_at = ?2, attempts = 0
                     WHERE endpoint = ?3 AND id = ?4 AND state = ?5",
                )?
                .execute(params![QUEUED, now_ms(), key.endpoint, key.id, DEAD])?;
            Ok(changed == 1)
        })
    }

    fn counts(&self) -> StoreFuture<Counts> {
        self.call(|conn| {
            let mut counts = Counts::default();
            let mut statement =
                conn.prepare_cached("SELECT state, count(*) FROM inbox GROUP BY state")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let count = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
                match row.get::<_, i64>(0)? {
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
        let (before, max) = (to_ms(before), i64::try_from(max).unwrap_or(i64::MAX));
        self.call(move |conn| {
            let removed = conn
                .prepare_cached(
                    "DELETE FROM inbox WHERE rowid IN (
                         SELECT rowid FROM inbox WHERE state = ?1 AND due_at < ?2 LIMIT ?3)",
                )?
                .execute(params![DONE, before, max])?;
            Ok(removed as u64)
        })
    }

    fn size(&self) -> StoreFuture<u64> {
        let path = self.path.clone();
        // Through the writer thread too: file metadata is blocking I/O.
        self.call(move |_| {
            let mut wal = path.clone().into_os_string();
            wal.push("-wal");
            Ok([path.as_os_str(), wal.as_os_str()]
                .iter()
                .filter_map(|file| std::fs::metadata(file).ok())
                .map(|metadata| metadata.len())
                .sum())
        })
    }

    fn contains(&self, key: &EventKey) -> StoreFuture<bool> {
        let key = key.clone();
        self.call(move |conn| {
            conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM inbox WHERE endpoint = ?1 AND id = ?2)",
            )?
            .query_row(params![key.endpoint, key.id], |row| row.get(0))
        })
    }

    /// The default's write (the probe's lease, synced with the batch it joins), and room
    /// for one more page: a file at its `max_page_count` with no free page refuses every
    /// new event while leases, acks and failures, which rewrite rows in place, still pass.
    fn probe(&self) -> StoreFuture<()> {
        let lease = self.lease(PROBE, PROBE, Duration::from_secs(1));
        let room = self.call(|conn| {
            conn.query_row(
                "SELECT (SELECT page_count FROM pragma_page_count())
                          < (SELECT max_page_count FROM pragma_max_page_count())
                     OR (SELECT freelist_count FROM pragma_freelist_count()) > 0",
                [],
                |row| row.get::<_, bool>(0),
            )
        });
        Box::pin(async move {
            lease.await?;
            match room.await? {
                true => Ok(()),
                false => Err(StoreError::new(
                    StoreErrorKind::Full,
                    "inbox store is full",
                    None,
                )),
            }
        })
    }

    fn lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreFuture<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.call(move |conn| {
            let now = now_ms();
            // Taken if nobody holds it, renewed by its holder, or taken over once expired.
            let changed = conn
                .prepare_cached(
                    "INSERT INTO catchup (name, holder, lease_until_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE
                     SET holder = excluded.holder, lease_until_ms = excluded.lease_until_ms
                     WHERE catchup.holder IS NULL OR catchup.holder = excluded.holder
                        OR catchup.lease_until_ms <= ?4",
                )?
                .execute(params![name, holder, now.saturating_add(ms(ttl)), now])?;
            Ok(changed == 1)
        })
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreFuture<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.call(move |conn| {
            conn.prepare_cached(
                "UPDATE catchup SET holder = NULL, lease_until_ms = NULL
                 WHERE name = ?1 AND holder = ?2",
            )?
            .execute(params![name, holder])?;
            Ok(())
        })
    }

    fn checkpoint(&self, name: &str) -> StoreFuture<Option<SystemTime>> {
        let name = name.to_owned();
        self.call(move |conn| {
            let mut statement =
                conn.prepare_cached("SELECT checkpoint_ms FROM catchup WHERE name = ?1")?;
            let mut rows = statement.query(params![name])?;
            let at: Option<i64> = match rows.next()? {
                Some(row) => row.get(0)?,
                None => None,
            };
            Ok(at.map(checkpoint_at))
        })
    }

    fn set_checkpoint(&self, name: &str, holder: &str, at: SystemTime) -> StoreFuture<bool> {
        let (name, holder, at) = (name.to_owned(), holder.to_owned(), checkpoint_ms(at));
        self.call(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE catchup SET checkpoint_ms = ?1
                     WHERE name = ?2 AND holder = ?3 AND lease_until_ms > ?4",
                )?
                .execute(params![at, name, holder, now_ms()])?;
            Ok(changed == 1)
        })
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
