//! Catch up from Authgear's audit log (feature `catch-up`): the non-blocking events the
//! webhook never brought, stored in the inbox as if they had been delivered.
//!
//! Authgear sends each non-blocking event once and never retries: an event that meets a
//! receiver that is down (a deploy, a crash), unreachable, answering 503 or slower than 60 s
//! is gone from the webhook path. Authgear also records every non-blocking event in its
//! audit log, with the same `id`, and serves the log through its Admin API. [`CatchUp`]
//! reads that log, beside the inbox's worker, and stores each event the inbox has not seen
//! under the same key a webhook delivery would have had (the endpoint and the `id`): an
//! event that came both ways is stored, and handled, once.
//!
//! # What it needs
//!
//! - The project's Admin API key (Authgear's portal, "Admin API": the private key as PEM and
//!   its key ID) and the project's app ID: [`AdminApiKey`], [`AdminApi`]. The token for each
//!   request is RS256 under the key, `kid` the key ID, `aud` the app ID, valid 5 minutes.
//! - The events within the audit log's retention (unlimited by default; a plan may limit
//!   the days Authgear serves).
//! - An inbox whose store keeps a checkpoint (the SQLite, Redis and Postgres stores do).
//!
//! # What it cannot recover
//!
//! Blocking events are not in the log, and need no recovery: Authgear waited for their
//! answer. `identity.username.verified` and `identity.username.unverified` are logged but
//! cannot be queried by type through the Admin API. Events older than the log's retention,
//! or older than the inbox's own (below), are not read.
//!
//! # What the handler sees
//!
//! A recovered event reaches the worker's handler like a delivered one, with
//! [`Delivery::recovered`](crate::inbox::Delivery) set: its `event` is the same typed event;
//! its `body` is the event as the log holds it (Go's maps wrote it again: keys sorted,
//! numbers as float64 prints them), not bytes Authgear signed.
//!
//! # Passes, the checkpoint, and several instances
//!
//! [`CatchUp::run`] makes a pass at once, then one per [`interval`](CatchUp::interval)
//! (default 5 minutes). A pass reads the log from the checkpoint, kept in the inbox's store
//! (so it survives a restart, and the instances of a shared store share it), up to now, ten
//! minutes at a time (less when they hold more than 5,000 entries: memory stays bounded),
//! moving the checkpoint after each step read and stored. The
//! checkpoint never moves past [`overlap`](CatchUp::overlap) (default 5 minutes) before
//! now: Authgear writes an entry a moment after the event's time, so each pass reads the
//! last minutes again (events already stored cost nothing), and an event the webhook never
//! brought is stored within one interval.
//!
//! The first pass on a store without a checkpoint starts [`overlap`](CatchUp::overlap)
//! before now, unless [`first_start`](CatchUp::first_start) says otherwise: events from
//! before the inbox first ran are not handed over. No pass reads back further than the
//! inbox's [`retention`](CatchUp::retention) (default 7 days, as the worker's) less an hour:
//! a handled event is forgotten after the retention, and would be handed over again.
//!
//! Instances sharing a store take a lease before a pass: one pass runs at a time. The lease
//! lasts the interval (at least 5 s, at most a minute), renewed after each step, so an
//! instance killed during a pass holds up the others, or itself restarted, that long at
//! most; an instance that finds the lease taken tries again after that long.
//!
//! [`CatchUp::backfill`] reads a range given by hand, once, without the checkpoint or the
//! lease, or only lists what the inbox is missing (a dry run): the command-line tool's
//! `authgear-webhook catch-up`.
//!
//! # Faults
//!
//! The webhook path never waits for the catch-up. The Admin API unreachable, slow, refusing
//! the token (403), asking to slow down (429), failing (5xx) or answering something else
//! than the log: the pass stops where it is, logged with its reason (never the key or a
//! token), and is retried with backoff (1 s, doubling, at most the interval); the
//! checkpoint never moves past what was read and stored. [`AdminApi::check`] at start turns
//! a wrong key, key ID or app ID into a clear error at once.
//!
//! ```no_run
//! use authgear_webhook::{
//!     catch_up::{AdminApi, AdminApiKey, CatchUp},
//!     inbox::{CancellationToken, Inbox, SqliteStore},
//! };
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let inbox = Inbox::new(SqliteStore::open("inbox.sqlite3")?);
//! let key = AdminApiKey::from_pem_file("admin-api-key.pem", "d4c5...")?;
//! let api = AdminApi::new("https://myapp.authgear.cloud/_api/admin/graphql", "myapp", key)?;
//! api.check().await?;
//! let shutdown = CancellationToken::new();
//! // The endpoint the webhook's deliveries are stored under: the request path, here "/".
//! tokio::spawn(CatchUp::new(&inbox, api, "/").run(shutdown.clone()));
//! # Ok(())
//! # }
//! ```

mod admin_api;
mod error;
mod read;
pub(crate) mod status;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use self::admin_api::unix_now;
pub use self::{
    admin_api::{AdminApi, AdminApiKey, LoggedEvent},
    error::{CatchUpError, CatchUpErrorKind},
};
use crate::{
    event::NON_BLOCKING_TYPES,
    inbox::{EventKey, Inbox, NewEvent, Stored},
};

/// The span of the log one step of a pass reads before it moves the checkpoint.
const STEP: i64 = 600;
/// How long a pass's lease holds without being renewed (after each step): the interval, at
/// least 5 s and at most a minute, so that an instance killed during a pass holds up the
/// others (or itself, restarted) that long at most.
fn lease_for(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(5), Duration::from_secs(60))
}
/// The types the Admin API cannot filter on (not in its enum): never asked for.
const NOT_QUERYABLE: [&str; 2] = ["identity.username.verified", "identity.username.unverified"];

/// Reads Authgear's audit log into an inbox: see the [module](self) docs.
#[derive(Debug, Clone)]
pub struct CatchUp {
    inbox: Inbox,
    api: AdminApi,
    endpoint: String,
    types: Vec<String>,
    interval: Duration,
    overlap: Duration,
    retention: Duration,
    first_start: Option<SystemTime>,
    /// This instance's name for the lease.
    holder: String,
    /// Whether `run` runs and how its last pass ended, for the readiness check.
    pub(crate) status: status::Status,
}

/// What one pass did: [`CatchUp::pass`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pass {
    /// Another instance held the lease: this one read nothing.
    pub skipped: bool,
    /// Entries read from the log.
    pub read: u64,
    /// Events the inbox had not seen, now stored (the others were there already).
    pub recovered: u64,
}

/// What a [`CatchUp::backfill`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Backfill {
    /// Entries read from the log.
    pub read: u64,
    /// Events the inbox had not seen, now stored (a real run; 0 for a dry run).
    pub recovered: u64,
    /// The events the inbox has not seen, oldest first (a dry run; empty for a real run).
    pub missing: Vec<LoggedEvent>,
}

impl CatchUp {
    /// A catch-up into `inbox` from `api`, storing events under `endpoint`: the endpoint the
    /// webhook's deliveries are stored under (the name given to
    /// [`VerifySignatureLayer::endpoint`](crate::VerifySignatureLayer::endpoint), or else the
    /// request's path and query, e.g. `/` or `/hooks/authgear`). Every non-blocking event type
    /// the log can be queried for.
    ///
    /// ```no_run
    /// # fn f(inbox: authgear_webhook::inbox::Inbox, api: authgear_webhook::catch_up::AdminApi) {
    /// let catch_up = authgear_webhook::catch_up::CatchUp::new(&inbox, api, "/hooks/authgear");
    /// # }
    /// ```
    pub fn new(inbox: &Inbox, api: AdminApi, endpoint: impl Into<String>) -> Self {
        Self {
            inbox: inbox.clone(),
            api,
            endpoint: endpoint.into(),
            types: NON_BLOCKING_TYPES
                .iter()
                .filter(|event_type| !NOT_QUERYABLE.contains(event_type))
                .map(|event_type| (*event_type).to_owned())
                .collect(),
            interval: Duration::from_secs(300),
            overlap: Duration::from_secs(300),
            retention: Duration::from_secs(7 * 24 * 3600),
            first_start: None,
            holder: format!("{:016x}", fastrand::u64(..)),
            status: status::Status::default(),
        }
    }

    /// Only these event types: the ones the endpoint subscribes to in Authgear (default
    /// every non-blocking type). Blocking types and the types the Admin API cannot filter on
    /// are left out.
    ///
    /// ```no_run
    /// # fn f(catch_up: authgear_webhook::catch_up::CatchUp) {
    /// let catch_up = catch_up.event_types(["user.created", "user.deleted"]);
    /// # }
    /// ```
    #[must_use]
    pub fn event_types<T: Into<String>>(mut self, types: impl IntoIterator<Item = T>) -> Self {
        self.types = types
            .into_iter()
            .map(Into::into)
            .filter(|event_type| NON_BLOCKING_TYPES.contains(&event_type.as_str()))
            .filter(|event_type| !NOT_QUERYABLE.contains(&event_type.as_str()))
            .collect();
        self
    }

    /// The time between two passes (default 5 minutes): an event the webhook never brought
    /// is stored within about this long.
    ///
    /// ```no_run
    /// # fn f(catch_up: authgear_webhook::catch_up::CatchUp) {
    /// let catch_up = catch_up.interval(std::time::Duration::from_secs(60));
    /// # }
    /// ```
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_secs(1));
        self
    }

    /// How far before now each pass starts reading again (default 5 minutes): the
    /// checkpoint never moves past it, for the entries Authgear writes late.
    ///
    /// ```no_run
    /// # fn f(catch_up: authgear_webhook::catch_up::CatchUp) {
    /// let catch_up = catch_up.overlap(std::time::Duration::from_secs(600));
    /// # }
    /// ```
    #[must_use]
    pub fn overlap(mut self, overlap: Duration) -> Self {
        self.overlap = overlap;
        self
    }

    /// The inbox's retention: how long its worker keeps handled events
    /// ([`Worker::retention`](crate::inbox::Worker::retention), default 7 days). No pass
    /// reads back further than this less an hour, so a handled event, once forgotten, is
    /// never handed over again.
    ///
    /// ```no_run
    /// # fn f(catch_up: authgear_webhook::catch_up::CatchUp) {
    /// let catch_up = catch_up.retention(std::time::Duration::from_secs(24 * 3600));
    /// # }
    /// ```
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Where the first pass on a store without a checkpoint starts (default: the
    /// [`overlap`](Self::overlap) before now). Earlier to recover events from before the
    /// inbox first ran, within the retention.
    ///
    /// ```no_run
    /// # fn f(catch_up: authgear_webhook::catch_up::CatchUp) {
    /// let yesterday = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    /// let catch_up = catch_up.first_start(yesterday);
    /// # }
    /// ```
    #[must_use]
    pub fn first_start(mut self, start: SystemTime) -> Self {
        self.first_start = Some(start);
        self
    }

    /// The name of the lease and the checkpoint in the store: one per endpoint.
    fn name(&self) -> String {
        format!("catch-up {}", self.endpoint)
    }

    /// One pass: from the checkpoint to now, each event the inbox has not seen stored.
    ///
    /// # Errors
    ///
    /// A [`CatchUpError`] when the Admin API or the inbox's store fails; the checkpoint
    /// stays where the last step read and stored everything.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped pass leaves the checkpoint at the last step it finished
    /// (events stored since are stored, and found stored by the next pass); its lease
    /// expires after the interval (at least 5 s, at most a minute).
    pub async fn pass(&self) -> Result<Pass, CatchUpError> {
        let store = self.inbox.store();
        let name = self.name();
        if !store
            .lease(&name, &self.holder, lease_for(self.interval))
            .await
            .map_err(CatchUpError::store)?
        {
            return Ok(Pass {
                skipped: true,
                ..Pass::default()
            });
        }
        let pass = self.pass_leased(&name).await;
        if let Err(error) = store.release_lease(&name, &self.holder).await {
            tracing::debug!(%error, "catch-up: cannot release the lease (it expires)");
        }
        if pass.as_ref().is_ok_and(|pass| pass.recovered > 0) {
            self.inbox.wake();
        }
        pass
    }

    async fn pass_leased(&self, name: &str) -> Result<Pass, CatchUpError> {
        let store = self.inbox.store();
        let now = unix_now();
        let overlap = seconds(self.overlap);
        let checkpoint = store
            .checkpoint(name)
            .await
            .map_err(CatchUpError::store)?
            .map(unix);
        let start = checkpoint.unwrap_or_else(|| self.first_start.map_or(now - overlap, unix));
        // Never further back than the inbox remembers handled events.
        let floor = now - seconds(self.retention) + 3600;
        if start < floor {
            tracing::warn!(
                from = start,
                to = floor,
                "catch-up: events older than the inbox's retention are not read"
            );
        }
        let mut steps = Steps::new(start.max(floor), now + 1, STEP);
        let mut pass = Pass::default();
        while let Some((to, events)) = steps.next(&self.api, &self.types).await? {
            for event in events {
                pass.read += 1;
                if self.store_event(event).await? {
                    pass.recovered += 1;
                }
            }
            // Renewed before the checkpoint moves: a step longer than the lease takes it
            // again if nobody else did. Another instance took it: its pass goes on.
            if !store
                .lease(name, &self.holder, lease_for(self.interval))
                .await
                .map_err(CatchUpError::store)?
            {
                break;
            }
            let moved = to.min(now - overlap);
            if checkpoint.is_none_or(|checkpoint| moved > checkpoint)
                && !store
                    .set_checkpoint(name, &self.holder, time(moved))
                    .await
                    .map_err(CatchUpError::store)?
            {
                break;
            }
        }
        Ok(pass)
    }

    /// Stores `event` as recovered under this endpoint: `true` if the inbox had not seen it.
    async fn store_event(&self, event: LoggedEvent) -> Result<bool, CatchUpError> {
        let body = serde_json::to_vec(&event.data).map_err(|_| {
            CatchUpError::new(CatchUpErrorKind::Invalid, "an entry cannot be stored")
        })?;
        let stored = self
            .inbox
            .store()
            .store(NewEvent {
                key: EventKey::new(self.endpoint.clone(), event.id),
                event_type: event.event_type,
                body: Bytes::from(body),
                recovered: true,
            })
            .await
            .map_err(CatchUpError::store)?;
        if stored == Stored::Stored {
            crate::metrics::catch_up_recovered();
        }
        Ok(stored == Stored::Stored)
    }

    /// Reads `[from, to)` of the log (cut to whole seconds) and stores each event the inbox
    /// has not seen, as a [`pass`](Self::pass) does, but over this range, without the
    /// checkpoint or the lease (neither is read nor moved); `dry_run`: stores nothing and
    /// returns the events the inbox is missing. For a recovery by hand: events from before
    /// the catch-up first ran (or while it did not run at all), or to see what the inbox
    /// missed in a given hour.
    ///
    /// No floor at the inbox's [`retention`](Self::retention): an event handled and pruned
    /// since is stored, and handed to the handler, again.
    ///
    /// ```no_run
    /// use std::time::{Duration, SystemTime};
    /// use authgear_webhook::{
    ///     catch_up::{AdminApi, AdminApiKey, CatchUp},
    ///     inbox::{Inbox, SqliteStore},
    /// };
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let inbox = Inbox::new(SqliteStore::open("inbox.sqlite3")?);
    /// let key = AdminApiKey::from_pem_file("admin-api-key.pem", "d4c5...")?;
    /// let api = AdminApi::new("https://myapp.authgear.cloud/_api/admin/graphql", "myapp", key)?;
    /// let catch_up = CatchUp::new(&inbox, api, "/");
    /// let to = SystemTime::now();
    /// let from = to - Duration::from_secs(24 * 3600);
    ///
    /// let missing = catch_up.backfill(from, to, true).await?.missing;
    /// println!("{} events the inbox never stored", missing.len());
    /// let done = catch_up.backfill(from, to, false).await?;
    /// println!("read {}, stored {}", done.read, done.recovered);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`CatchUpError`] when the Admin API or the inbox's store fails (a dry run needs
    /// [`Store::contains`](crate::inbox::Store::contains)). The events stored before are
    /// stored: running it again stores the others.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped backfill leaves the events it stored stored.
    pub async fn backfill(
        &self,
        from: SystemTime,
        to: SystemTime,
        dry_run: bool,
    ) -> Result<Backfill, CatchUpError> {
        let store = self.inbox.store();
        let mut backfill = Backfill::default();
        // No checkpoint to move: the whole range at once, shorter only while a step holds
        // too many entries (a quiet month costs one request, not one per ten minutes).
        let (from, to) = (unix(from), unix(to));
        let mut steps = Steps::new(from, to, to.saturating_sub(from));
        while let Some((_, events)) = steps.next(&self.api, &self.types).await? {
            for event in events {
                backfill.read += 1;
                if dry_run {
                    let key = EventKey::new(self.endpoint.clone(), event.id.clone());
                    if !store.contains(&key).await.map_err(CatchUpError::store)? {
                        backfill.missing.push(event);
                    }
                } else if self.store_event(event).await? {
                    backfill.recovered += 1;
                }
            }
        }
        if backfill.recovered > 0 {
            self.inbox.wake();
        }
        Ok(backfill)
    }

    /// A pass now, then one per interval, until `shutdown` is cancelled; a failed pass is
    /// retried with backoff (1 s, doubling, at most the interval). Spawn it beside the
    /// inbox's worker.
    ///
    /// # Cancel safety
    ///
    /// As [`pass`](Self::pass): dropping it, or cancelling `shutdown`, stops it where it
    /// is.
    pub async fn run(self, shutdown: CancellationToken) {
        // Health's "the catch-up runs", until this future ends.
        let _running = self.status.running();
        let mut failures = 0u32;
        loop {
            let pass = tokio::select! {
                () = shutdown.cancelled() => return,
                pass = self.pass() => pass,
            };
            self.status.passed(&pass);
            let wait = match pass {
                Ok(pass) => {
                    crate::metrics::catch_up_pass(match pass.skipped {
                        true => "skipped",
                        false => "ok",
                    });
                    failures = 0;
                    if pass.recovered > 0 {
                        tracing::info!(
                            recovered = pass.recovered,
                            read = pass.read,
                            "catch-up: stored events the webhook never brought"
                        );
                    }
                    // Another instance's pass, or a killed one's lease: try again once it
                    // may have expired.
                    match pass.skipped {
                        true => lease_for(self.interval).min(self.interval),
                        false => self.interval,
                    }
                }
                Err(error) => {
                    crate::metrics::catch_up_pass("failed");
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_secs(1 << failures.min(16).saturating_sub(1));
                    tracing::warn!(%error, kind = ?error.kind(), "catch-up: pass failed, retried");
                    backoff.min(self.interval)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// A range of the log read step by step: `longest` at a time, shorter while a step holds
/// too many entries to read at once.
struct Steps {
    from: i64,
    end: i64,
    step: i64,
    longest: i64,
}

impl Steps {
    fn new(from: i64, end: i64, longest: i64) -> Self {
        let longest = longest.max(1);
        Self {
            from,
            end,
            step: longest,
            longest,
        }
    }

    /// The next step's end and its entries, oldest first; `None` once the range is read.
    async fn next(
        &mut self,
        api: &AdminApi,
        types: &[String],
    ) -> Result<Option<(i64, Vec<LoggedEvent>)>, CatchUpError> {
        while self.from < self.end {
            let to = (self.from + self.step).min(self.end);
            let Some(events) = read::read(api, self.from, to, types).await? else {
                // Too many entries to hold at once: a shorter step.
                self.step = ((to - self.from) / 2).max(1);
                continue;
            };
            self.step = self.step.saturating_mul(2).min(self.longest);
            self.from = to;
            return Ok(Some((to, events)));
        }
        Ok(None)
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 2)
}

/// Whole seconds since the epoch.
fn unix(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => seconds(since),
        Err(before) => -seconds(before.duration()),
    }
}

fn time(seconds: i64) -> SystemTime {
    match u64::try_from(seconds) {
        Ok(seconds) => UNIX_EPOCH + Duration::from_secs(seconds),
        Err(_) => UNIX_EPOCH,
    }
}
