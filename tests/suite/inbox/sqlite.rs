//! What only the SQLite store does: claims left in its file by a dead process are handed
//! over when it is reopened, and one file is one process's (locked while open).

use std::time::{Duration, Instant};

use super::{inbox_file, new_event};
use crate::common::{TIMEOUT, TempDir};
use authgear_webhook::inbox::{SqliteStore, Store};

#[tokio::test]
async fn sqlite_store_hands_over_claims_left_in_its_file_at_reopen() {
    let dir = TempDir::new("reopen");
    let store = SqliteStore::open(inbox_file(&dir)).expect("open");
    store.store(new_event("kept")).await.expect("store");
    let claimed = store
        .claim(1, Duration::from_secs(3600))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    drop(store);
    // The writer thread closes the file once the last handle is gone.
    let reopened = {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match SqliteStore::open(inbox_file(&dir)) {
                Ok(store) => break store,
                Err(error) => {
                    assert!(Instant::now() < deadline, "reopen: {error}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };
    // A claim left in the file was a dead process's: handed over at once, as attempt 2.
    let claimed = reopened
        .claim(1, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].key.id.as_str(), claimed[0].attempt),
        ("kept", 2)
    );
}

#[tokio::test]
async fn sqlite_store_file_is_locked_while_open() {
    let dir = TempDir::new("locked");
    let _open = SqliteStore::open(inbox_file(&dir)).expect("open");
    // Waits out SQLite's busy timeout (5 s), then refuses.
    let file = inbox_file(&dir);
    let second = tokio::task::spawn_blocking(move || SqliteStore::open(file).map(drop));
    let error = second
        .await
        .expect("ran")
        .expect_err("a second store on one file");
    assert_eq!(error.to_string(), "inbox file is in use by another process");
}
