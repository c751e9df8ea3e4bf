//! The store's Lua scripts, one typed function each.
//!
//! Each script is a file in `lua/`, headed by its KEYS, ARGV (index, name, meaning) and
//! reply. A script is put together at compile time from files: first its flags (Redis reads
//! them from a script's first line: `lua/flags/`), then `prelude.lua` (Redis's clock, and
//! integers as Redis arguments), then, for the scripts that act on one claim (extend, fail,
//! release), `held.lua` (the check that the claim still holds), then its own file. Its
//! function below binds the KEYS and ARGV in the order of that header, with the names it
//! uses, runs it ([`run`]: EVALSHA, and the script sent again after `NOSCRIPT`) and reads
//! its reply.
//!
//! Each script runs atomically; a writing one is refused whole when Redis cannot write
//! (read-only, cannot persist; out of memory for `store`, `redrive` and `probe` only: the
//! others free memory or take little). A stream entry's fields, in this order: m (member), t (type), b
//! (body), a (attempts before this entry), then r = 1 if the event was recovered from the
//! audit log (absent if it was delivered; a parked event's hash has it too). Every entry in
//! the stream is queued or claimed: whatever ends a claim acks and deletes its entry in the
//! same script.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{FromRedisValue, Script, ScriptInvocation, aio::ConnectionManager};

use super::{Shared, keys::GROUP};
use crate::inbox::store::{Counts, Failure, StoreError, StoreErrorKind};

/// A claim's deadline is kept as the stream entry's delivery time, `WINDOW` before the
/// deadline, so that `XAUTOCLAIM ... WINDOW` takes over exactly the entries whose deadline
/// has passed, whatever each claim's length. Claims longer than this are cut to it.
const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How long after a full pass of `XAUTOCLAIM` the next one is due at the latest (sooner
/// when a claim made since has an earlier deadline): an instance's claims are handed over
/// within this of their deadline, while other instances claim.
const RECLAIM_EVERY: Duration = Duration::from_secs(1);

/// The longest retry delay given to the fail script, in ms (about 285,000 years: never in
/// practice). Lua's numbers are doubles, and a due time past 2^63 ms would be written as a
/// negative one: due at once.
const MAX_DELAY_MS: u64 = 1 << 53;

/// Bytes counted per event besides its body, type and key (its `seen` field, its stream
/// entry, its `done` element): an estimate, for
/// [`RedisStore::size`](crate::inbox::Store::size).
const OVERHEAD: u64 = 256;

/// Bytes the least event counts for in `store.lua`: [`OVERHEAD`], and its member (counted
/// twice) of an empty key, its two NULs; its type and body empty. Every event counts for
/// this at least, so a store with less room than this left refuses every new event.
const LEAST: u64 = OVERHEAD + 2 * 2;

/// How long the probe's key lives, in ms: it is written only to see a write pass.
const PROBE_TTL_MS: u64 = 1000;

// Each script's text: its flags, the prelude, `held.lua` for those acting on one claim, its
// own file, concatenated at compile time.

const STORE: &str = concat!(
    include_str!("lua/flags/none.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/store.lua"),
);
const CLAIM: &str = concat!(
    include_str!("lua/flags/allow_oom.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/claim.lua"),
);
const EXTEND: &str = concat!(
    include_str!("lua/flags/allow_oom.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/held.lua"),
    include_str!("lua/extend.lua"),
);
const ACK: &str = concat!(
    include_str!("lua/flags/allow_oom.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/ack.lua"),
);
const FAIL: &str = concat!(
    include_str!("lua/flags/allow_oom.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/held.lua"),
    include_str!("lua/fail.lua"),
);
const RELEASE: &str = concat!(
    include_str!("lua/flags/allow_oom.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/held.lua"),
    include_str!("lua/release.lua"),
);
const DEAD: &str = concat!(
    include_str!("lua/flags/no_writes.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/dead.lua"),
);
const REDRIVE: &str = concat!(
    include_str!("lua/flags/none.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/redrive.lua"),
);
const COUNTS: &str = concat!(
    include_str!("lua/flags/no_writes.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/counts.lua"),
);
const PRUNE: &str = concat!(
    include_str!("lua/flags/allow_oom.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/prune.lua"),
);
const LEASE: &str = concat!(
    include_str!("lua/flags/allow_oom.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/lease.lua"),
);
const RELEASE_LEASE: &str = concat!(
    include_str!("lua/flags/allow_oom.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/release_lease.lua"),
);
const PROBE: &str = concat!(
    include_str!("lua/flags/none.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/probe.lua"),
);
const SET_CHECKPOINT: &str = concat!(
    include_str!("lua/flags/allow_oom.lua"),
    include_str!("lua/prelude.lua"),
    include_str!("lua/set_checkpoint.lua"),
);

/// The scripts, each with its SHA-1 for EVALSHA.
pub(super) struct Scripts {
    store: Script,
    claim: Script,
    extend: Script,
    ack: Script,
    fail: Script,
    release: Script,
    dead: Script,
    redrive: Script,
    counts: Script,
    prune: Script,
    lease: Script,
    release_lease: Script,
    set_checkpoint: Script,
    probe: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            store: Script::new(STORE),
            claim: Script::new(CLAIM),
            extend: Script::new(EXTEND),
            ack: Script::new(ACK),
            fail: Script::new(FAIL),
            release: Script::new(RELEASE),
            dead: Script::new(DEAD),
            redrive: Script::new(REDRIVE),
            counts: Script::new(COUNTS),
            prune: Script::new(PRUNE),
            lease: Script::new(LEASE),
            release_lease: Script::new(RELEASE_LEASE),
            set_checkpoint: Script::new(SET_CHECKPOINT),
            probe: Script::new(PROBE),
        }
    }
}

/// One claimed event as the claim script returns it: stream entry, delivery count, member,
/// type, body, attempt, recovered.
pub(super) type ClaimRow = (String, u64, Vec<u8>, String, Vec<u8>, u32, bool);

/// One dead letter as the dead script returns it: member, type, attempts, died at (Unix
/// ms), last error.
pub(super) type DeadRow = (Vec<u8>, String, u32, u64, Option<String>);

/// One event for the ack script.
pub(super) struct Ack {
    /// Its claim's stream entry.
    pub(super) entry: String,
    /// Its key, as a member.
    pub(super) member: Vec<u8>,
    /// The bytes its type and body count for.
    pub(super) size: usize,
}

/// `store.lua`: stores a new event; `false` if an event with its key is stored already.
pub(super) async fn store(
    connection: &mut ConnectionManager,
    shared: &Shared,
    member: &[u8],
    event_type: &str,
    body: &[u8],
    recovered: bool,
) -> Result<bool, StoreError> {
    let keys = &shared.keys;
    let stored: i64 = run(
        connection,
        shared
            .scripts
            .store
            .key(&keys.seen)
            .key(&keys.stream)
            .key(&keys.bytes)
            .arg(member)
            .arg(event_type)
            .arg(body)
            .arg(shared.max_size)
            .arg(OVERHEAD)
            .arg(u8::from(recovered)),
    )
    .await?;
    Ok(stored == 1)
}

/// `claim.lua`: claims up to `max` events for `claim_for` (cut to between 1 ms and
/// [`WINDOW`]).
pub(super) async fn claim(
    connection: &mut ConnectionManager,
    shared: &Shared,
    max: usize,
    claim_for: Duration,
) -> Result<Vec<ClaimRow>, StoreError> {
    let keys = &shared.keys;
    run(
        connection,
        shared
            .scripts
            .claim
            .key(&keys.stream)
            .key(&keys.retry)
            .key(&keys.seen)
            .key(&keys.next)
            .key(&keys.cursor)
            .key(&keys.cleanup)
            .key(&keys.older[0])
            .key(&keys.older[1])
            .key(&keys.older[2])
            .arg(GROUP)
            .arg(&shared.consumer)
            .arg(max)
            .arg(claim_millis(claim_for))
            .arg(millis(WINDOW))
            .arg(&keys.parked)
            .arg(millis(shared.idle_consumers))
            .arg(millis(RECLAIM_EVERY)),
    )
    .await
}

/// `extend.lua`: moves the deadline of the claim of `entry` with `deliveries` to
/// `claim_for` (cut to between 1 ms and [`WINDOW`]) from now; `false` if the claim no
/// longer holds.
pub(super) async fn extend(
    connection: &mut ConnectionManager,
    shared: &Shared,
    entry: &str,
    deliveries: u64,
    claim_for: Duration,
) -> Result<bool, StoreError> {
    let keys = &shared.keys;
    let extended: i64 = run(
        connection,
        shared
            .scripts
            .extend
            .key(&keys.stream)
            .key(&keys.next)
            .arg(GROUP)
            .arg(&shared.consumer)
            .arg(entry)
            .arg(deliveries)
            .arg(claim_millis(claim_for))
            .arg(millis(WINDOW)),
    )
    .await?;
    Ok(extended == 1)
}

/// `ack.lua`: marks the events handled, in one script; whether each is, in order. Given
/// none, answers none without calling Redis.
pub(super) async fn ack(
    connection: &mut ConnectionManager,
    shared: &Shared,
    acks: impl IntoIterator<Item = &Ack>,
) -> Result<impl Iterator<Item = bool>, StoreError> {
    let keys = &shared.keys;
    let mut invocation = shared.scripts.ack.prepare_invoke();
    invocation
        .key(&keys.stream)
        .key(&keys.retry)
        .key(&keys.dead)
        .key(&keys.seen)
        .key(&keys.done)
        .key(&keys.bytes)
        .arg(GROUP)
        .arg(&keys.parked);
    let mut any = false;
    for ack in acks {
        invocation.arg(&ack.entry).arg(&ack.member).arg(ack.size);
        any = true;
    }
    let replies: Vec<i64> = if any {
        run(connection, &invocation).await?
    } else {
        Vec::new()
    };
    Ok(replies.into_iter().map(|reply| reply == 1))
}

/// `fail.lua`: ends the claim of `entry` with `deliveries` after a failure, keeping
/// `last_error`; `false` if the claim no longer holds.
pub(super) async fn fail(
    connection: &mut ConnectionManager,
    shared: &Shared,
    entry: &str,
    deliveries: u64,
    failure: Failure,
    last_error: &str,
) -> Result<bool, StoreError> {
    // -1: dead.
    let delay = match failure {
        Failure::RetryAfter(delay) => {
            i64::try_from(millis(delay).min(MAX_DELAY_MS)).unwrap_or(i64::MAX)
        }
        Failure::Dead => -1,
    };
    let keys = &shared.keys;
    let failed: i64 = run(
        connection,
        shared
            .scripts
            .fail
            .key(&keys.stream)
            .key(&keys.retry)
            .key(&keys.dead)
            .arg(GROUP)
            .arg(&shared.consumer)
            .arg(entry)
            .arg(deliveries)
            .arg(delay)
            .arg(last_error)
            .arg(&keys.parked),
    )
    .await?;
    Ok(failed == 1)
}

/// `release.lua`: ends the claim of `entry` with `deliveries` without an attempt; `false`
/// if the claim no longer holds.
pub(super) async fn release(
    connection: &mut ConnectionManager,
    shared: &Shared,
    entry: &str,
    deliveries: u64,
) -> Result<bool, StoreError> {
    let keys = &shared.keys;
    let released: i64 = run(
        connection,
        shared
            .scripts
            .release
            .key(&keys.stream)
            .key(&keys.seen)
            .arg(GROUP)
            .arg(&shared.consumer)
            .arg(entry)
            .arg(deliveries),
    )
    .await?;
    Ok(released == 1)
}

/// `dead.lua`: up to `max` dead letters, in key order, from the first after the member
/// `after` (from the first without it).
pub(super) async fn dead(
    connection: &mut ConnectionManager,
    shared: &Shared,
    after: Option<&[u8]>,
    max: usize,
) -> Result<Vec<DeadRow>, StoreError> {
    // ZRANGEBYLEX: `-` is the first member, `(m` the first after m.
    let start = after.map_or_else(
        || b"-".to_vec(),
        |member| {
            let mut start = b"(".to_vec();
            start.extend_from_slice(member);
            start
        },
    );
    let keys = &shared.keys;
    run(
        connection,
        shared
            .scripts
            .dead
            .key(&keys.dead)
            .arg(start)
            .arg(max)
            .arg(&keys.parked),
    )
    .await
}

/// `redrive.lua`: queues the dead letter `member` again; `false` if it is not one.
pub(super) async fn redrive(
    connection: &mut ConnectionManager,
    shared: &Shared,
    member: &[u8],
) -> Result<bool, StoreError> {
    let keys = &shared.keys;
    let requeued: i64 = run(
        connection,
        shared
            .scripts
            .redrive
            .key(&keys.stream)
            .key(&keys.dead)
            .key(&keys.seen)
            .arg(member)
            .arg(&keys.parked),
    )
    .await?;
    Ok(requeued == 1)
}

/// `counts.lua`: the events in each state, as one snapshot.
pub(super) async fn counts(
    connection: &mut ConnectionManager,
    shared: &Shared,
) -> Result<Counts, StoreError> {
    let keys = &shared.keys;
    let (queued, in_flight, dead, done): (u64, u64, u64, u64) = run(
        connection,
        shared
            .scripts
            .counts
            .key(&keys.stream)
            .key(&keys.retry)
            .key(&keys.dead)
            .key(&keys.done)
            .arg(GROUP),
    )
    .await?;
    Ok(Counts {
        queued,
        in_flight,
        dead,
        done,
    })
}

/// `prune.lua`: removes up to `max` events handled before `before`; how many it removed.
pub(super) async fn prune(
    connection: &mut ConnectionManager,
    shared: &Shared,
    before: SystemTime,
    max: usize,
) -> Result<u64, StoreError> {
    let before = before.duration_since(UNIX_EPOCH).map_or(0, millis);
    let keys = &shared.keys;
    run(
        connection,
        shared
            .scripts
            .prune
            .key(&keys.done)
            .key(&keys.seen)
            .key(&keys.bytes)
            .arg(before)
            .arg(max)
            .arg(OVERHEAD),
    )
    .await
}

/// `lease.lua`: takes or renews the lease `name` for `holder` for `ttl` (at least 1 ms);
/// `false` if another holder's has not expired.
pub(super) async fn lease(
    connection: &mut ConnectionManager,
    shared: &Shared,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    let held: i64 = run(
        connection,
        shared
            .scripts
            .lease
            .key(shared.keys.lease(name))
            .arg(holder)
            .arg(millis(ttl).max(1)),
    )
    .await?;
    Ok(held == 1)
}

/// `release_lease.lua`: gives up the lease `name` if `holder` holds it.
pub(super) async fn release_lease(
    connection: &mut ConnectionManager,
    shared: &Shared,
    name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    let _: i64 = run(
        connection,
        shared
            .scripts
            .release_lease
            .key(shared.keys.lease(name))
            .arg(holder),
    )
    .await?;
    Ok(())
}

/// `set_checkpoint.lua`: sets the checkpoint `name` to `at` (Unix ms) if `holder` holds
/// the lease `name`; `false` otherwise.
pub(super) async fn set_checkpoint(
    connection: &mut ConnectionManager,
    shared: &Shared,
    name: &str,
    holder: &str,
    at: i64,
) -> Result<bool, StoreError> {
    let keys = &shared.keys;
    let set: i64 = run(
        connection,
        shared
            .scripts
            .set_checkpoint
            .key(keys.lease(name))
            .key(&keys.checkpoints)
            .arg(holder)
            .arg(name)
            .arg(at),
    )
    .await?;
    Ok(set == 1)
}

/// `probe.lua`: whether the store can take an event now: room for the least event under
/// its max size (else the error FULL), and a write of the probe's key, refused as
/// `store.lua` is (out of memory, read-only, cannot persist).
pub(super) async fn probe(
    connection: &mut ConnectionManager,
    shared: &Shared,
) -> Result<(), StoreError> {
    let keys = &shared.keys;
    let _: i64 = run(
        connection,
        shared
            .scripts
            .probe
            .key(&keys.bytes)
            .key(&keys.probe)
            .arg(shared.max_size)
            .arg(LEAST)
            .arg(PROBE_TTL_MS),
    )
    .await?;
    Ok(())
}

/// Runs a script and reads its reply: EVALSHA, and when Redis does not have the script
/// (`NOSCRIPT`, after a restart) it is loaded and run again (redis-rs's `invoke_async`).
async fn run<T: FromRedisValue>(
    connection: &mut ConnectionManager,
    invocation: &ScriptInvocation<'_>,
) -> Result<T, StoreError> {
    invocation.invoke_async(connection).await.map_err(error)
}

/// Redis's error as the store's: for the scripts, and the store's plain commands.
pub(super) fn error(error: redis::RedisError) -> StoreError {
    let (kind, message) = match error.code() {
        Some("FULL") => (StoreErrorKind::Full, "inbox store is full"),
        Some("OLDER") => (
            StoreErrorKind::Unavailable,
            "Redis holds events of the inbox's 0.1.0 layout: drain them with 0.1.0 first",
        ),
        Some("OOM") => (StoreErrorKind::Full, "Redis is out of memory"),
        Some("READONLY") => (StoreErrorKind::Unavailable, "Redis is read-only"),
        Some("MISCONF") => (StoreErrorKind::Unavailable, "Redis cannot persist writes"),
        _ => (StoreErrorKind::Unavailable, "Redis is unavailable"),
    };
    StoreError::new(kind, message, Some(Box::new(error)))
}

/// A claim's length in ms, cut to between 1 ms and [`WINDOW`].
fn claim_millis(claim_for: Duration) -> u64 {
    millis(claim_for.clamp(Duration::from_millis(1), WINDOW))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The `KEYS[n]` and `ARGV[n]` in `lines`, with a literal index.
    fn indexed<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for line in lines {
            for table in ["KEYS[", "ARGV["] {
                for (at, _) in line.match_indices(table) {
                    let rest = &line[at + table.len()..];
                    let digits =
                        rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                    if digits > 0 && rest[digits..].starts_with(']') {
                        found.insert(format!("{table}{}]", &rest[..digits]));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn the_least_event_counts_its_overhead_and_the_member_of_an_empty_key_twice() {
        let member = super::super::keys::member(&crate::inbox::store::EventKey::new("", ""));
        assert_eq!(LEAST, OVERHEAD + 2 * member.len() as u64);
    }

    #[test]
    fn each_script_starts_with_its_flags_and_documents_the_keys_and_argv_it_reads() {
        for (name, script) in [
            ("store", STORE),
            ("claim", CLAIM),
            ("extend", EXTEND),
            ("ack", ACK),
            ("fail", FAIL),
            ("release", RELEASE),
            ("dead", DEAD),
            ("redrive", REDRIVE),
            ("counts", COUNTS),
            ("prune", PRUNE),
            ("lease", LEASE),
            ("release_lease", RELEASE_LEASE),
            ("set_checkpoint", SET_CHECKPOINT),
            ("probe", PROBE),
        ] {
            assert!(script.starts_with("#!lua"), "{name}");
            let (comments, code): (Vec<&str>, Vec<&str>) = script
                .lines()
                .skip(1)
                .partition(|line| line.trim_start().starts_with("--"));
            assert_eq!(
                indexed(code.into_iter()),
                indexed(comments.into_iter()),
                "{name}: used (left) and documented (right)"
            );
        }
    }
}
