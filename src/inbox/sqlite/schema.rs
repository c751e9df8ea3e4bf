//! The file's schema: its versions, in `schema/*.sql`, and how a file is brought to the
//! newest (the parent module's docs, "Schema versions").
//!
//! Release 0.1.0 reads no version: it runs its own `CREATE ... IF NOT EXISTS` on any file.
//! A migration past version 1 that it would misread needs a CHANGELOG line saying not to
//! go back to 0.1.0 once a file was opened by the release that brings it.

use rusqlite::Connection;

use super::super::store::{StoreError, StoreErrorKind};
use super::opening;

/// The migrations, in order: `MIGRATIONS[n]` takes a file from version `n` to `n + 1`.
const MIGRATIONS: [&str; 2] = [include_str!("schema/1.sql"), include_str!("schema/2.sql")];

/// The version this build makes: every file is at it once opened.
const LATEST: i64 = MIGRATIONS.len() as i64;

/// Where one step left the file.
enum Step {
    /// A migration ran (or a 0.1.0 file was given its version): look again.
    Applied,
    /// The file is at [`LATEST`].
    Current,
    /// The file is at a version this build does not know; nothing was written.
    Unknown(i64),
}

/// Brings the schema of the file open on `conn` to [`LATEST`], one migration per
/// transaction.
///
/// # Errors
///
/// A version this build does not know ([`StoreErrorKind::Unavailable`]), the file in use by
/// another process, or a migration that fails (its transaction rolled back: the file at the
/// version before it).
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    loop {
        match step(conn).map_err(opening)? {
            Step::Applied => {}
            Step::Current => return Ok(()),
            Step::Unknown(version) => return Err(unknown(version)),
        }
    }
}

/// The next migration, if any, in a transaction of its own with the version it reaches.
fn step(conn: &Connection) -> rusqlite::Result<Step> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let step = next(conn).and_then(|step| {
        if let Step::Applied = step {
            conn.execute_batch("COMMIT")?;
        }
        Ok(step)
    });
    // Nothing to apply, a version refused, or a failure: nothing is written.
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    step
}

/// Reads the version and applies the migration that follows it; inside `step`'s
/// transaction.
fn next(conn: &Connection) -> rusqlite::Result<Step> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == 0 && has_inbox(conn)? {
        // Release 0.1.0 made version 1's schema without setting a version: adopt it.
        conn.pragma_update(None, "user_version", 1)?;
        return Ok(Step::Applied);
    }
    let Ok(done) = usize::try_from(version) else {
        return Ok(Step::Unknown(version));
    };
    match MIGRATIONS.get(done) {
        Some(migration) => {
            conn.execute_batch(migration)?;
            conn.pragma_update(None, "user_version", version + 1)?;
            Ok(Step::Applied)
        }
        None if version == LATEST => Ok(Step::Current),
        None => Ok(Step::Unknown(version)),
    }
}

/// Whether the file has the `inbox` table.
fn has_inbox(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'inbox'",
        [],
        |row| row.get(0),
    )
}

/// The refusal of a file at `version`, which this build does not know.
fn unknown(version: i64) -> StoreError {
    let message = if version > LATEST {
        "inbox file was written by a newer version of authgear-webhook"
    } else {
        "inbox file has a schema version authgear-webhook never wrote"
    };
    let versions = format!("schema version {version}; this build knows 0 to {LATEST}");
    StoreError::new(StoreErrorKind::Unavailable, message, Some(versions.into()))
}

#[cfg(test)]
mod tests {
    use std::{
        path::{Path, PathBuf},
        time::{Duration, Instant, UNIX_EPOCH},
    };

    use bytes::Bytes;
    use rusqlite::{Connection, params};

    use super::LATEST;
    use crate::inbox::{
        Counts, DeadLetter, EventKey, NewEvent, SqliteStore, Store, StoreErrorKind,
    };

    /// The schema as release 0.1.0 ran it at every open: written out here, not read from
    /// `1.sql`, so that these tests hold `1.sql` to what 0.1.0 made.
    const SCHEMA_0_1_0: &str = "
CREATE TABLE IF NOT EXISTS inbox (
    endpoint    TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    -- 0 queued, 1 claimed, 2 done, 3 dead
    state       INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    -- Unix ms: when due (queued), the claim deadline (claimed), when done or dead.
    due_at      INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    token       INTEGER,
    last_error  TEXT,
    PRIMARY KEY (endpoint, id)
);
CREATE INDEX IF NOT EXISTS inbox_state_due ON inbox (state, due_at);
";

    /// A directory of its own, removed at the end.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let nanos = UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir().join(format!(
                "authgear-webhook-schema-{}-{name}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join("inbox.sqlite3")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A connection of the test's own, once the store's writer thread has let the file go
    /// (it closes it after the last handle is dropped).
    fn closed(path: &Path) -> Connection {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let conn = Connection::open(path).expect("open");
            match conn.execute_batch("BEGIN IMMEDIATE; COMMIT") {
                Ok(()) => return conn,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "the store still holds the file: {error}"
                    );
                    drop(conn);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    fn user_version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version")
    }

    /// Every table and index, with the SQL that made it.
    fn schema_of(conn: &Connection) -> Vec<(String, String, Option<String>)> {
        let mut statement = conn
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            .expect("prepare");
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    }

    /// The file's bytes and its version, to show that something did not change it.
    fn snapshot(path: &Path) -> (Vec<u8>, i64) {
        let version = user_version(&closed(path));
        (std::fs::read(path).expect("read the file"), version)
    }

    #[tokio::test]
    async fn a_file_of_0_1_0_keeps_every_event_and_reaches_the_latest_version() {
        let dir = TempDir::new("0.1.0");
        let every_byte: Vec<u8> = (0..=255).collect();
        let queued_retry = b"{\"id\":\"q2\"}\0\xff\xfe\r\n".to_vec();
        let claimed = vec![0xc3, 0x28, 0x00, 0x80];
        let (past, future, died) = (1_000_000_i64, i64::MAX / 2, 1_764_460_800_000_i64);
        {
            // As 0.1.0 left its file: WAL mode, its schema, no version.
            let conn = Connection::open(dir.file()).expect("create");
            let _: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
                .expect("wal");
            conn.execute_batch(SCHEMA_0_1_0).expect("0.1.0's schema");
            let sql = "INSERT INTO inbox (endpoint, id, type, body, state, attempts, due_at,
                                         received_at, token, last_error)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
            let mut insert = conn.prepare(sql).expect("prepare");
            let no_error: Option<&str> = None;
            #[rustfmt::skip]
            let rows = [
                // Queued: new, and waiting to retry after two failures.
                params!["/", "q1", "user.created", every_byte, 0, 0, past, past, None::<i64>, no_error],
                params!["/hooks", "q2", "identity.email.verified", queued_retry, 0, 2, past + 1, past, None::<i64>, "handler: timed out"],
                // Claimed by a process that died: handed over at open.
                params!["/", "c1", "user.disabled", claimed, 1, 1, future, past, 42, no_error],
                // Done (its body dropped, as 0.1.0's ack did) and dead.
                params!["/", "h1", "user.updated", b"".as_slice(), 2, 1, past, past, None::<i64>, no_error],
                params!["/", "d1", "user.deleted", b"{}".as_slice(), 3, 15, died, past, None::<i64>, "handler: database down"],
            ];
            for row in rows {
                insert.execute(row).expect("insert");
            }
            assert_eq!(user_version(&conn), 0);
        }

        let store = SqliteStore::open(dir.file()).expect("open 0.1.0's file");
        assert_eq!(
            store.counts().await.expect("counts"),
            Counts {
                queued: 2,
                in_flight: 1,
                done: 1,
                dead: 1
            }
        );
        assert_eq!(
            store.dead(None, 10).await.expect("dead letters"),
            [DeadLetter {
                key: EventKey::new("/", "d1"),
                event_type: "user.deleted".into(),
                attempts: 15,
                died_at: UNIX_EPOCH + Duration::from_millis(died.unsigned_abs()),
                last_error: Some("handler: database down".into()),
            }]
        );

        let mut claims = store
            .claim(10, Duration::from_secs(60))
            .await
            .expect("claim");
        claims.sort_by(|a, b| a.key.id.cmp(&b.key.id));
        let got: Vec<_> = claims
            .iter()
            .map(|c| {
                let key = (c.key.endpoint.as_str(), c.key.id.as_str());
                (
                    key,
                    c.event_type.as_str(),
                    c.attempt,
                    c.body.clone(),
                    c.recovered,
                )
            })
            .collect();
        // Every event 0.1.0 stored was a delivery: none comes back as recovered.
        assert_eq!(
            got,
            [
                (("/", "c1"), "user.disabled", 2, Bytes::from(claimed), false),
                (
                    ("/", "q1"),
                    "user.created",
                    1,
                    Bytes::from(every_byte),
                    false
                ),
                (
                    ("/hooks", "q2"),
                    "identity.email.verified",
                    3,
                    Bytes::from(queued_retry),
                    false
                ),
            ]
        );
        drop(store);

        let migrated = closed(&dir.file());
        assert_eq!(user_version(&migrated), LATEST);
        // The same schema as a new file's: the migrations after version 1 took it there.
        let new = TempDir::new("0.1.0-new");
        drop(SqliteStore::open(new.file()).expect("open a new file"));
        assert_eq!(schema_of(&migrated), schema_of(&closed(&new.file())));
    }

    #[tokio::test]
    async fn a_new_file_gets_the_latest_version_and_a_second_open_changes_nothing() {
        let dir = TempDir::new("new");
        let store = SqliteStore::open(dir.file()).expect("open a new file");
        let event = NewEvent {
            key: EventKey::new("/", "1"),
            event_type: "user.created".into(),
            body: Bytes::from_static(b"{\"id\":\"1\"}"),
            recovered: false,
        };
        store.store(event).await.expect("store");
        drop(store);
        let before = snapshot(&dir.file());
        assert_eq!(before.1, LATEST);
        assert!(
            schema_of(&closed(&dir.file()))
                .iter()
                .any(|(kind, name, _)| (kind.as_str(), name.as_str()) == ("table", "inbox"))
        );

        // Running a migration again (1.sql creates its table without IF NOT EXISTS) would
        // fail this open or change the file.
        let store = SqliteStore::open(dir.file()).expect("open again");
        assert_eq!(store.counts().await.expect("counts").queued, 1);
        drop(store);
        assert!(
            snapshot(&dir.file()) == before,
            "a second open changed the file"
        );
    }

    #[test]
    fn a_file_of_a_newer_version_is_refused_and_left_as_it_is() {
        let dir = TempDir::new("newer");
        {
            // As a later release might leave it: WAL mode, a table this build does not
            // know, a version past this build's.
            let conn = Connection::open(dir.file()).expect("create");
            let _: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
                .expect("wal");
            conn.execute_batch(SCHEMA_0_1_0).expect("schema");
            conn.execute_batch(
                "CREATE TABLE later (id INTEGER PRIMARY KEY, what BLOB);
                 INSERT INTO later (what) VALUES (x'00ff');",
            )
            .expect("a later table");
            conn.pragma_update(None, "user_version", LATEST + 1)
                .expect("version");
        }
        let before = snapshot(&dir.file());
        assert_eq!(before.1, LATEST + 1);

        let error = SqliteStore::open(dir.file()).expect_err("a newer file");
        assert_eq!(error.kind(), StoreErrorKind::Unavailable);
        assert_eq!(
            error.to_string(),
            "inbox file was written by a newer version of authgear-webhook"
        );
        assert!(
            snapshot(&dir.file()) == before,
            "the refused file was changed"
        );
    }
}
