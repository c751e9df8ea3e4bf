//! What only the Redis store does, on real `redis-server` processes (AOF on, `appendfsync
//! always`, in a temp dir): two instances share one queue and take over a dead one's claims;
//! dead letters are listed in key order; a token that is not this store's is refused; events
//! left in the 0.1.0 layout stop claims until drained.

use std::{collections::HashSet, time::Duration};

use super::{durable_redis, small_event, small_event_on, store};
use authgear_webhook::inbox::{EventKey, Failure, RedisStore, Store, StoreErrorKind, Stored};

#[tokio::test]
async fn dead_letters_are_listed_in_key_order_page_by_page() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    // Endpoint first, then id, as bytes: "/a" < "/a/b" < "/b".
    let keys = [("/b", "1"), ("/a/b", "0"), ("/a", "2"), ("/a", "10")];
    for (endpoint, id) in keys {
        store
            .store(small_event_on(endpoint, id))
            .await
            .expect("store");
    }
    for claim in store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim")
    {
        assert!(store.fail(&claim, Failure::Dead, "x").await.expect("dead"));
    }
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store.dead(after, 3).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        listed.extend(page.into_iter().map(|dead| dead.key));
    }
    let expected: Vec<EventKey> = [("/a", "10"), ("/a", "2"), ("/a/b", "0"), ("/b", "1")]
        .iter()
        .map(|(endpoint, id)| EventKey::new(*endpoint, *id))
        .collect();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn two_instances_share_one_queue_and_take_over_a_dead_one_s_claims() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    // Consumers idle for 100 ms with nothing pending are leftovers (default 10 minutes).
    let open = || {
        RedisStore::builder()
            .idle_consumers(Duration::from_millis(100))
            .timeout(Duration::from_secs(5))
            .open(redis.url.as_str())
            .expect("url")
    };
    let (a, b) = (open(), open());
    assert_ne!(a.consumer(), b.consumer());
    const N: usize = 200;
    for n in 0..N {
        let store = if n % 2 == 0 { &a } else { &b };
        let stored = store
            .store(small_event(&format!("e{n}")))
            .await
            .expect("store");
        assert_eq!(stored, Stored::Stored);
    }
    // Both claim at the same time, in small batches: every event goes to exactly one.
    let long = Duration::from_secs(60);
    let drain = |store: RedisStore| async move {
        let mut ids = Vec::new();
        loop {
            let batch = store.claim(7, long).await.expect("claim");
            if batch.is_empty() {
                return ids;
            }
            for claim in batch {
                assert_eq!(claim.attempt, 1);
                assert!(store.ack(&claim).await.expect("ack"));
                ids.push(claim.key.id);
            }
        }
    };
    let (from_a, from_b) = tokio::join!(drain(a.clone()), drain(b.clone()));
    let all: HashSet<&String> = from_a.iter().chain(&from_b).collect();
    assert_eq!(from_a.len() + from_b.len(), N, "each claimed once");
    assert_eq!(all.len(), N);
    eprintln!("a took {}, b took {}", from_a.len(), from_b.len());

    // A live instance keeps its claim by extending it: nobody else gets it.
    a.store(small_event("slow")).await.expect("store");
    let short = Duration::from_millis(300);
    let slow = a.claim(1, short).await.expect("claim").pop().expect("slow");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(a.extend(&slow, short).await.expect("extend"));
        assert!(b.claim(10, long).await.expect("claim").is_empty());
    }
    assert!(a.ack(&slow).await.expect("ack"));

    // An instance that dies holding claims: the other takes them over once they expire,
    // as the next attempt, with the exact bytes.
    let dying = open();
    for n in 0..3 {
        dying
            .store(small_event(&format!("orphan{n}")))
            .await
            .expect("store");
    }
    let orphans = dying.claim(10, short).await.expect("claim");
    assert_eq!(orphans.len(), 3);
    let dying_name = dying.consumer().to_owned();
    drop(dying);
    assert!(
        b.claim(10, long).await.expect("claim").is_empty(),
        "not yet"
    );
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    let taken = b.claim(10, long).await.expect("claim");
    let mut ids: Vec<&str> = taken.iter().map(|c| c.key.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["orphan0", "orphan1", "orphan2"]);
    assert!(taken.iter().all(|c| c.attempt == 2));
    assert_eq!(taken[0].body, small_event(&taken[0].key.id).body);
    for claim in &taken {
        assert!(b.ack(claim).await.expect("ack"));
    }
    // The dead instance's consumer, with nothing pending any more, is removed.
    let cleaner = open();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(cleaner.claim(1, long).await.expect("claim").is_empty());
    let consumers = redis.cli(&[
        "XINFO",
        "CONSUMERS",
        "{authgear-webhook:inbox}:v2:stream",
        "workers",
    ]);
    let groups = redis.cli(&["XINFO", "GROUPS", "{authgear-webhook:inbox}:v2:stream"]);
    assert!(groups.contains("workers"), "the queue's key: {groups}");
    assert!(!consumers.contains(&dying_name), "{consumers}");
    let counts = b.counts().await.expect("counts");
    assert_eq!(
        (counts.queued, counts.in_flight, counts.done),
        (0, 0, N as u64 + 4)
    );
}

#[tokio::test]
async fn events_left_in_the_0_1_0_layout_stop_claims_until_they_are_drained() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    let older = |name: &str| format!("{{authgear-webhook:inbox}}:{name}");
    let long = Duration::from_secs(60);
    assert_eq!(
        store.store(small_event("new")).await.expect("store"),
        Stored::Stored
    );
    // What 0.1.0 may have left: a queued event, a retry, a dead letter.
    for (command, name) in [("XADD", "stream"), ("ZADD", "retry"), ("ZADD", "dead")] {
        let key = older(name);
        let args = match command {
            "XADD" => vec![command, &key, "*", "k", "old"],
            _ => vec![command, &key, "0", "old"],
        };
        redis.cli(&args);
        let error = store.claim(10, long).await.expect_err("older events");
        assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{name}");
        assert!(error.to_string().contains("0.1.0"), "{error}");
        redis.cli(&["DEL", &key]);
    }
    // Drained: claims go on, and this layout never wrote 0.1.0's keys.
    let claimed = store.claim(10, long).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    for name in ["stream", "retry", "dead"] {
        assert_eq!(redis.cli(&["EXISTS", &older(name)]), "0", "{name}");
    }
}

#[tokio::test]
async fn a_token_that_is_not_this_store_s_is_refused_not_an_error() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    for id in ["good", "bad"] {
        store.store(small_event(id)).await.expect("store");
    }
    let long = Duration::from_secs(60);
    let mut claims = store.claim(10, long).await.expect("claim");
    claims.sort_by(|a, b| b.key.id.cmp(&a.key.id));
    assert_eq!(claims[1].key.id, "bad");
    // Tokens that look like this store's ("<entry>:<deliveries>") but name no stream
    // entry: each call answers `false` as for any claim it does not hold, and the other
    // acks of the batch are not lost with it.
    for token in ["x:1", "1-x:1", ":1", "1-2-3:1"] {
        let mut bad = claims[1].clone();
        bad.token = token.into();
        assert!(!store.extend(&bad, long).await.expect("extend"), "{token}");
        assert!(
            !store.fail(&bad, Failure::Dead, "x").await.expect("fail"),
            "{token}"
        );
        assert!(!store.release(&bad).await.expect("release"), "{token}");
        assert!(!store.ack(&bad).await.expect("ack"), "{token}");
    }
    let mut bad = claims[1].clone();
    bad.token = "x:1".into();
    assert_eq!(
        store
            .ack_many(&[bad, claims[0].clone()])
            .await
            .expect("ack many"),
        [false, true]
    );
    assert!(store.ack(&claims[1]).await.expect("ack"));
}
