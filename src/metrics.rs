//! Counters, gauges and histograms through the [`metrics`](https://docs.rs/metrics) facade
//! (feature `metrics`).
//!
//! The crate only emits; the application installs the recorder (the exporter) it wants,
//! e.g. `metrics-exporter-prometheus`, before serving. Without a recorder every call is a
//! no-op. Names and labels follow Prometheus's conventions: the prefix `authgear_webhook_`,
//! `_total` on counters, `_seconds` on durations, snake_case labels. Each is counted in one
//! place, whichever store or server is used.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `authgear_webhook_deliveries_refused_total` | counter | `reason` | requests refused by the verifying layer, replay protection or the inbox; `reason` is the [`RejectionKind`] in snake_case ([`RejectionKind::as_str`]): `missing_signature`, `malformed_signature`, `invalid_signature`, `no_secrets`, `body_too_large`, `body_unreadable`, `body_deadline`, `budget_exhausted`, `stale`, `replayed`, `missing_replay_fields`, `store_unavailable`, `inbox_unavailable`, `unverified` |
//! | `authgear_webhook_deliveries_verified_total` | counter | | deliveries whose signature matched: handed to the inner service |
//! | `authgear_webhook_deliveries_accepted_total` | counter | | verified deliveries answered with a 2xx (by the inbox, the handler, or replay protection giving the first answer again) |
//! | `authgear_webhook_replay_repeated_total` | counter | | repeated deliveries answered with the first copy's answer, without calling the handler |
//! | `authgear_webhook_inbox_deliveries_total` | counter | `outcome` | deliveries the inbox layer took: `stored`, `duplicate` (already stored; 200 again), `not_stored` (the store failed; 503) |
//! | `authgear_webhook_inbox_store_seconds` | histogram | | what the inbox adds before the 200: the time to store (and sync) one delivery |
//! | `authgear_webhook_inbox_redriven_total` | counter | | dead letters queued again ([`Inbox::redrive`](crate::inbox::Inbox::redrive)) |
//! | `authgear_webhook_inbox_queued` | gauge | | events waiting for a worker (retries not yet due included) |
//! | `authgear_webhook_inbox_dead` | gauge | | dead letters |
//! | `authgear_webhook_worker_in_flight` | gauge | | events this process's workers are handling now |
//! | `authgear_webhook_worker_handled_total` | counter | `event_type` | events handled and recorded as done |
//! | `authgear_webhook_worker_retried_total` | counter | `event_type` | failed attempts (handler error or panic) to be retried after the backoff |
//! | `authgear_webhook_worker_dead_lettered_total` | counter | `event_type` | events made dead letters (the last attempt failed, or the body is not an event) |
//! | `authgear_webhook_worker_recovered_total` | counter | | handled events that came from Authgear's audit log ([`Delivery::recovered`](crate::inbox::Delivery::recovered)), also counted in `handled` |
//! | `authgear_webhook_worker_handler_seconds` | histogram | `event_type` | the handler's time per attempt, success or failure |
//! | `authgear_webhook_catch_up_passes_total` | counter | `outcome` | passes of [`CatchUp::run`](crate::catch_up::CatchUp::run): `ok`, `skipped` (another instance holds the lease), `failed` (retried with backoff) |
//! | `authgear_webhook_catch_up_recovered_total` | counter | | events the catch-up stored that the webhook never brought (passes and backfills) |
//!
//! `event_type` is one of the types this crate knows (`user.created`, ...), or `other`: its
//! values are bounded. There is no endpoint or path label: the path is the sender's to
//! choose, and a label per path would let anyone grow the exporter's memory.
//!
//! `queued` and `dead` are the inbox's own counts ([`Inbox::counts`]), read by a running
//! [`Worker`](crate::inbox::Worker) every 10 s and within a second of each change it
//! makes, so on a store shared by several instances they are the whole store's (take the
//! maximum over instances, not the sum). `in_flight` is this process's alone (sum it).
//! One inbox per process: the gauges carry no label, so the workers of two inboxes in one
//! process would set them in turn. A read that fails leaves them as they were (logged at
//! `debug`; the store's failure shows in the refusals and in health).
//!
//! [`describe`] gives the exporter each metric's unit and help text (Prometheus's `# HELP`
//! lines).
//!
//! [`Inbox::counts`]: crate::inbox::Inbox::counts
//!
// Without the feature the module is private, but its examples are still doctests.
#![cfg_attr(feature = "metrics", doc = "```")]
#![cfg_attr(not(feature = "metrics"), doc = "```ignore")]
//! use authgear_webhook::{sign, VerifySignatureLayer, SIGNATURE_HEADER};
//! use http::{Request, Response, StatusCode};
//! use metrics_exporter_prometheus::PrometheusBuilder;
//! use tower::{service_fn, Layer, ServiceExt};
//! # use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The application's choice, once at start: here Prometheus's text format.
//! let prometheus = PrometheusBuilder::new().install_recorder()?;
//! authgear_webhook::metrics::describe();
//!
//! let service = VerifySignatureLayer::new("secret").layer(service_fn(|_: Request<_>| async {
//!     Ok::<_, Infallible>(Response::new(String::new()))
//! }));
//! let forged = Request::post("/")
//!     .header(SIGNATURE_HEADER, sign("not-the-secret", b"{}"))
//!     .body(String::from("{}"))?;
//! assert_eq!(service.oneshot(forged).await?.status(), StatusCode::UNAUTHORIZED);
//!
//! let text = prometheus.render();
//! assert!(text.contains(r#"authgear_webhook_deliveries_refused_total{reason="invalid_signature"} 1"#));
//! # Ok(())
//! # }
//! ```
// Without the feature the module is private and its functions do nothing.
#![cfg_attr(not(feature = "metrics"), allow(unreachable_pub, dead_code))]

use crate::RejectionKind;
#[cfg(feature = "inbox")]
use crate::inbox::{CancellationToken, Inbox};

/// Requests refused, by `reason`.
pub const DELIVERIES_REFUSED: &str = "authgear_webhook_deliveries_refused_total";
/// Deliveries whose signature matched.
pub const DELIVERIES_VERIFIED: &str = "authgear_webhook_deliveries_verified_total";
/// Verified deliveries answered with a 2xx.
pub const DELIVERIES_ACCEPTED: &str = "authgear_webhook_deliveries_accepted_total";
/// Repeated deliveries answered with the first answer.
pub const REPLAY_REPEATED: &str = "authgear_webhook_replay_repeated_total";
/// Deliveries the inbox layer took, by `outcome`.
pub const INBOX_DELIVERIES: &str = "authgear_webhook_inbox_deliveries_total";
/// The time to store one delivery before its 200.
pub const INBOX_STORE_SECONDS: &str = "authgear_webhook_inbox_store_seconds";
/// Dead letters queued again.
pub const INBOX_REDRIVEN: &str = "authgear_webhook_inbox_redriven_total";
/// Events waiting for a worker.
pub const INBOX_QUEUED: &str = "authgear_webhook_inbox_queued";
/// Dead letters.
pub const INBOX_DEAD: &str = "authgear_webhook_inbox_dead";
/// Events this process's workers are handling now.
pub const WORKER_IN_FLIGHT: &str = "authgear_webhook_worker_in_flight";
/// Events handled, by `event_type`.
pub const WORKER_HANDLED: &str = "authgear_webhook_worker_handled_total";
/// Failed attempts to be retried, by `event_type`.
pub const WORKER_RETRIED: &str = "authgear_webhook_worker_retried_total";
/// Events made dead letters, by `event_type`.
pub const WORKER_DEAD_LETTERED: &str = "authgear_webhook_worker_dead_lettered_total";
/// Handled events recovered from the audit log.
pub const WORKER_RECOVERED: &str = "authgear_webhook_worker_recovered_total";
/// The handler's time per attempt, by `event_type`.
pub const WORKER_HANDLER_SECONDS: &str = "authgear_webhook_worker_handler_seconds";
/// Catch-up passes, by `outcome`.
pub const CATCH_UP_PASSES: &str = "authgear_webhook_catch_up_passes_total";
/// Events the catch-up stored.
pub const CATCH_UP_RECOVERED: &str = "authgear_webhook_catch_up_recovered_total";

/// Gives the installed recorder each metric's unit and help text, and registers the
/// counters without labels (and the inbox's outcomes) at 0, so that a scrape before the
/// first delivery shows them, as Prometheus advises, rather than series that appear later.
/// Call it once, after installing the recorder (a recorder installed later knows nothing of
/// it).
///
#[cfg_attr(feature = "metrics", doc = "```")]
#[cfg_attr(not(feature = "metrics"), doc = "```ignore")]
/// authgear_webhook::metrics::describe();
/// ```
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_counter!(
            DELIVERIES_REFUSED,
            Unit::Count,
            "Requests refused, by reason (the RejectionKind)."
        );
        describe_counter!(
            DELIVERIES_VERIFIED,
            Unit::Count,
            "Deliveries whose signature matched."
        );
        describe_counter!(
            DELIVERIES_ACCEPTED,
            Unit::Count,
            "Verified deliveries answered with a 2xx."
        );
        describe_counter!(
            REPLAY_REPEATED,
            Unit::Count,
            "Repeated deliveries answered with the first answer."
        );
        describe_counter!(
            INBOX_DELIVERIES,
            Unit::Count,
            "Deliveries the inbox took: stored, duplicate or not_stored."
        );
        describe_histogram!(
            INBOX_STORE_SECONDS,
            Unit::Seconds,
            "Time to store (and sync) a delivery before its 200."
        );
        describe_counter!(INBOX_REDRIVEN, Unit::Count, "Dead letters queued again.");
        describe_gauge!(INBOX_QUEUED, Unit::Count, "Events waiting for a worker.");
        describe_gauge!(INBOX_DEAD, Unit::Count, "Dead letters.");
        describe_gauge!(
            WORKER_IN_FLIGHT,
            Unit::Count,
            "Events this process's workers are handling now."
        );
        describe_counter!(WORKER_HANDLED, Unit::Count, "Events handled.");
        describe_counter!(
            WORKER_RETRIED,
            Unit::Count,
            "Failed attempts to be retried after the backoff."
        );
        describe_counter!(
            WORKER_DEAD_LETTERED,
            Unit::Count,
            "Events made dead letters."
        );
        describe_counter!(
            WORKER_RECOVERED,
            Unit::Count,
            "Handled events recovered from Authgear's audit log."
        );
        describe_histogram!(
            WORKER_HANDLER_SECONDS,
            Unit::Seconds,
            "The handler's time per attempt."
        );
        describe_counter!(
            CATCH_UP_PASSES,
            Unit::Count,
            "Catch-up passes: ok, skipped or failed."
        );
        describe_counter!(
            CATCH_UP_RECOVERED,
            Unit::Count,
            "Events the catch-up stored that the webhook never brought."
        );
        for name in [
            DELIVERIES_VERIFIED,
            DELIVERIES_ACCEPTED,
            REPLAY_REPEATED,
            INBOX_REDRIVEN,
            WORKER_RECOVERED,
            CATCH_UP_RECOVERED,
        ] {
            ::metrics::counter!(name).increment(0);
        }
        for outcome in ["stored", "duplicate", "not_stored"] {
            ::metrics::counter!(INBOX_DELIVERIES, "outcome" => outcome).increment(0);
        }
    }
}

/// A refusal, counted where it is answered and logged (`Rejection::into_response`).
pub(crate) fn refused(kind: RejectionKind) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(DELIVERIES_REFUSED, "reason" => kind.as_str()).increment(1);
    let _ = kind;
}

/// A delivery verified and handed on; `accepted` once answered with a 2xx.
pub(crate) fn verified() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(DELIVERIES_VERIFIED).increment(1);
}

/// A verified delivery's answer.
pub(crate) fn answered(status: http::StatusCode) {
    #[cfg(feature = "metrics")]
    if status.is_success() {
        ::metrics::counter!(DELIVERIES_ACCEPTED).increment(1);
    }
    let _ = status;
}

/// A repeated delivery answered with the first answer.
#[cfg(feature = "replay")]
pub(crate) fn repeated() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(REPLAY_REPEATED).increment(1);
}

/// When something started, to record how long it took (nothing without the feature).
#[cfg(feature = "inbox")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    start: std::time::Instant,
}

#[cfg(feature = "inbox")]
impl Timer {
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            start: std::time::Instant::now(),
        }
    }

    #[cfg(feature = "metrics")]
    fn seconds(self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// The inbox layer's outcome for one delivery, and the time it took to store.
#[cfg(feature = "inbox")]
pub(crate) fn inbox_stored(outcome: &'static str, since: Timer) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::counter!(INBOX_DELIVERIES, "outcome" => outcome).increment(1);
        ::metrics::histogram!(INBOX_STORE_SECONDS).record(since.seconds());
    }
    let _ = (outcome, since);
}

/// A dead letter queued again.
#[cfg(feature = "inbox")]
pub(crate) fn redriven() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(INBOX_REDRIVEN).increment(1);
}

/// `event_type` as a label: the crate's own `&'static str` for a type it knows (no
/// allocation, and values bounded), `other` for the rest.
#[cfg(all(feature = "inbox", feature = "metrics"))]
fn type_label(event_type: &str) -> &'static str {
    use crate::event::{BLOCKING_TYPES, NON_BLOCKING_TYPES};
    NON_BLOCKING_TYPES
        .iter()
        .chain(BLOCKING_TYPES)
        .find(|known| **known == event_type)
        .copied()
        .unwrap_or("other")
}

/// An event handled and recorded as done.
#[cfg(feature = "inbox")]
pub(crate) fn handled(event_type: &str, recovered: bool) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::counter!(WORKER_HANDLED, "event_type" => type_label(event_type)).increment(1);
        if recovered {
            ::metrics::counter!(WORKER_RECOVERED).increment(1);
        }
    }
    let _ = (event_type, recovered);
}

/// A failed attempt, to be retried.
#[cfg(feature = "inbox")]
pub(crate) fn retried(event_type: &str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(WORKER_RETRIED, "event_type" => type_label(event_type)).increment(1);
    let _ = event_type;
}

/// An event made a dead letter.
#[cfg(feature = "inbox")]
pub(crate) fn dead_lettered(event_type: &str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(WORKER_DEAD_LETTERED, "event_type" => type_label(event_type)).increment(1);
    let _ = event_type;
}

/// One run of the handler, from `since`.
#[cfg(feature = "inbox")]
pub(crate) fn handler_ran(event_type: &str, since: Timer) {
    #[cfg(feature = "metrics")]
    ::metrics::histogram!(WORKER_HANDLER_SECONDS, "event_type" => type_label(event_type))
        .record(since.seconds());
    let _ = (event_type, since);
}

/// One event in a worker's hands: counted in `in_flight` until dropped, however the
/// handling ends (done, failed, given back, the task dropped).
#[cfg(feature = "inbox")]
#[derive(Debug)]
pub(crate) struct InFlight(());

#[cfg(feature = "inbox")]
impl InFlight {
    pub(crate) fn start() -> Self {
        #[cfg(feature = "metrics")]
        ::metrics::gauge!(WORKER_IN_FLIGHT).increment(1.0);
        Self(())
    }
}

#[cfg(feature = "inbox")]
impl Drop for InFlight {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        ::metrics::gauge!(WORKER_IN_FLIGHT).decrement(1.0);
    }
}

/// A catch-up pass's outcome: `ok`, `skipped` or `failed`.
#[cfg(feature = "catch-up")]
pub(crate) fn catch_up_pass(outcome: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(CATCH_UP_PASSES, "outcome" => outcome).increment(1);
    let _ = outcome;
}

/// An event the catch-up stored.
#[cfg(feature = "catch-up")]
pub(crate) fn catch_up_recovered() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(CATCH_UP_RECOVERED).increment(1);
}

/// How often a worker reads the inbox's counts for `queued` and `dead` when nothing
/// happens, and the least time between two reads when things change.
#[cfg(feature = "inbox")]
const GAUGES_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
#[cfg(feature = "inbox")]
const GAUGES_GAP: std::time::Duration = std::time::Duration::from_secs(1);

/// The `queued` and `dead` gauges, kept by a worker: [`watch`](Self::watch) reads the
/// inbox's counts every [`GAUGES_EVERY`], and within [`GAUGES_GAP`] of a
/// [`changed`](Self::changed). Without the feature, nothing is read.
#[cfg(feature = "inbox")]
#[derive(Debug, Clone, Default)]
pub(crate) struct InboxGauges {
    #[cfg(feature = "metrics")]
    changed: std::sync::Arc<tokio::sync::Notify>,
}

#[cfg(feature = "inbox")]
impl InboxGauges {
    /// The worker changed the inbox (acked, failed, dead-lettered).
    pub(crate) fn changed(&self) {
        #[cfg(feature = "metrics")]
        self.changed.notify_one();
    }

    /// Keeps the gauges until `shutdown`.
    pub(crate) async fn watch(self, inbox: Inbox, shutdown: CancellationToken) {
        #[cfg(feature = "metrics")]
        loop {
            // Raced with the shutdown: a store that hangs must not hold the worker's end.
            let counts = tokio::select! {
                () = shutdown.cancelled() => return,
                counts = inbox.counts() => counts,
            };
            match counts {
                Ok(counts) => {
                    ::metrics::gauge!(INBOX_QUEUED).set(counts.queued as f64);
                    ::metrics::gauge!(INBOX_DEAD).set(counts.dead as f64);
                }
                // The gauges keep their last values; the store's failure shows elsewhere
                // (refusals, health).
                Err(error) => {
                    tracing::debug!(%error, "inbox: cannot read the counts for the gauges")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(GAUGES_EVERY) => {}
                () = self.changed.notified() => {
                    // Changes close together share one read.
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(GAUGES_GAP) => {}
                    }
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (inbox, shutdown);
    }
}
