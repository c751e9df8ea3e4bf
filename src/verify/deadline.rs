//! The body deadline: a body that has not fully arrived within it is refused (408), and its
//! buffer and room in the budget are freed at once.
//!
//! The clock starts the first time the body is not ready (the layer then waits for the
//! client), so a body that arrives with its request head, as Authgear's do, never starts a
//! timer. It needs a Tokio runtime with its timer enabled (axum, hyper-util, tonic and
//! actix-web all run on one); where there is no Tokio runtime, there is no deadline.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::time::Sleep;

/// The default [`body_deadline`](crate::VerifySignatureLayer::body_deadline): 10 s.
pub(crate) const DEFAULT_BODY_DEADLINE: Duration = Duration::from_secs(10);

/// The timer of one request's body, started when the body first makes the layer wait.
/// Boxed: started only then, and the future it lives in moves a few times before.
#[derive(Debug, Default)]
pub(crate) struct Deadline(Option<Pin<Box<Sleep>>>);

impl Deadline {
    /// The body is not ready: whether `after` has passed since it first was not (starting
    /// the clock now if this is the first time). Registers `cx` to be woken when it passes.
    pub(crate) fn expired(&mut self, after: Option<Duration>, cx: &mut Context<'_>) -> bool {
        let Some(after) = after else {
            return false;
        };
        let sleep = match &mut self.0 {
            Some(sleep) => sleep,
            None => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return false;
                }
                self.0.insert(Box::pin(tokio::time::sleep(after)))
            }
        };
        matches!(sleep.as_mut().poll(cx), Poll::Ready(()))
    }
}
