//! The worker: hands stored events to the user's handler, retries, dead-letters.

use std::{
    fmt,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower_service::Service;
use tracing::{Instrument, Span};

use super::{
    Backoff, Inbox,
    store::{Claimed, EventKey, Failure, Store},
};
use crate::{event::Event, metrics};

/// One stored event handed to the handler.
///
/// The same event may be handed over more than once (at least once: the process died after
/// the handler succeeded but before the inbox recorded it). Make the handler idempotent on
/// [`event.id`](Event::id), e.g. with `INSERT ... ON CONFLICT (event_id) DO NOTHING` in the
/// same transaction as its work.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Delivery {
    /// The typed event.
    pub event: Event,
    /// Which attempt this is: 1 for the first.
    pub attempt: u32,
    /// The endpoint it was delivered to (the request path unless the inbox names it).
    pub endpoint: String,
    /// The body exactly as Authgear signed it; for a [`recovered`](Self::recovered) event,
    /// the event as the audit log holds it (not signed bytes).
    pub body: Bytes,
    /// The event came from Authgear's audit log, not a webhook delivery: `body` is the event
    /// as the log holds it (keys sorted, numbers as Go's float64 wrote them), not bytes
    /// Authgear signed.
    pub recovered: bool,
    /// The stored event's key and the worker's claim on it: a store that acknowledges in
    /// the handler's own transaction checks that the claim still holds.
    #[cfg_attr(not(feature = "inbox-postgres"), allow(dead_code))]
    pub(crate) key: EventKey,
    #[cfg_attr(not(feature = "inbox-postgres"), allow(dead_code))]
    pub(crate) token: String,
}

/// The future a [`Handler`] returns: `Err` with a short description of the failure (it is
/// kept with the event; never put secrets in it).
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// What the worker calls for each event: implemented for async functions and closures
/// `Fn(Delivery) -> impl Future<Output = Result<(), E>>` with `E: Display`; wrap a tower
/// `Service<Delivery>` in [`ServiceHandler`].
///
/// ```
/// use authgear_webhook::inbox::{Delivery, Handler};
///
/// async fn handle(delivery: Delivery) -> Result<(), std::io::Error> {
///     println!("{} {}", delivery.event.event_type(), delivery.event.id);
///     Ok(())
/// }
///
/// fn is_handler(_: impl Handler) {}
/// is_handler(handle);
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery.
    fn handle(&self, delivery: Delivery) -> HandlerFuture;
}

impl<F, Fut, E> Handler for F
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: fmt::Display,
{
    fn handle(&self, delivery: Delivery) -> HandlerFuture {
        let future = self(delivery);
        Box::pin(async move { future.await.map_err(|error| error.to_string()) })
    }
}

/// A tower `Service<Delivery>` as a [`Handler`]: cloned for each event, then made ready.
///
/// ```
/// use authgear_webhook::inbox::{Delivery, Handler, ServiceHandler};
///
/// let service = tower::service_fn(|delivery: Delivery| async move {
///     Ok::<_, std::io::Error>(())
/// });
/// fn is_handler(_: impl Handler) {}
/// is_handler(ServiceHandler::new(service));
/// ```
#[derive(Debug, Clone)]
pub struct ServiceHandler<S>(S);

impl<S> ServiceHandler<S> {
    /// Wraps `service`.
    pub fn new(service: S) -> Self {
        Self(service)
    }
}

impl<S> Handler for ServiceHandler<S>
where
    S: Service<Delivery> + Clone + Send + Sync + 'static,
    S::Error: fmt::Display,
    S::Future: Send + 'static,
{
    fn handle(&self, delivery: Delivery) -> HandlerFuture {
        let mut service = self.0.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(|error| error.to_string())?;
            service
                .call(delivery)
                .await
                .map(drop)
                .map_err(|error| error.to_string())
        })
    }
}

/// Runs the inbox's events through a [`Handler`]: see the [module docs](super).
///
/// ```no_run
/// use authgear_webhook::inbox::{CancellationToken, Delivery, Inbox, SqliteStore, Worker};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let inbox = Inbox::new(SqliteStore::open("inbox.sqlite3")?);
/// let shutdown = CancellationToken::new();
/// let worker = tokio::spawn(Worker::new(inbox.clone()).concurrency(8).run(
///     |delivery: Delivery| async move { Ok::<_, std::io::Error>(()) },
///     shutdown.clone(),
/// ));
/// // ... serve until told to stop, then:
/// shutdown.cancel();
/// worker.await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Worker {
    inbox: Inbox,
    concurrency: usize,
    backoff: Backoff,
    claim_for: Duration,
    poll: Duration,
    grace: Duration,
    retention: Duration,
    prune_every: Duration,
}

/// Done events removed per prune call.
const PRUNE_BATCH: usize = 500;

/// How long a saturated worker waits for half its slots to come free before it claims
/// for those that are.
const LINGER: Duration = Duration::from_millis(1);

/// Most handled events acked in one store call.
const ACK_BATCH: usize = 256;

impl Worker {
    /// A worker for `inbox`: 16 events at once, [`Backoff::default`], claims of 30 s,
    /// polls every second, 30 s of grace at shutdown, 7 days of retention.
    ///
    /// ```
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// let worker = authgear_webhook::inbox::Worker::new(inbox);
    /// # }
    /// ```
    pub fn new(inbox: Inbox) -> Self {
        Self {
            inbox,
            concurrency: 16,
            backoff: Backoff::default(),
            claim_for: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_every: Duration::from_secs(60),
        }
    }

    /// How many events are handled at once (default 16, at least 1). An event whose handler
    /// succeeded frees its slot and waits for its ack in a bounded queue (as long as this,
    /// at most 256; a full queue keeps the slot taken); all those waiting are acked in one
    /// store call.
    ///
    /// Size it as the rate to keep up with times a handler's time (500 events/s of 20 ms
    /// each: 10), with room to spare. A claim takes at most the free slots, so with very
    /// fast handlers more slots also mean fewer store round trips per event: on Redis, 64
    /// kept up with about 15,000 deliveries/s on two cores where 32 fell behind
    /// (BENCHMARKS.md, section 6).
    ///
    /// ```
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// let worker = authgear_webhook::inbox::Worker::new(inbox).concurrency(64);
    /// # }
    /// ```
    pub fn concurrency(mut self, events: usize) -> Self {
        self.concurrency = events.max(1);
        self
    }

    /// The retry schedule (default [`Backoff::default`]).
    ///
    /// ```
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// use authgear_webhook::inbox::{Backoff, Worker};
    /// let worker = Worker::new(inbox).backoff(Backoff::default().attempts(5));
    /// # }
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How long a claim holds without a heartbeat (default 30 s, at least 1 ms): an event
    /// in flight when its process dies is handed over this long after the last heartbeat,
    /// plus at most one [`poll`](Self::poll). A live worker renews its claims every third
    /// of it while the handler runs.
    ///
    /// ```
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// # use std::time::Duration;
    /// let worker = authgear_webhook::inbox::Worker::new(inbox).claim_for(Duration::from_secs(10));
    /// # }
    /// ```
    pub fn claim_for(mut self, claim_for: Duration) -> Self {
        self.claim_for = claim_for.max(Duration::from_millis(1));
        self
    }

    /// How often an idle worker looks for due events (default 1 s). Events stored through
    /// this process's layer wake it at once; this is for retries coming due and events
    /// stored by other processes.
    ///
    /// ```
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// # use std::time::Duration;
    /// let worker = authgear_webhook::inbox::Worker::new(inbox).poll(Duration::from_millis(100));
    /// # }
    /// ```
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(1));
        self
    }

    /// How long handlers in flight may run on after shutdown is asked (default 30 s); then
    /// they are dropped and their events go back to the queue, not counted as an attempt.
    ///
    /// ```
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// # use std::time::Duration;
    /// let worker = authgear_webhook::inbox::Worker::new(inbox).grace(Duration::from_secs(5));
    /// # }
    /// ```
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long handled events are kept (default 7 days): the same id delivered again
    /// within it is recognised and not handled twice. Pruned every minute, in small batches.
    ///
    /// ```
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// # use std::time::Duration;
    /// let worker = authgear_webhook::inbox::Worker::new(inbox)
    ///     .retention(Duration::from_secs(24 * 3600));
    /// # }
    /// ```
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Handles events with `handler` until `shutdown` is cancelled; then stops claiming,
    /// lets handlers in flight finish within the [`grace`](Self::grace) period, gives the
    /// rest back to the queue, and returns.
    ///
    /// Store errors (disk full, Redis down) are logged and retried after a pause; the
    /// worker keeps going. A handler that panics is a failed attempt; the worker keeps
    /// going.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime: the handlers and the acknowledgements run as tasks spawned
    /// on the current one.
    ///
    /// # Cancel safety
    ///
    /// For a graceful stop, cancel `shutdown` and await the future. Dropping the future
    /// instead stops claiming at once, without the grace period; the handlers already
    /// running are tasks of their own and run to their end, and their outcome is still
    /// recorded while the runtime runs. Nothing is lost either way: an event whose handler
    /// is dropped with the runtime is handed over again when its claim expires.
    pub async fn run(self, handler: impl Handler, shutdown: CancellationToken) {
        // Health's "the worker runs", until this future ends.
        let _running = self.inbox.worker_running();
        let handler: Arc<dyn Handler> = Arc::new(handler);
        let store = self.inbox.shared.store.clone();
        let config = Arc::new(self);
        let permits = Arc::new(Semaphore::new(config.concurrency));
        let tracker = TaskTracker::new();
        // The `queued` and `dead` gauges, read until this future ends or is dropped.
        let gauges = metrics::InboxGauges::default();
        let stop_gauges = shutdown.child_token();
        tracker.spawn(
            gauges
                .clone()
                .watch(config.inbox.clone(), stop_gauges.clone()),
        );
        let _stop_gauges = stop_gauges.drop_guard();
        // Handled events (and their spans) to the task that acks them in batches.
        let (acks, handled) = mpsc::channel(config.concurrency.min(ACK_BATCH));
        tracker.spawn(ack_handled(store.clone(), handled, gauges.clone()));
        // Cancelled when the grace period ends: handlers still running are dropped.
        let give_back = CancellationToken::new();
        let mut next_prune = tokio::time::Instant::now();
        let mut pause = config.poll;

        while !shutdown.is_cancelled() {
            if tokio::time::Instant::now() >= next_prune {
                next_prune = tokio::time::Instant::now() + config.prune_every;
                prune(&*store, config.retention).await;
            }
            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    permit = permits.acquire() => drop(permit),
                }
                // Saturated: give the other handlers a moment to free their slots too, so
                // that one claim fills many (a claim costs the store almost as
                // much for one event as for a hundred). Only when every slot was busy.
                let half = u32::try_from(config.concurrency / 2).unwrap_or(u32::MAX);
                if let Ok(Ok(permits)) =
                    tokio::time::timeout(LINGER, permits.acquire_many(half.max(1))).await
                {
                    drop(permits);
                }
                continue;
            }
            let claims = match store.claim(free, config.claim_for).await {
                Ok(claims) => {
                    pause = config.poll;
                    claims
                }
                Err(error) => {
                    tracing::warn!(%error, "inbox: cannot claim events; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                        // An event just stored through this process: the store is back.
                        _ = config.inbox.shared.wake.notified() => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let full = claims.len() == free;
            for claim in claims {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    // Cannot happen (one claim per free permit); give it back if it does.
                    let _ = store.release(&claim).await;
                    continue;
                };
                let (store, handler, config) = (store.clone(), handler.clone(), config.clone());
                let (give_back, acks, gauges) = (give_back.clone(), acks.clone(), gauges.clone());
                let span = tracing::info_span!(
                    "authgear_webhook.handle",
                    id = %claim.key.id,
                    event_type = %claim.event_type,
                    endpoint = %claim.key.endpoint,
                    attempt = claim.attempt,
                    recovered = claim.recovered,
                );
                let in_flight = metrics::InFlight::start();
                tracker.spawn(
                    async move {
                        // The slot is free once the ack is queued, so that the next claim
                        // and this ack can share a store round trip (and, on Redis with
                        // `appendfsync always`, one sync). The queue is bounded: while it is
                        // full, the slot stays taken.
                        match config.handle(&*store, &*handler, claim, give_back).await {
                            Some(claim) => {
                                if acks.send((claim, Span::current())).await.is_err() {
                                    tracing::warn!(
                                        "inbox: handled, but not recorded; it will be handed over again"
                                    );
                                }
                            }
                            None => gauges.changed(),
                        }
                        drop(in_flight);
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = config.inbox.shared.wake.notified() => {}
                _ = tokio::time::sleep(config.poll) => {}
            }
        }

        // The acker stops once the handlers still running have sent theirs.
        drop(acks);
        tracker.close();
        if tokio::time::timeout(config.grace, tracker.wait())
            .await
            .is_err()
        {
            give_back.cancel();
            tracker.wait().await;
        }
    }

    /// One claimed event: parse, run the handler with a heartbeat, record a failure.
    /// Returns the claim when the handler succeeded, for [`ack_handled`] to record.
    async fn handle(
        &self,
        store: &dyn Store,
        handler: &dyn Handler,
        claim: Claimed,
        give_back: CancellationToken,
    ) -> Option<Claimed> {
        let (endpoint, id) = (&claim.key.endpoint, &claim.key.id);
        let event_type = &claim.event_type;
        let attempt = claim.attempt;
        if attempt > self.backoff.max_attempts() {
            // Its claims kept expiring (a handler that kills the process?): stop here.
            self.dead(store, &claim, "claim expired on the last attempt")
                .await;
            return None;
        }
        let event = match serde_json::from_slice::<Event>(&claim.body) {
            Ok(event) => event,
            Err(_) => {
                // Retrying will not change the bytes.
                self.dead(store, &claim, "stored body is not an Authgear event")
                    .await;
                return None;
            }
        };
        let delivery = Delivery {
            event,
            attempt,
            endpoint: endpoint.clone(),
            body: claim.body.clone(),
            recovered: claim.recovered,
            key: claim.key.clone(),
            token: claim.token.clone(),
        };
        let since = metrics::Timer::start();
        let work = CatchUnwind(catch_unwind(AssertUnwindSafe(|| handler.handle(delivery))).ok());
        tokio::pin!(work);
        let beat = self.claim_for / 3;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        let outcome = loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                _ = heartbeat.tick() => {
                    match store.extend(&claim, self.claim_for).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(%endpoint, %id, "inbox: claim lost while handling"),
                        Err(error) => tracing::warn!(%endpoint, %id, %error, "inbox: cannot extend claim"),
                    }
                }
                _ = give_back.cancelled() => {
                    match store.release(&claim).await {
                        Ok(_) => tracing::info!(%endpoint, %id, "inbox: given back at shutdown"),
                        Err(error) => tracing::warn!(%endpoint, %id, %error, "inbox: cannot give back; handed over when its claim expires"),
                    }
                    return None;
                }
            }
        };
        metrics::handler_ran(event_type, since);
        match outcome {
            Ok(()) => return Some(claim),
            Err(error) => match self.backoff.jittered(attempt) {
                Some(delay) => {
                    metrics::retried(event_type);
                    tracing::warn!(%endpoint, %id, %event_type, attempt, %error, retry_in = ?delay, "inbox: handler failed; retrying");
                    if let Err(error) = store.fail(&claim, Failure::RetryAfter(delay), &error).await
                    {
                        tracing::warn!(%endpoint, %id, %error, "inbox: cannot record the failure; retried when its claim expires");
                    }
                }
                None => self.dead(store, &claim, &error).await,
            },
        }
        None
    }

    async fn dead(&self, store: &dyn Store, claim: &Claimed, error: &str) {
        let (endpoint, id, attempt) = (&claim.key.endpoint, &claim.key.id, claim.attempt);
        match store.fail(claim, Failure::Dead, error).await {
            Ok(true) => {
                tracing::error!(%endpoint, %id, event_type = %claim.event_type, attempt, %error, "inbox: dead-lettered");
                metrics::dead_lettered(&claim.event_type);
            }
            Ok(false) => {
                tracing::warn!(%endpoint, %id, %error, "inbox: failed for the last time, but its claim was lost; another worker has it")
            }
            Err(store_error) => {
                tracing::warn!(%endpoint, %id, error = %store_error, "inbox: cannot dead-letter; retried when its claim expires")
            }
        }
    }
}

/// Acks handled events, all those waiting (up to [`ACK_BATCH`]) in one store call, so a
/// fast handler costs a share of a round trip per event, not one each; logs each in its
/// handler's span. Ends when every sender is gone (the worker's loop and its handlers).
async fn ack_handled(
    store: Arc<dyn Store>,
    mut handled: mpsc::Receiver<(Claimed, Span)>,
    gauges: metrics::InboxGauges,
) {
    let (mut batch, mut spans) = (Vec::with_capacity(ACK_BATCH), Vec::with_capacity(ACK_BATCH));
    while let Some(first) = handled.recv().await {
        let (claim, span) = first;
        batch.push(claim);
        spans.push(span);
        // The handlers of one claim tend to finish together: let them queue theirs first.
        tokio::task::yield_now().await;
        while batch.len() < ACK_BATCH {
            match handled.try_recv() {
                Ok((claim, span)) => {
                    batch.push(claim);
                    spans.push(span);
                }
                Err(_) => break,
            }
        }
        let acked = store.ack_many(&batch).await;
        for (index, (claim, span)) in batch.drain(..).zip(spans.drain(..)).enumerate() {
            let _entered = span.enter();
            let (endpoint, id, attempt) = (&claim.key.endpoint, &claim.key.id, claim.attempt);
            match &acked {
                Ok(acked) if acked.get(index).copied().unwrap_or(false) => {
                    tracing::info!(%endpoint, %id, event_type = %claim.event_type, attempt, "inbox: handled");
                    metrics::handled(&claim.event_type, claim.recovered);
                }
                Ok(_) => {
                    tracing::warn!(%endpoint, %id, "inbox: handled, but its claim was lost; another worker has it and may handle it again")
                }
                Err(error) => {
                    tracing::warn!(%endpoint, %id, %error, "inbox: handled, but not recorded; it will be handed over again")
                }
            }
        }
        gauges.changed();
    }
}

/// Removes handled events older than the retention, in small batches.
async fn prune(store: &dyn Store, retention: Duration) {
    let before = SystemTime::now()
        .checked_sub(retention)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    loop {
        match store.prune(before, PRUNE_BATCH).await {
            Ok(removed) if removed as usize == PRUNE_BATCH => tokio::task::yield_now().await,
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(%error, "inbox: cannot prune");
                break;
            }
        }
    }
}

/// The handler's future with its panics turned into failures (`None`: `handle` itself
/// panicked before returning a future).
struct CatchUnwind(Option<HandlerFuture>);

impl Future for CatchUnwind {
    type Output = Result<(), String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(future) = self.0.as_mut() else {
            return Poll::Ready(Err("handler panicked".to_owned()));
        };
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                self.0 = None;
                Poll::Ready(Err("handler panicked".to_owned()))
            }
        }
    }
}
