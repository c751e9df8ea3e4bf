//! The readiness check: the inbox's store takes a write, the worker runs, the catch-up runs
//! and its last pass did not fail, and the application's own checks.

use std::{
    borrow::Cow,
    fmt,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::Duration,
};

use serde_json::{Map, Value, json};

use crate::inbox::Inbox;

/// What [`Health::report`] found, for one check or for them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Status {
    /// As it should be.
    Ok,
    /// Working, but something needs a look (the catch-up's last pass failed, a secret file
    /// could not be read and the last good secrets are kept): still ready.
    Degraded,
    /// Cannot do its work: not ready (503).
    Unready,
}

impl Status {
    /// `"ok"`, `"degraded"` or `"unready"`, as in the JSON.
    ///
    /// ```
    /// assert_eq!(authgear_webhook::admin::Status::Degraded.as_str(), "degraded");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Unready => "unready",
        }
    }
}

/// One check's outcome in a [`HealthReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    name: Cow<'static, str>,
    status: Status,
    reason: Option<String>,
}

impl Check {
    /// The check's name: `inbox store`, `inbox worker`, `catch-up`, or the application's.
    ///
    /// ```
    /// # use authgear_webhook::admin::Health;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let report = Health::new().check("cache", || Ok::<_, String>(())).report().await;
    /// assert_eq!(report.checks()[0].name(), "cache");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it found.
    ///
    /// ```
    /// # use authgear_webhook::admin::{Health, Status};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let report = Health::new().check("cache", || Err("cold")).report().await;
    /// assert_eq!(report.checks()[0].status(), Status::Unready);
    /// # }
    /// ```
    pub fn status(&self) -> Status {
        self.status
    }

    /// Why it is not [`Status::Ok`], in a few words (never a URL, a key or a secret from
    /// this crate's checks; the application's checks say what their closures return).
    ///
    /// ```
    /// # use authgear_webhook::admin::Health;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let report = Health::new().check("cache", || Err("cold")).report().await;
    /// assert_eq!(report.checks()[0].reason(), Some("cold"));
    /// # }
    /// ```
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

/// What [`Health::report`] found: ready or not, and each check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    checks: Vec<Check>,
}

impl HealthReport {
    /// `true` unless a check is [`Status::Unready`] (a degraded check is still ready).
    ///
    /// ```
    /// # use authgear_webhook::admin::Health;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert!(Health::new().report().await.ready());
    /// # }
    /// ```
    pub fn ready(&self) -> bool {
        self.status() != Status::Unready
    }

    /// The worst status of the checks ([`Status::Ok`] without checks).
    ///
    /// ```
    /// # use authgear_webhook::admin::{Health, Status};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let report = Health::new()
    ///     .check("cache", || Ok::<_, String>(()))
    ///     .check_degraded("secrets file", || Err("unreadable: the last good secrets are kept"))
    ///     .report()
    ///     .await;
    /// assert_eq!(report.status(), Status::Degraded);
    /// assert!(report.ready());
    /// # }
    /// ```
    pub fn status(&self) -> Status {
        self.checks
            .iter()
            .map(Check::status)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// Each check's outcome, in the order they were added.
    ///
    /// ```
    /// # use authgear_webhook::admin::Health;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert!(Health::new().report().await.checks().is_empty());
    /// # }
    /// ```
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The report as JSON, the body [`AdminService`](super::AdminService)'s `GET /health`
    /// answers:
    /// `{"ready":false,"status":"unready","checks":[{"name":"inbox store","reason":"...","status":"unready"}]}`
    /// (`reason` only where the status is not `ok`).
    ///
    /// ```
    /// # use authgear_webhook::admin::Health;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let report = Health::new().check("cache", || Err("cold")).report().await;
    /// assert_eq!(
    ///     report.to_json(),
    ///     r#"{"ready":false,"status":"unready","checks":[{"name":"cache","reason":"cold","status":"unready"}]}"#
    /// );
    /// # }
    /// ```
    pub fn to_json(&self) -> String {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|check| {
                let mut object = Map::new();
                object.insert("name".into(), json!(check.name));
                object.insert("status".into(), json!(check.status.as_str()));
                if let Some(reason) = &check.reason {
                    object.insert("reason".into(), json!(reason));
                }
                Value::Object(object)
            })
            .collect();
        // Keys in this order (serde_json's map is sorted): the verdict first.
        format!(
            r#"{{"ready":{},"status":{},"checks":{}}}"#,
            self.ready(),
            json!(self.status().as_str()),
            Value::Array(checks)
        )
    }
}

/// The future of an application's asynchronous check.
type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

#[derive(Clone)]
enum Kind {
    Store(Inbox),
    Worker(Inbox),
    #[cfg(feature = "catch-up")]
    CatchUp(crate::catch_up::status::Status),
    Custom {
        check: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
        failing: Status,
    },
}

#[derive(Clone)]
struct Entry {
    name: Cow<'static, str>,
    kind: Kind,
}

/// A readiness check, for a load balancer or an orchestrator: [`report`](Self::report)
/// runs every check added, at once, each bounded by the [`timeout`](Self::timeout), but for
/// the synchronous closures of [`check`](Self::check) and
/// [`check_degraded`](Self::check_degraded), which run to their end first.
/// [`AdminService`](super::AdminService) answers it on `GET /health`.
///
/// - [`store`](Self::store): the inbox's store takes a write now
///   ([`Store::probe`](crate::inbox::Store::probe)): Redis stopped or unreachable, Postgres
///   down or read-only, a full disk, a SQLite file at its size cap: unready.
/// - [`worker`](Self::worker): a [`Worker::run`](crate::inbox::Worker::run) of the inbox
///   runs in this process (its task did not end or panic).
/// - [`catch_up`](Self::catch_up) (feature `catch-up`): its [`run`](crate::catch_up::CatchUp::run)
///   runs (unready otherwise); its last pass failed: degraded, not unready, as deliveries
///   never wait for it, so taking the instance out of a load balancer would turn an Admin
///   API outage into a delivery outage.
/// - [`check`](Self::check), [`check_degraded`](Self::check_degraded),
///   [`check_async`](Self::check_async): the application's own (a secret file that cannot
///   be read, a database).
///
/// Cheap to clone. Each report costs one small synced write to the store (the probe):
/// a load balancer's probe every few seconds is nothing to it.
///
/// ```
/// use authgear_webhook::{admin::{Health, Status}, inbox::{CancellationToken, Delivery, Inbox, SqliteStore, Worker}};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("admin-health-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let inbox = Inbox::new(SqliteStore::open(dir.join("inbox.sqlite3"))?);
/// let health = Health::new().inbox(&inbox);
///
/// // No worker yet.
/// let report = health.report().await;
/// assert!(!report.ready());
/// assert_eq!(report.checks()[1].reason(), Some("not running"));
///
/// let shutdown = CancellationToken::new();
/// let worker = tokio::spawn(Worker::new(inbox.clone()).run(
///     |_: Delivery| async { Ok::<_, std::io::Error>(()) },
///     shutdown.clone(),
/// ));
/// tokio::task::yield_now().await;
/// let report = health.report().await;
/// assert!(report.ready(), "{}", report.to_json());
///
/// shutdown.cancel();
/// worker.await?;
/// assert_eq!(health.report().await.status(), Status::Unready);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Health {
    checks: Arc<[Entry]>,
    timeout: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// No check yet: always ready. Each check is bounded by 1 s.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert!(authgear_webhook::admin::Health::new().report().await.ready());
    /// # }
    /// ```
    pub fn new() -> Self {
        Self {
            checks: Arc::new([]),
            timeout: Duration::from_secs(1),
        }
    }

    /// How long one check may take (default 1 s), the closures of [`check`](Self::check)
    /// and [`check_degraded`](Self::check_degraded) aside (they run inline, to their end);
    /// one that takes longer, a store that hangs, is its failing status ([`Status::Unready`] for the built-in ones) with the
    /// reason `no answer within ...`. The checks run at once, so a report takes about this
    /// long at most.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let health = authgear_webhook::admin::Health::new().timeout(Duration::from_millis(500));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// [`store`](Self::store) and [`worker`](Self::worker): the inbox takes events, and
    /// this process's worker hands them over.
    ///
    /// ```no_run
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// let health = authgear_webhook::admin::Health::new().inbox(&inbox);
    /// # }
    /// ```
    pub fn inbox(self, inbox: &Inbox) -> Self {
        self.store(inbox).worker(inbox)
    }

    /// Check `inbox store`: the inbox's store takes a small write within the timeout
    /// ([`Store::probe`](crate::inbox::Store::probe)); unready otherwise, with the store
    /// error's message (a few fixed words, never a URL).
    ///
    /// ```no_run
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// // The workers run in other processes: only the store here.
    /// let health = authgear_webhook::admin::Health::new().store(&inbox);
    /// # }
    /// ```
    pub fn store(self, inbox: &Inbox) -> Self {
        self.push("inbox store", Kind::Store(inbox.clone()))
    }

    /// Check `inbox worker`: a [`Worker::run`](crate::inbox::Worker::run) future of
    /// `inbox` is live in this process; unready `not running` otherwise (not started yet,
    /// returned after shutdown, or its task panicked or was dropped).
    ///
    /// ```no_run
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// let health = authgear_webhook::admin::Health::new().worker(&inbox);
    /// # }
    /// ```
    pub fn worker(self, inbox: &Inbox) -> Self {
        self.push("inbox worker", Kind::Worker(inbox.clone()))
    }

    /// Check `catch-up`: [`run`](crate::catch_up::CatchUp::run) of `catch_up` (or of a
    /// clone) is live; unready `not running` otherwise. Its last pass failed: degraded,
    /// with the failure's short message (never the key or a token) and how many passes
    /// failed in a row.
    ///
    /// ```no_run
    /// # fn f(inbox: authgear_webhook::inbox::Inbox, catch_up: authgear_webhook::catch_up::CatchUp) {
    /// # let shutdown = authgear_webhook::inbox::CancellationToken::new();
    /// let health = authgear_webhook::admin::Health::new().inbox(&inbox).catch_up(&catch_up);
    /// tokio::spawn(catch_up.run(shutdown.clone()));
    /// # }
    /// ```
    #[cfg(feature = "catch-up")]
    #[cfg_attr(docsrs, doc(cfg(feature = "catch-up")))]
    pub fn catch_up(self, catch_up: &crate::catch_up::CatchUp) -> Self {
        self.push("catch-up", Kind::CatchUp(catch_up.status.clone()))
    }

    /// Check `webhook secrets`: degraded while the file of a
    /// [`Secrets::from_file`](crate::Secrets::from_file) cannot be used (empty, unreadable,
    /// not text) and the last good secrets are kept, with
    /// [`Secrets::problem`](crate::Secrets::problem)'s message (the path and what is wrong,
    /// never a secret); ok otherwise, and always for secrets not read from a file. Still
    /// ready: the webhook keeps verifying with the last good secrets.
    ///
    /// ```
    /// use authgear_webhook::{Secrets, admin::{Health, Status}};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let secrets = Secrets::new("my-webhook-secret");
    /// let report = Health::new().secrets(&secrets).report().await;
    /// assert_eq!(report.checks()[0].name(), "webhook secrets");
    /// assert_eq!(report.checks()[0].status(), Status::Ok);
    /// # }
    /// ```
    pub fn secrets(self, secrets: &crate::Secrets) -> Self {
        let secrets = secrets.clone();
        self.check_degraded("webhook secrets", move || match secrets.problem() {
            Some(problem) => Err(problem),
            None => Ok(()),
        })
    }

    /// The application's check `name`: `check` returns `Err(reason)` when the process
    /// cannot do its work ([`Status::Unready`]). Called on each report, inline, on the task
    /// answering it, before the [`timeout`](Self::timeout) applies: the timeout cannot cut
    /// it short, and while it runs the report (and that task) waits. Keep it quick (read a
    /// flag, not the network, a lock or a file); use [`check_async`](Self::check_async)
    /// for anything that can block. A panic is `Unready`, `check panicked`.
    ///
    /// The reason is shown as it is, to whoever can reach the health route: never put a
    /// secret, a URL with a password or a body in it.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    /// use authgear_webhook::admin::Health;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let warm = Arc::new(AtomicBool::new(false));
    /// let health = Health::new().check("cache", {
    ///     let warm = warm.clone();
    ///     move || match warm.load(Ordering::Relaxed) {
    ///         true => Ok(()),
    ///         false => Err("still loading"),
    ///     }
    /// });
    /// assert!(!health.report().await.ready());
    /// warm.store(true, Ordering::Relaxed);
    /// assert!(health.report().await.ready());
    /// # }
    /// ```
    pub fn check<F, E>(self, name: impl Into<Cow<'static, str>>, check: F) -> Self
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        self.custom(name, Status::Unready, check)
    }

    /// As [`check`](Self::check), but a failure is [`Status::Degraded`]: reported, still
    /// ready. For a problem the process works around, such as a secret file that cannot be
    /// read while the last good secrets are kept. Run inline as `check`'s closure, not
    /// bounded by the [`timeout`](Self::timeout): keep it quick, or use
    /// [`check_async`](Self::check_async).
    ///
    /// ```
    /// use authgear_webhook::admin::{Health, Status};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let health = Health::new().check_degraded("secrets", || Err("file unreadable, last good secrets kept"));
    /// let report = health.report().await;
    /// assert!(report.ready());
    /// assert_eq!(report.checks()[0].status(), Status::Degraded);
    /// # }
    /// ```
    pub fn check_degraded<F, E>(self, name: impl Into<Cow<'static, str>>, check: F) -> Self
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        self.custom(name, Status::Degraded, check)
    }

    /// The application's asynchronous check `name` (a database ping): as
    /// [`check`](Self::check), bounded by the [`timeout`](Self::timeout).
    ///
    /// ```
    /// use authgear_webhook::admin::Health;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let health = Health::new().check_async("database", || async {
    ///     // e.g. sqlx::query("SELECT 1").execute(&pool).await.map(drop)
    ///     Ok::<_, std::io::Error>(())
    /// });
    /// assert!(health.report().await.ready());
    /// # }
    /// ```
    pub fn check_async<F, Fut, E>(self, name: impl Into<Cow<'static, str>>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let check = move || -> CheckFuture {
            let future = check();
            Box::pin(async move { future.await.map_err(|error| error.to_string()) })
        };
        self.push(
            name,
            Kind::Custom {
                check: Arc::new(check),
                failing: Status::Unready,
            },
        )
    }

    fn custom<F, E>(self, name: impl Into<Cow<'static, str>>, failing: Status, check: F) -> Self
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        let check = move || -> CheckFuture {
            let outcome = match catch_unwind(AssertUnwindSafe(&check)) {
                Ok(outcome) => outcome.map_err(|error| error.to_string()),
                Err(_) => Err("check panicked".to_owned()),
            };
            Box::pin(std::future::ready(outcome))
        };
        self.push(
            name,
            Kind::Custom {
                check: Arc::new(check),
                failing,
            },
        )
    }

    fn push(mut self, name: impl Into<Cow<'static, str>>, kind: Kind) -> Self {
        let mut checks = self.checks.to_vec();
        checks.push(Entry {
            name: name.into(),
            kind,
        });
        self.checks = checks.into();
        self
    }

    /// Runs every check, at once, each within the [`timeout`](Self::timeout) (the
    /// synchronous closures of [`check`](Self::check) and
    /// [`check_degraded`](Self::check_degraded) first, inline, unbounded).
    ///
    /// ```
    /// # use authgear_webhook::admin::Health;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let report = Health::new().report().await;
    /// assert!(report.ready());
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime with its timer (the timeout).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped report drops its checks; the store's probe, if it was sent,
    /// completes on its own (a lease renewed).
    pub async fn report(&self) -> HealthReport {
        let mut running: Vec<Pin<Box<dyn Future<Output = Check> + Send>>> = self
            .checks
            .iter()
            .map(|entry| Box::pin(self.run(entry.clone())) as _)
            .collect();
        let mut done: Vec<Option<Check>> = vec![None; running.len()];
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (future, done) in running.iter_mut().zip(done.iter_mut()) {
                if done.is_none() {
                    match future.as_mut().poll(cx) {
                        Poll::Ready(check) => *done = Some(check),
                        Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        HealthReport {
            checks: done.into_iter().flatten().collect(),
        }
    }

    /// One check, within the timeout.
    async fn run(&self, entry: Entry) -> Check {
        let (failing, outcome): (Status, CheckFuture) = match entry.kind {
            Kind::Store(inbox) => {
                let probe = inbox.store().probe();
                let probe = async move { probe.await.map_err(|error| error.to_string()) };
                (Status::Unready, Box::pin(probe))
            }
            Kind::Worker(inbox) => (
                Status::Unready,
                Box::pin(std::future::ready(match inbox.workers() {
                    0 => Err("not running".to_owned()),
                    _ => Ok(()),
                })),
            ),
            #[cfg(feature = "catch-up")]
            Kind::CatchUp(status) => {
                let check = match status.get() {
                    (false, _) => Check::new(
                        entry.name.clone(),
                        Status::Unready,
                        Some("not running".into()),
                    ),
                    (true, None) => Check::new(entry.name.clone(), Status::Ok, None),
                    (true, Some(failed)) => {
                        let times = match failed.times {
                            1 => String::new(),
                            times => format!(" ({times} in a row)"),
                        };
                        let reason = format!("last pass failed{times}: {}", failed.message);
                        Check::new(entry.name.clone(), Status::Degraded, Some(reason))
                    }
                };
                return check;
            }
            Kind::Custom { check, failing } => (failing, check()),
        };
        let status = match tokio::time::timeout(self.timeout, outcome).await {
            Ok(Ok(())) => return Check::new(entry.name.clone(), Status::Ok, None),
            Ok(Err(reason)) => reason,
            Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
        };
        Check::new(entry.name.clone(), failing, Some(status))
    }
}

impl Check {
    fn new(name: Cow<'static, str>, status: Status, reason: Option<String>) -> Self {
        Self {
            name,
            status,
            reason,
        }
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field(
                "checks",
                &self
                    .checks
                    .iter()
                    .map(|entry| &entry.name)
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}
